"""What trains next under ``--sampler surrogate``: the candidate expected to grow the front most
per second of training.

Every proposal draws a pool of new candidates within budget across the whole latency range
(`nas.reach.Reach.pool`; when it holds none, NSGA-II proposes), prices them from their
signatures, and asks the surrogate fitted on every training so far (`nas.surrogate`) for each
one's accuracy and uncertainty. Latency is known before training, so the expected gain in the
accuracy-latency hypervolume has a closed form (`expected_hypervolume_gain`): the expected
improvement over the front's accuracy, summed over the latency it would newly dominate. It is
divided by the expected training seconds (`TrainingCost`), and the best candidate's parameters
are queued. The bands are covered as under ``--sampler bands``: while a latency band is
under-covered, the choice is made among the pool's candidates in that band.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import norm

from nas.reach import Reach
from nas.surrogate import Candidate, Observation, Surrogate, observations, prior_score

POOL = 1024
"""Candidates drawn per proposal (those over budget, trained or drawn twice are dropped)."""
SCOUT = 64
"""Draws per proposal once a whole pool held nothing new, until one does again: a budget that
leaves little of the space is then left to the sampler without a thousand draws per ask."""


def expected_hypervolume_gain(
    mean: np.ndarray,
    std: np.ndarray,
    latency: np.ndarray,
    front: Sequence[tuple[float, float]],
    reference: tuple[float, float],
) -> np.ndarray:
    """Expected area each candidate adds to the front's (accuracy up, ms down) hypervolume.

    `front`: (ms, accuracy) points; `reference`: (accuracy, ms) below and right of everything.
    A candidate at latency l with accuracy A ~ N(mean, std) adds, over each stretch of latency
    from l to the reference where the front's best accuracy so far is f, the stretch's length
    times E[max(A - f, 0)].
    """
    ref_accuracy, ref_ms = reference
    points = sorted((ms, accuracy) for ms, accuracy in front if ms < ref_ms)
    edges = [ms for ms, _ in points] + [ref_ms]
    levels, best = [ref_accuracy], ref_accuracy
    for _, accuracy in points:
        best = max(best, accuracy)
        levels.append(best)
    starts = np.array([-np.inf, *edges[:-1]])  # stretch j: [starts[j], edges[j]), level j
    ends = np.array(edges)
    lengths = np.clip(
        np.minimum(ends[None, :], ref_ms) - np.maximum(starts[None, :], latency[:, None]), 0, None
    )
    sigma = np.maximum(std, 1e-9)[:, None]
    gap = mean[:, None] - np.array(levels)[None, :]
    z = gap / sigma
    improvement = gap * norm.cdf(z) + sigma * norm.pdf(z)
    return (lengths * improvement).sum(axis=1)


class TrainingCost:
    """Expected CPU-seconds of training a candidate: a least-squares line in multiply-adds
    through the observations that timed their training; equal for every candidate while fewer
    than two did (a looked-up accuracy takes no time)."""

    def __init__(self, observed: Sequence[Observation]) -> None:
        timed = [
            (o.candidate.mflops, o.train_seconds)
            for o in observed
            if o.train_seconds is not None and o.train_seconds > 0
        ]
        self.line: tuple[float, float] | None = None
        if len({mflops for mflops, _ in timed}) >= 2:
            x, y = np.array(timed).T
            slope, intercept = np.polyfit(x, y, 1)
            self.line = (float(slope), float(intercept))
            self.floor = float(y.min()) / 2

    def __call__(self, candidates: Sequence[Candidate]) -> np.ndarray:
        if self.line is None:
            return np.ones(len(candidates))
        slope, intercept = self.line
        seconds = slope * np.array([c.mflops for c in candidates]) + intercept
        return np.maximum(seconds, self.floor)


class SurrogateProposals:
    """Chooses each proposal of one search from a priced pool, by the surrogate."""

    def __init__(self, reach: Reach, seed: int) -> None:
        self.reach = reach
        self.seed = seed
        self.draws = POOL

    def choose(
        self,
        trials: Sequence[Any],
        confirms: Sequence[Any],
        taken: Callable[[str], bool],
    ) -> dict[str, Any] | None:
        """Parameters of the candidate to train next, or None when the pool holds nothing new
        (the study's sampler proposes then). `trials`/`confirms`: the study's and its confirm
        study's trials; `taken`: whether a network key is trained or training."""
        drawn = self.reach.pool(self.draws, taken)
        self.draws = POOL if drawn else SCOUT
        if not drawn:
            return None
        pricer = self.reach.pricer
        pool = []
        for params, arch in drawn:
            cost = pricer.estimate(arch)
            pool.append((params, Candidate(arch, cost.mflops, cost.params, cost.latency_ms)))
        band = self.reach.wanted()
        if band is not None:
            bands = self.reach.bands()
            inside = [p for p in pool if bands.band_of(p[1].latency_ms) == band]
            if inside:
                pool = inside
            else:  # as `Reach.draw` gives up: pass the band over until the bands change
                self.reach.exhausted.add((bands, band))
        candidates = [candidate for _, candidate in pool]
        observed = observations(trials, confirms)
        surrogate = Surrogate(self.seed).fit(observed, candidates)
        if not surrogate.fitted:
            return pool[int(np.argmax(prior_score(candidates)))][0]
        score = self._gain(surrogate, observed, candidates) / TrainingCost(observed)(candidates)
        return pool[int(np.argmax(score))][0]

    def _gain(
        self, surrogate: Surrogate, observed: Sequence[Observation], candidates: list[Candidate]
    ) -> np.ndarray:
        """Expected hypervolume gain of each candidate over the front of the trained networks'
        predicted accuracies (the evidence pooled, not each one's own run)."""
        trained = list({o.candidate.arch.network_key(): o.candidate for o in observed}.values())
        known, _ = surrogate.predict(trained)
        mean, std = surrogate.predict(candidates)
        front = [(c.latency_ms, float(a)) for c, a in zip(trained, known)]
        latency = np.array([c.latency_ms for c in candidates])
        top = max(self.reach.bands().edges[-1], float(latency.max()))
        reference = (min(float(known.min()), float(mean.min())), top)
        return expected_hypervolume_gain(mean, std, latency, front, reference)
