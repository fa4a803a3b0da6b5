"""Promotion by the surrogate's uncertainty: a candidate trains on unless one model of every
curve so far is confident it cannot join the front (``--scheduler surrogate``).

The median rule and successive halving compare one candidate's accuracy at an epoch with other
candidates' accuracies at that epoch, and so trust one noisy number. Here the evidence is pooled
instead: the surrogate of `nas.surrogate` is fitted on every epoch of every candidate trained so
far (finished, stopped or not promoted) and on the running candidate's own epochs, each an
observation at its fidelity, and predicts the accuracy the candidate would reach at the last
epoch, with an uncertainty. Its own early epochs and those of networks like it carry over to
its final accuracy through the kernel, which sees the encoding and the fidelity together.

A candidate can join the front only if it beats every finished candidate at least as fast as
it, so the bar is the best final accuracy among those. The candidate stops when even the
optimistic end of its prediction, ``mean + z * std``, stays under the bar: a candidate whose
place is uncertain trains on, and a clear loser stops as early as the evidence allows.

Before `min_finished` candidates have finished, or when nothing finished is as fast, nothing
stops: there is no bar, or too little to fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sklearn.gaussian_process.kernels import Kernel

from nas.surrogate import MIN_OBSERVATIONS, Candidate, Observation, Surrogate

ONE_SIDED_95 = 1.645
"""z of a one-sided 95% bound."""
MAX_OBSERVATIONS = 2000
"""Most observations one decision fits on: every epoch of every curve would grow as trials
times epochs, and the exact fit as its cube. Beyond it the curves nearest in latency to the
candidate are kept (the bar comes from the faster ones, and networks of like latency are the
most like it); the candidate's own epochs always are."""


@dataclass
class SurrogatePromotion:
    """Decides whether a running candidate goes on, from every curve seen so far.

    Args:
        last_epoch: the schedule's last epoch: a candidate there is done.
        warmup_epochs: never stop at or before this epoch (1-based), as the median rule.
        min_finished: finished candidates needed before anything stops.
        z: how optimistic the bound is (`ONE_SIDED_95`).
        seed: the surrogate's seed (its hyperparameter subset on large studies).
    """

    last_epoch: int
    warmup_epochs: int = 1
    min_finished: int = 5
    z: float = ONE_SIDED_95
    seed: int = 0
    curves: list[tuple[Candidate, list[float]]] = field(default_factory=list)
    """Every candidate that finished or was stopped, with the accuracies it reached."""
    finished: list[tuple[float, float]] = field(default_factory=list)
    """(final accuracy, latency ms) of every candidate trained to the last epoch."""
    tuned: tuple[int, Kernel] | None = None
    """The kernel fitted with its hyperparameters, and how many curves it saw: a candidate's
    later epochs add only its own points, so they reuse it with an exact fit alone."""

    def add(self, candidate: Candidate, curve: Sequence[float], *, finished: bool) -> None:
        """A candidate that finished (or was stopped) with validation accuracies `curve`."""
        self.curves.append((candidate, list(curve)))
        if finished and curve:
            self.finished.append((curve[-1], candidate.latency_ms))

    def bar(self, latency_ms: float) -> float | None:
        """The accuracy to beat at `latency_ms`: the best finished candidate at least as fast."""
        faster = [accuracy for accuracy, latency in self.finished if latency <= latency_ms]
        return max(faster) if faster else None

    def should_stop(self, candidate: Candidate, curve: Sequence[float]) -> bool:
        """Whether `candidate`, with validation accuracies `curve` so far, stops now."""
        epoch = len(curve)
        if epoch <= self.warmup_epochs or epoch >= self.last_epoch:
            return False
        if len(self.finished) < self.min_finished:
            return False
        bar = self.bar(candidate.latency_ms)
        if bar is None:
            return False
        upper = self.optimistic_final(candidate, curve)
        return upper is not None and upper < bar

    def optimistic_final(self, candidate: Candidate, curve: Sequence[float]) -> float | None:
        """``mean + z * std`` of the final accuracy the surrogate predicts for `candidate`."""
        observed = self.evidence(candidate, curve)
        if len(observed) < MIN_OBSERVATIONS:
            return None
        reuse = self.tuned[1] if self.tuned and self.tuned[0] == len(self.curves) else None
        surrogate = Surrogate(self.seed).fit(observed, [candidate], kernel=reuse)
        if not surrogate.fitted or surrogate.epochs < self.last_epoch:
            return None
        if reuse is None and surrogate.kernel is not None:
            self.tuned = (len(self.curves), surrogate.kernel)
        mean, std = surrogate.predict([candidate])
        return float(mean[0] + self.z * std[0])

    def evidence(self, candidate: Candidate, curve: Sequence[float]) -> list[Observation]:
        """What one decision on `candidate` fits on: its own epochs, then every epoch of the
        other curves, nearest in latency first, up to `MAX_OBSERVATIONS`."""
        found = _epochs(candidate, curve)
        nearest = sorted(
            self.curves, key=lambda seen: abs(seen[0].latency_ms - candidate.latency_ms)
        )
        for seen, accuracies in nearest:
            if len(found) + len(accuracies) > MAX_OBSERVATIONS:
                break
            found += _epochs(seen, accuracies)
        return found


def _epochs(candidate: Candidate, curve: Sequence[float]) -> list[Observation]:
    return [Observation(candidate, epoch, value) for epoch, value in enumerate(curve, start=1)]
