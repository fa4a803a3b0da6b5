"""What a search leaves in its output folder, and the Pareto front read from a study.

The front is taken over trained, feasible candidates in (validation accuracy up, target latency
down), from the trials' user attributes, so it is the same in ``pareto`` and ``reward`` mode
and the same whether a report reads the study now or a year later.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.study import OUTCOME_ATTR, TRAINED, trial_summary

PARETO_COLUMNS = ("number", "accuracy", "latency_ms", "mflops", "params", "zoo", "arch")


def trained_rows(study: optuna.Study) -> list[dict[str, Any]]:
    return [trial_summary(trial)
            for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if trial.user_attrs.get(OUTCOME_ATTR) == TRAINED]


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on both accuracy and latency, fastest first."""
    def dominated(row: dict[str, Any]) -> bool:
        return any(other["accuracy"] >= row["accuracy"] and other["latency_ms"] <= row["latency_ms"]
                   and (other["accuracy"] > row["accuracy"]
                        or other["latency_ms"] < row["latency_ms"])
                   for other in rows)

    return sorted((row for row in rows if not dominated(row)), key=lambda r: r["latency_ms"])


def pareto_rows(study: optuna.Study) -> list[dict[str, Any]]:
    return [{key: row[key] for key in PARETO_COLUMNS}
            for row in pareto_front(trained_rows(study))]


def write_outputs(study: optuna.Study, out_dir: Path, pareto: list[dict[str, Any]]) -> None:
    """``pareto.json`` (the front plus how it was found) and ``trials.csv`` (every trial)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"study": study.study_name, "config": study.user_attrs.get("config"),
                "latency_table": study.user_attrs.get("latency_table"),
                "dataset": study.user_attrs.get("dataset"), "pareto": pareto}
    (out_dir / "pareto.json").write_text(json.dumps(document, indent=2) + "\n")
    rows = [trial_summary(trial) for trial in study.get_trials(deepcopy=False)]
    with (out_dir / "trials.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        writer.writerows(rows)
