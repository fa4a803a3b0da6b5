"""Asynchronous successive halving over both objectives (MO-ASHA, Schmucker et al. 2021).

Every candidate is trained with the same schedule of `epochs`; at the rung epochs
(`rung_epochs`: the last epoch divided by the reduction factor, again and again, down to 1) it
is compared with every candidate that reached the same rung before it, on its accuracy there
and its latency on the target, and goes on only if it is among the best 1/eta of them. A
decision needs only what has already been measured, so no worker ever waits for another
(ASHA's asynchronous promotion, in its stop-or-continue form: a promoted candidate simply
trains on).

"Best" respects both objectives: candidates are ordered by non-dominated sorting on
(accuracy at the rung, latency), and within a front by crowding distance, as NSGA-II selects.
A fast candidate that nothing at the rung dominates is therefore kept even when slower ones
are more accurate, which a rule on accuracy alone (median, or single-objective ASHA) would
stop. Ties left after both keys go to the more accurate candidate.

The rule starts once `reduction_factor` candidates have reached a rung: the first ones cannot
be ranked against anything, and stopping them would leave the rung with nothing to compare.

This module is the arithmetic; `nas.stopping.SuccessiveHalvingRule` keeps each rung's points for
a search and applies it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

RungPoint = tuple[float, float]
"""(accuracy at the rung, latency in ms) of one candidate."""


def rung_epochs(epochs: int, reduction_factor: int = 3) -> tuple[int, ...]:
    """The epochs at which candidates of an `epochs`-long schedule are judged, ascending.

    ``epochs // eta**k`` for k = 1, 2, ... while at least 1: 9 epochs give (1, 3), 27 give
    (1, 3, 9), 4 give (1,). The last epoch is never a rung: a candidate there is done.
    """
    if reduction_factor < 2:
        raise ValueError(f"the reduction factor must be >= 2, got {reduction_factor}")
    rungs: set[int] = set()
    size = epochs // reduction_factor
    while size >= 1:
        rungs.add(size)
        size //= reduction_factor
    return tuple(sorted(rung for rung in rungs if rung < epochs))


@dataclass(frozen=True)
class ParetoHalving:
    """Stop a candidate at a rung unless it is among the best 1/eta there on both objectives.

    Args:
        rungs: epochs (1-based) at which candidates are judged (`rung_epochs`).
        reduction_factor: eta; one candidate in eta goes on from each rung.
    """

    rungs: tuple[int, ...]
    reduction_factor: int = 3

    def __post_init__(self) -> None:
        if self.reduction_factor < 2:
            raise ValueError(f"the reduction factor must be >= 2, got {self.reduction_factor}")
        if any(rung < 1 for rung in self.rungs):
            raise ValueError(f"rungs are epochs >= 1, got {self.rungs}")

    @classmethod
    def for_epochs(cls, epochs: int, reduction_factor: int = 3) -> ParetoHalving:
        return cls(rung_epochs(epochs, reduction_factor), reduction_factor)

    def should_stop(
        self, epoch: int, accuracy: float, latency: float, earlier: Sequence[RungPoint]
    ) -> bool:
        """True when the candidate, at rung `epoch`, is not promoted.

        `earlier`: (accuracy, latency) at this rung of every candidate that reached it before
        this one, promoted or not. A NaN accuracy is stopped: it can only be a broken run.
        """
        if epoch not in self.rungs:
            return False
        if math.isnan(accuracy):
            return True
        points = [p for p in earlier if not math.isnan(p[0])] + [(accuracy, latency)]
        if len(points) < self.reduction_factor:
            return False
        keep = len(points) // self.reduction_factor
        return len(points) - 1 not in best(points, keep)


def best(points: Sequence[RungPoint], count: int) -> set[int]:
    """Indices of the `count` best points: by non-dominated front, then crowding distance."""
    ranked: list[int] = []
    for front in non_dominated_fronts(points):
        if len(ranked) + len(front) <= count:
            ranked += front
            continue
        distance = crowding_distances(points, front)
        front = sorted(front, key=lambda i: (-distance[i], -points[i][0], points[i][1]))
        ranked += front[: count - len(ranked)]
        break
    return set(ranked)


def non_dominated_fronts(points: Sequence[RungPoint]) -> list[list[int]]:
    """Fronts of indices, best first; accuracy is maximised and latency minimised.

    Sorted by latency (then accuracy, descending), a point is dominated by a point of a front
    exactly when that front already holds a point at least as fast and at least as accurate,
    so each point joins the first front whose best accuracy so far is below its own.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    fronts: list[list[int]] = []
    best_accuracy: list[float] = []
    for index in order:
        accuracy = points[index][0]
        for level, front in enumerate(fronts):
            previous = points[front[-1]]
            dominated = best_accuracy[level] >= accuracy and (
                best_accuracy[level] > accuracy or previous[1] < points[index][1]
            )
            if not dominated:
                front.append(index)
                best_accuracy[level] = max(best_accuracy[level], accuracy)
                break
        else:
            fronts.append([index])
            best_accuracy.append(accuracy)
    return fronts


def crowding_distances(points: Sequence[RungPoint], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II's crowding distance of each point of `front` (the ends of each objective: inf)."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for axis in (0, 1):
        ordered = sorted(front, key=lambda i: points[i][axis])
        low, high = points[ordered[0]][axis], points[ordered[-1]][axis]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for before, here, after in zip(ordered, ordered[1:], ordered[2:]):
            distance[here] += (points[after][axis] - points[before][axis]) / (high - low)
    return distance
