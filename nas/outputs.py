"""What a search leaves in its output folder, and the Pareto front read from a study.

The front is taken over trained, feasible candidates in (validation accuracy up, target latency
down), from the trials' user attributes, so it is the same in ``pareto`` and ``reward`` mode
and the same whether a report reads the study now or a year later.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import optuna
from optuna.trial import TrialState

from nas.study import trial_summary
from nas.trials import Outcome, TrialAttrs

Item = TypeVar("Item")

PARETO_COLUMNS = ("number", "accuracy", "latency_ms", "mflops", "params", "zoo", "arch")


def trained_rows(study: optuna.Study) -> list[dict[str, Any]]:
    return [trial_summary(trial)
            for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if TrialAttrs.of(trial).outcome is Outcome.TRAINED]


def pareto_front(items: Iterable[Item],
                 value: Callable[[Item], float] = itemgetter("accuracy"),
                 cost: Callable[[Item], float] = itemgetter("latency_ms")) -> list[Item]:
    """Items no other item beats on both value (up) and cost (down), cheapest first.

    Rows of `trained_rows` by default: accuracy against latency. Every front in the project
    (the search's, a report's MFLOPs view, the benchmarks') is this one rule.
    """
    items = list(items)
    scores = [(value(item), cost(item)) for item in items]

    def dominated(mine: tuple[float, float]) -> bool:
        return any(v >= mine[0] and c <= mine[1] and (v > mine[0] or c < mine[1])
                   for v, c in scores)

    kept = [(score, item) for score, item in zip(scores, items) if not dominated(score)]
    return [item for _, item in sorted(kept, key=lambda pair: (pair[0][1], -pair[0][0]))]


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
