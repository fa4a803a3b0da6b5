"""What a search leaves in its output folder, and how every table writes a front member.

``pareto.json`` holds the front (`nas.front`) with the search's configuration, latency table,
dataset and counts (`nas.counts`); ``trials.csv`` one row per trial. The cells a front member shows (accuracy with
its interval, the spread over seeds, the verdict against the next cheaper member) are written
here once, for the terminal, report.md and report.html alike.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import optuna

from nas.counts import StudyCounts
from nas.errors import InputError
from nas.evaluators.uncertainty import format_accuracy
from nas.files import MAX_NAME_LENGTH, name_problem, write_atomically
from nas.front import TrainedRow
from nas.study import trial_summary
from nas.study_attrs import StudyAttrs


def accuracy_text(row: TrainedRow) -> str:
    """A row's accuracy with its 95% interval, as every table shows it."""
    return format_accuracy(row.accuracy, row.interval)


def seeds_text(row: TrainedRow) -> str:
    """``82.9% +/- 0.6 (3 seeds)`` where confirm runs exist; empty for a single run."""
    if (row.seeds or 1) < 2:
        return ""
    return f"{row.accuracy_mean:.1%} +/- {row.accuracy_std * 100:.1f} ({row.seeds} seeds)"


def versus_text(row: TrainedRow) -> str:
    """``better`` or ``tie`` (with the p-value) against the next cheaper front member."""
    if row.vs_cheaper is None:
        return ""
    p = row.p_vs_cheaper
    return f"{row.vs_cheaper} ({'p < 0.01' if p < 0.01 else f'p {p:.2f}'})"


FRONT_HEADERS = (
    "trial",
    "val acc [95% CI]",
    "over seeds",
    "vs cheaper",
    "latency ms",
    "MFLOPs",
    "params",
    "baseline",
)


def front_cells(row: TrainedRow, name: str | None) -> list[str]:
    """One front member as the cells under `FRONT_HEADERS`; `name` is its zoo name, if any."""
    return [
        str(row.number),
        accuracy_text(row),
        seeds_text(row),
        versus_text(row),
        f"{row.latency_ms:.2f}",
        f"{row.mflops:.1f}",
        f"{row.params:,}",
        name or "",
    ]


def study_folder(study_name: str) -> Path:
    """``results/<study>``, where a search and a report write by default.

    A name a search accepts (`nas.files.name_problem`) is its folder's name unchanged; a name
    that could not be one (a study made by an older version, such as ``../x`` or ``/abs``) is
    made a safe one, so that no default output lands outside ``results/``.
    """
    if name_problem(study_name) is None:
        return Path("results") / study_name
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", study_name).lstrip(".-")[:MAX_NAME_LENGTH]
    return Path("results") / (safe or "study")


def write_outputs(
    study: optuna.Study,
    out_dir: Path,
    pareto: list[TrainedRow],
    counts: StudyCounts | None = None,
) -> None:
    """``pareto.json`` (the front plus how it was found) and ``trials.csv`` (every trial).

    `counts` are the study's (`StudyCounts.of`), read here unless the caller has them. Each
    file is whole or as it was (`nas.files.write_atomically`); `OutputsNotWritten` says why
    none could be written.
    """
    attrs = StudyAttrs.of(study)
    counts = counts or StudyCounts.of(study)
    document = {
        "study": study.study_name,
        "config": attrs.config,
        "latency_table": attrs.latency_table,
        "dataset": attrs.dataset.to_dict() if attrs.dataset else None,
        "counts": counts.to_dict(),
        "pareto": [row.to_dict() for row in pareto],
    }
    rows = [trial_summary(trial) for trial in study.get_trials(deepcopy=False)]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else ["number"])
    writer.writeheader()
    writer.writerows(rows)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(out_dir / "pareto.json", json.dumps(document, indent=2) + "\n")
        write_atomically(out_dir / "trials.csv", table.getvalue())
    except OSError as error:
        raise OutputsNotWritten(
            f"results could not be written in {out_dir} ({error.strerror or error}); the "
            f"study {study.study_name!r} keeps every trial"
        ) from None


class OutputsNotWritten(InputError):
    """The output folder took no results (a full disk, an I/O error): the study is whole, and
    the same search resumed with room to write writes them (no file is left half written)."""
