"""Early stopping of candidates from their learning curves.

Optuna's pruners (`trial.report` / `trial.should_prune`) refuse multi-objective studies, and the
search's default study optimises accuracy and latency together. `MedianCurveStopper` is the median
rule of Optuna's `MedianPruner` restated over plain lists, so it applies to any study: given the
learning curves of finished candidates, it stops a running one whose validation accuracy at
epoch k is below their median at epoch k. `nas.stopping.MedianRule` keeps those curves for a
search and asks it after every epoch.

In a study that also minimises latency, the median of every finished candidate is mostly the
median of the slower, larger ones, and a fast candidate below it may still be on the front. So
the rule passes costs: a candidate is compared only with the finished candidates that are at
least as fast as it (no higher latency), the only ones that could dominate it. The plain median
stops cheap candidates more often and starves the fast end of the front (docs/training.md,
"Early stopping").

For single-objective studies (``--objective reward``) the search uses Optuna's own pruner
(`nas.stopping.PrunerRule`).

Only compare curves trained with the same recipe: an epoch of a ten-epoch schedule is not an
epoch of a four-epoch one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MedianCurveStopper:
    """Stop a candidate that falls below the median of finished candidates at the same epoch.

    Args:
        warmup_epochs: never stop at or before this epoch (1-based). The first epoch of a
            one-cycle schedule is mostly warm-up, and its accuracy ranks candidates poorly.
        min_finished: finished curves that must reach the epoch before the rule applies;
            a median of two or three curves would stop good candidates by chance.
    """

    warmup_epochs: int = 1
    min_finished: int = 5

    def __post_init__(self) -> None:
        if self.warmup_epochs < 0 or self.min_finished < 1:
            raise ValueError("warmup_epochs must be >= 0 and min_finished >= 1")

    def should_stop(
        self,
        epoch: int,
        value: float,
        finished_curves: Sequence[Sequence[float]],
        *,
        last_epoch: int | None = None,
        cost: float | None = None,
        finished_costs: Sequence[float] | None = None,
    ) -> bool:
        """True when `value`, the accuracy after `epoch` (1-based), is below the median.

        `last_epoch`: the candidate's final epoch. Its training is done there, and stopping it
        would only throw a finished result away.
        `cost` and `finished_costs` (one per finished curve, same order): compare only with the
        finished candidates whose cost is at most `cost`. A candidate cheaper than nearly all
        of them runs on until `min_finished` cheaper ones have finished.
        A NaN value is stopped as soon as the rule applies: it can only be a broken run.
        """
        if epoch <= self.warmup_epochs or (last_epoch is not None and epoch >= last_epoch):
            return False
        if cost is not None:
            if finished_costs is None or len(finished_costs) != len(finished_curves):
                raise ValueError("cost needs one finished cost per finished curve")
            finished_curves = [
                curve
                for curve, finished_cost in zip(finished_curves, finished_costs)
                if finished_cost <= cost
            ]
        median = self.median_at(epoch, finished_curves)
        if median is None:
            return False
        return math.isnan(value) or value < median

    def median_at(self, epoch: int, finished_curves: Sequence[Sequence[float]]) -> float | None:
        """Median accuracy of the finished curves at `epoch`, or None if too few reach it."""
        values = [
            curve[epoch - 1]
            for curve in finished_curves
            if len(curve) >= epoch and not math.isnan(curve[epoch - 1])
        ]
        if len(values) < self.min_finished:
            return None
        return statistics.median(values)
