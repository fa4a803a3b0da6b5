"""Where confirm seeds go: to the front members and baselines whose place is within the noise.

Confirm (`nas.confirm`) trains candidates again with other seeds so that a ranking rests on more
than one run. A run is worth repeating only where its one number could change the answer: a
front member within the noise of a neighbour on the front (either could dominate the other once
both are averaged over seeds), and a zoo baseline within the noise of the best searched
candidate at no more latency (the comparison the output draws for it). A member far from every
candidate it is compared with keeps its place whatever a second seed says, so it gets none.

The noise of one run is measured where the study can measure it: the pooled spread of
repeated trainings of one network (confirm runs), once `MIN_REPEATED` networks have them.
Before that it is the noise term of the surrogate (`nas.surrogate`) fitted on every training the
study holds. Either is floored at `SAMPLING_FACTOR` times the sampling noise of the validation
split: without repeats the surrogate can explain nearly everything (a Gaussian process through
single runs), and a second seed moves a run by more than the split's sampling noise alone (the
factor is measured in BENCHMARKS.md, "Where confirm seeds go"). Where there is too little
evidence to fit the surrogate, every front member and baseline is uncertain: confirm then does
what it did before it chose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from nas.front import TrainedRow, pareto_front
from nas.study import companion
from nas.surrogate import Surrogate, observations

Z_95 = 1.96
"""Two runs closer than this many standard deviations of their difference are a tie."""
MIN_REPEATED = 3
"""Networks trained more than once before their pooled spread is the run noise."""
SAMPLING_FACTOR = 2.0
"""The run noise is at least this many times the validation split's sampling noise."""


@dataclass(frozen=True)
class Placement:
    """The rows confirm considers, the ones whose place is uncertain, and the noise used."""

    considered: tuple[int, ...]
    uncertain: frozenset[int]
    run_noise: float | None
    """Standard deviation of one run's accuracy as the study estimates it; None where it could
    not."""
    typical_deviation: float | None = None
    """The median over the considered rows of the one-run deviation used (the run noise or the
    sampling floor, whichever is larger)."""


def run_noise(
    rows: Sequence[TrainedRow], trials: Sequence[FrozenTrial], confirms: Sequence[FrozenTrial]
) -> float | None:
    """Standard deviation of one training's accuracy: pooled over `rows` trained more than once,
    else from the surrogate fitted on every training in a study's `trials` and its `confirms`;
    None with too few trainings to fit it."""
    repeated = [row.seed_accuracies for row in rows if len(row.seed_accuracies or ()) > 1]
    if len(repeated) >= MIN_REPEATED:
        squares = sum(float(np.var(runs, ddof=1)) * (len(runs) - 1) for runs in repeated)
        return math.sqrt(squares / sum(len(runs) - 1 for runs in repeated))
    surrogate = Surrogate().fit(observations(trials, confirms))
    if not surrogate.fitted:
        return None
    return surrogate.residual_scale * math.sqrt(surrogate.noise)


def study_run_noise(study: optuna.Study, rows: Sequence[TrainedRow]) -> float | None:
    """`run_noise` of `study`, its confirm study and `rows`."""
    confirm = companion(study)
    confirms = confirm.get_trials(deepcopy=False) if confirm is not None else []
    return run_noise(rows, study.get_trials(deepcopy=False), confirms)


def place_rows(rows: Sequence[TrainedRow], noise: float | None, z: float = Z_95) -> Placement:
    """Which of `rows` (every candidate trained to the end, seed means where it has confirm runs)
    confirm should train again: the front members and baselines within `z` standard deviations
    of a neighbour on the front or, for a baseline, of the best searched candidate at no more
    latency. With `noise` None, all of them."""
    front = pareto_front(rows)
    considered = {row.number: row for row in front}
    considered.update({row.number: row for row in rows if row.baseline})
    if noise is None:
        return Placement(tuple(sorted(considered)), frozenset(considered), None)
    uncertain: set[int] = set()
    for cheaper, pricier in zip(front, front[1:]):
        if _close(cheaper, pricier, noise, z):
            uncertain.update((cheaper.number, pricier.number))
    searched = pareto_front(row for row in rows if not row.baseline)
    for baseline in (row for row in rows if row.baseline):
        rivals = [row for row in searched if row.latency_ms <= baseline.latency_ms]
        if not rivals:
            continue  # no searched candidate to compare it with: one run says as much as two
        best = max(rivals, key=lambda row: row.front_accuracy)
        if _close(baseline, best, noise, z):
            uncertain.update((baseline.number, best.number))
    typical = float(
        np.median(
            [_deviation(row, noise) * math.sqrt(row.seeds or 1) for row in considered.values()]
        )
    )
    return Placement(tuple(sorted(considered)), frozenset(uncertain), noise, typical)


def _close(one: TrainedRow, other: TrainedRow, noise: float, z: float) -> bool:
    """Whether the two rows' accuracies differ by less than `z` deviations of the difference."""
    spread = math.hypot(_deviation(one, noise), _deviation(other, noise))
    return abs(one.front_accuracy - other.front_accuracy) < z * spread


def _deviation(row: TrainedRow, noise: float) -> float:
    """One row's accuracy deviation: the run noise, at least `SAMPLING_FACTOR` times the
    validation split's sampling noise, over the square root of its runs."""
    runs = row.seeds or 1
    sampling = 0.0
    if row.val_count:
        p = min(max(row.front_accuracy, 0.0), 1.0)
        sampling = math.sqrt(p * (1 - p) / row.val_count)
    return max(noise, SAMPLING_FACTOR * sampling) / math.sqrt(runs)
