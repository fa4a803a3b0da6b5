"""The Pareto front of a study: its trained candidates as typed rows, and the one front rule.

The front is taken over trained, feasible candidates in (validation accuracy up, target latency
down), from the trials' user attributes, so it is the same in ``pareto`` and ``reward`` mode
and the same whether a report reads the study now or a year later. Each member says whether it
is more accurate than the next cheaper member beyond the noise (`mark_ties`): a front of
accuracies a point apart on a thousand images is mostly ties, and the output says so.

A candidate is a `TrainedRow`, made in one place (`TrainedRow.of`) and written in one form
(`TrainedRow.to_dict`, the rows of ``pareto.json``); reports, exports, confirm and finalize read
its attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.evaluators.uncertainty import (
    Comparison,
    SeedSummary,
    compare_proportions,
    compare_seeds,
    correct_of,
)
from nas.study import confirm_runs
from nas.trials import Outcome, TrialAttrs

Item = TypeVar("Item")


@dataclass(frozen=True, kw_only=True)
class TrainedRow:
    """A candidate trained to the end, as the front and the reports see it.

    ``accuracy`` and its interval are the search's own run. Joined with its confirm runs
    (`trained_rows`), the row also has ``seeds`` runs' accuracies, their mean (what the front
    is taken on) and sample standard deviation; a row of the search's run alone has None there.
    On a front (`mark_ties`), ``vs_cheaper`` says ``better`` or ``tie`` against the next
    cheaper member, with the test's p-value.
    """

    number: int
    accuracy: float
    accuracy_low: float | None = None
    accuracy_high: float | None = None
    val_count: int | None = None
    seeds: int | None = None
    accuracy_mean: float | None = None
    accuracy_std: float | None = None
    seed_accuracies: tuple[float, ...] | None = None
    vs_cheaper: str | None = None
    p_vs_cheaper: float | None = None
    latency_ms: float
    mflops: float
    params: int
    zoo: str | None = None
    baseline: str | None = None
    arch: str

    @classmethod
    def of(
        cls, trial: FrozenTrial, confirm_accuracies: Sequence[float] | None = None
    ) -> TrainedRow:
        """The row of a trained `trial`; given the accuracies of its confirm runs (possibly
        none), with the statistics over every seed."""
        attrs = TrialAttrs.of(trial)
        low, high = attrs.accuracy_interval or (None, None)
        seeded: dict[str, Any] = {}
        if confirm_accuracies is not None:
            accuracies = (attrs.accuracy, *confirm_accuracies)
            summary = SeedSummary(accuracies)
            seeded = {
                "seeds": len(accuracies),
                "seed_accuracies": accuracies,
                "accuracy_mean": round(summary.mean, 6),
                "accuracy_std": round(summary.std, 6),
            }
        return cls(
            number=trial.number,
            accuracy=attrs.accuracy,
            accuracy_low=low,
            accuracy_high=high,
            val_count=attrs.val_count,
            latency_ms=attrs.latency_ms,
            mflops=attrs.mflops,
            params=attrs.params,
            zoo=attrs.zoo,
            baseline=attrs.baseline,
            arch=attrs.arch,
            **seeded,
        )

    @property
    def front_accuracy(self) -> float:
        """What the front ranks the row by: the mean over seeds, else the one run."""
        return self.accuracy if self.accuracy_mean is None else self.accuracy_mean

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson interval of the search's run; None where it was not recorded."""
        if self.accuracy_low is None or self.accuracy_high is None:
            return None
        return self.accuracy_low, self.accuracy_high

    @property
    def name(self) -> str | None:
        """The zoo network the row is, as the study recorded it (baseline or queued zoo)."""
        return self.baseline or self.zoo

    def to_dict(self) -> dict[str, Any]:
        """The row as ``pareto.json`` holds it: every field, in order, as JSON values."""
        row = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        if self.seed_accuracies is not None:
            row["seed_accuracies"] = list(self.seed_accuracies)
        return row


def single_seed_rows(study: optuna.Study) -> list[TrainedRow]:
    """A row per candidate trained to the end, with the search's own run only."""
    return [
        TrainedRow.of(trial)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if TrialAttrs.of(trial).outcome is Outcome.TRAINED
    ]


def trained_rows(study: optuna.Study) -> list[TrainedRow]:
    """Rows with every seed: the search's run plus its confirm runs, if any."""
    runs = confirm_runs(study)
    return [
        TrainedRow.of(trial, [run["accuracy"] for run in runs.get(trial.number, [])])
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if TrialAttrs.of(trial).outcome is Outcome.TRAINED
    ]


def pareto_front(
    items: Iterable[Item],
    value: Callable[[Item], float] = attrgetter("front_accuracy"),
    cost: Callable[[Item], float] = attrgetter("latency_ms"),
) -> list[Item]:
    """Items no other item beats on both value (up) and cost (down), cheapest first.

    `TrainedRow`s by default: mean accuracy over seeds (the one accuracy where there are no
    confirm runs) against latency. Every front in the project (the search's, a report's MFLOPs
    view, the benchmarks') is this one rule.
    """
    items = list(items)
    scores = [(value(item), cost(item)) for item in items]

    def dominated(mine: tuple[float, float]) -> bool:
        return any(
            v >= mine[0] and c <= mine[1] and (v > mine[0] or c < mine[1]) for v, c in scores
        )

    kept = [(score, item) for score, item in zip(scores, items) if not dominated(score)]
    return [item for _, item in sorted(kept, key=lambda pair: (pair[0][1], -pair[0][0]))]


def compare_rows(row: TrainedRow, other: TrainedRow) -> Comparison | None:
    """Whether `row` is more accurate than `other` beyond the noise; None if a count is unknown.

    With two or more seeds on both sides, Welch's t-test over the seed accuracies (training
    noise included); otherwise the two-proportion test on the one validation split both were
    scored on, conservative since their errors are correlated.
    """
    if len(row.seed_accuracies or ()) > 1 and len(other.seed_accuracies or ()) > 1:
        return compare_seeds(row.seed_accuracies, other.seed_accuracies)
    if not row.val_count or not other.val_count:
        return None
    return compare_proportions(
        correct_of(row.accuracy, row.val_count),
        row.val_count,
        correct_of(other.accuracy, other.val_count),
        other.val_count,
    )


def mark_ties(front: list[TrainedRow]) -> list[TrainedRow]:
    """Each front member (cheapest first) against the next cheaper one: ``better`` or ``tie``.

    ``vs_cheaper`` is None for the cheapest member, and for a member whose validation count
    was not recorded (a study from an older version).
    """
    marked = []
    for i, row in enumerate(front):
        comparison = compare_rows(row, front[i - 1]) if i else None
        if comparison is None:
            marked.append(dataclasses.replace(row, vs_cheaper=None, p_vs_cheaper=None))
            continue
        marked.append(
            dataclasses.replace(
                row,
                vs_cheaper="better" if comparison.distinguishable else "tie",
                p_vs_cheaper=round(comparison.p_value, 4),
            )
        )
    return marked


def pareto_rows(study: optuna.Study) -> list[TrainedRow]:
    """The study's front on seed means, each member marked against the next cheaper one."""
    return mark_ties(pareto_front(trained_rows(study)))
