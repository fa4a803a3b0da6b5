"""What a search leaves in its output folder, and the Pareto front read from a study.

The front is taken over trained, feasible candidates in (validation accuracy up, target latency
down), from the trials' user attributes, so it is the same in ``pareto`` and ``reward`` mode
and the same whether a report reads the study now or a year later. Each member says whether it
is more accurate than the next cheaper member beyond the noise (`mark_ties`): a front of
accuracies a point apart on a thousand images is mostly ties, and the output says so.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.trial import TrialState

from nas.evaluators.uncertainty import (
    Comparison,
    SeedSummary,
    compare_proportions,
    compare_seeds,
    correct_of,
    format_accuracy,
)
from nas.files import MAX_NAME_LENGTH, name_problem
from nas.study import confirm_runs, trial_summary
from nas.trials import Outcome, TrialAttrs

Item = TypeVar("Item")

PARETO_COLUMNS = (
    "number",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "val_count",
    "seeds",
    "accuracy_mean",
    "accuracy_std",
    "seed_accuracies",
    "vs_cheaper",
    "p_vs_cheaper",
    "latency_ms",
    "mflops",
    "params",
    "zoo",
    "baseline",
    "arch",
)


def single_seed_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """A row per candidate trained to the end, with the search's own run only."""
    return [
        trial_summary(trial)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if TrialAttrs.of(trial).outcome is Outcome.TRAINED
    ]


def trained_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Rows with every seed: the search's run plus its confirm runs, if any.

    ``accuracy_mean`` (over ``seeds`` runs, ``accuracy_std`` their sample standard deviation)
    is what the front is taken on; ``accuracy`` and its interval stay the search's own run.
    """
    runs = confirm_runs(study)
    rows = []
    for row in single_seed_rows(study):
        accuracies = [row["accuracy"], *(run["accuracy"] for run in runs.get(row["number"], []))]
        summary = SeedSummary(tuple(accuracies))
        rows.append(
            {
                **row,
                "seeds": len(accuracies),
                "seed_accuracies": accuracies,
                "accuracy_mean": round(summary.mean, 6),
                "accuracy_std": round(summary.std, 6),
            }
        )
    return rows


def pareto_front(
    items: Iterable[Item],
    value: Callable[[Item], float] = lambda row: row.get("accuracy_mean", row["accuracy"]),
    cost: Callable[[Item], float] = itemgetter("latency_ms"),
) -> list[Item]:
    """Items no other item beats on both value (up) and cost (down), cheapest first.

    Rows of `trained_rows` by default: mean accuracy over seeds (the one accuracy where there
    are no confirm runs) against latency. Every front in the project
    (the search's, a report's MFLOPs view, the benchmarks') is this one rule.
    """
    items = list(items)
    scores = [(value(item), cost(item)) for item in items]

    def dominated(mine: tuple[float, float]) -> bool:
        return any(
            v >= mine[0] and c <= mine[1] and (v > mine[0] or c < mine[1]) for v, c in scores
        )

    kept = [(score, item) for score, item in zip(scores, items) if not dominated(score)]
    return [item for _, item in sorted(kept, key=lambda pair: (pair[0][1], -pair[0][0]))]


def compare_rows(row: dict[str, Any], other: dict[str, Any]) -> Comparison | None:
    """Whether `row` is more accurate than `other` beyond the noise; None if a count is unknown.

    With two or more seeds on both sides, Welch's t-test over the seed accuracies (training
    noise included); otherwise the two-proportion test on the one validation split both were
    scored on, conservative since their errors are correlated.
    """
    if len(row.get("seed_accuracies") or ()) > 1 and len(other.get("seed_accuracies") or ()) > 1:
        return compare_seeds(row["seed_accuracies"], other["seed_accuracies"])
    if not row.get("val_count") or not other.get("val_count"):
        return None
    return compare_proportions(
        correct_of(row["accuracy"], row["val_count"]),
        row["val_count"],
        correct_of(other["accuracy"], other["val_count"]),
        other["val_count"],
    )


def mark_ties(front: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each front member (cheapest first) against the next cheaper one: ``better`` or ``tie``.

    ``vs_cheaper`` is None for the cheapest member, and for a member whose validation count
    was not recorded (a study from an older version).
    """
    marked = []
    for i, row in enumerate(front):
        comparison = compare_rows(row, front[i - 1]) if i else None
        marked.append(
            {
                **row,
                "vs_cheaper": None
                if comparison is None
                else ("better" if comparison.distinguishable else "tie"),
                "p_vs_cheaper": None if comparison is None else round(comparison.p_value, 4),
            }
        )
    return marked


def accuracy_text(row: dict[str, Any]) -> str:
    """A row's accuracy with its 95% interval, as every table shows it."""
    interval = (
        (row["accuracy_low"], row["accuracy_high"]) if row.get("accuracy_low") is not None else None
    )
    return format_accuracy(row["accuracy"], interval)


def seeds_text(row: dict[str, Any]) -> str:
    """``82.9% +/- 0.6 (3 seeds)`` where confirm runs exist; empty for a single run."""
    if (row.get("seeds") or 1) < 2:
        return ""
    return f"{row['accuracy_mean']:.1%} +/- {row['accuracy_std'] * 100:.1f} ({row['seeds']} seeds)"


def versus_text(row: dict[str, Any]) -> str:
    """``better`` or ``tie`` (with the p-value) against the next cheaper front member."""
    if row.get("vs_cheaper") is None:
        return ""
    p = row["p_vs_cheaper"]
    return f"{row['vs_cheaper']} ({'p < 0.01' if p < 0.01 else f'p {p:.2f}'})"


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


def front_cells(row: dict[str, Any], name: str | None) -> list[str]:
    """One front member as the cells under `FRONT_HEADERS`; `name` is its zoo name, if any."""
    return [
        str(row["number"]),
        accuracy_text(row),
        seeds_text(row),
        versus_text(row),
        f"{row['latency_ms']:.2f}",
        f"{row['mflops']:.1f}",
        f"{row['params']:,}",
        name or "",
    ]


def pareto_rows(study: optuna.Study) -> list[dict[str, Any]]:
    return [
        {key: row[key] for key in PARETO_COLUMNS}
        for row in mark_ties(pareto_front(trained_rows(study)))
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


def write_outputs(study: optuna.Study, out_dir: Path, pareto: list[dict[str, Any]]) -> None:
    """``pareto.json`` (the front plus how it was found) and ``trials.csv`` (every trial)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "study": study.study_name,
        "config": study.user_attrs.get("config"),
        "latency_table": study.user_attrs.get("latency_table"),
        "dataset": study.user_attrs.get("dataset"),
        "pareto": pareto,
    }
    (out_dir / "pareto.json").write_text(json.dumps(document, indent=2) + "\n")
    rows = [trial_summary(trial) for trial in study.get_trials(deepcopy=False)]
    with (out_dir / "trials.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        writer.writerows(rows)
