"""Stopping rules: after each epoch a worker streams back, may its candidate train on?

One interface, `StoppingRule`, and one class per rule; each rule owns what it compares a
candidate with (finished learning curves, points at each rung) and rebuilds it from the study's
trials when a search resumes. The driver only asks and tells:

- `should_stop(point)` after every epoch (the rule may keep the point for later candidates);
- `on_finished(curve, latency_ms)` when a candidate is trained to its last epoch.

`RULES` maps each `--scheduler` name to its rule; a new rule is one class and one entry there
(and its name among `nas.config.SCHEDULERS`, the flag's choices, which a test holds equal to
`RULES`). `rule_for` picks the rule a search runs with: `NoStopping` under
``--no-early-stopping``, and `PrunerRule` (the study's own Optuna pruner) for a single-objective
study, whose pruner Optuna can run itself.

Zoo baselines are never stopped: they are the yardstick the front is compared with. Their
points still count as points later candidates are compared with.

The arithmetic of the rules lives beside them, free of studies and drivers:
`nas.early_stopping` (the median of finished curves) and `nas.successive_halving` (MO-ASHA).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import optuna
from optuna.trial import TrialState

from nas.config import SearchConfig
from nas.early_stopping import MedianCurveStopper
from nas.errors import InputError
from nas.evaluators.recipe import Recipe
from nas.jobs import Job
from nas.promotion import SurrogatePromotion
from nas.study import finished_curves, rung_points
from nas.successive_halving import ParetoHalving, RungPoint
from nas.surrogate import Candidate, candidate_of
from nas.trials import Outcome, TrialAttrs


@dataclass(frozen=True)
class EpochPoint:
    """A running candidate as a rule sees it after one epoch."""

    epoch: int
    """1-based: the epoch just finished."""
    accuracy: float
    """Validation accuracy after `epoch` (NaN for a broken run, which every rule stops)."""
    latency_ms: float
    baseline: bool = False
    """A zoo network: never stopped, though its point counts for later candidates."""
    trial: optuna.Trial | None = None
    """The running trial, for a rule that defers to the study's own pruner."""
    candidate: Candidate | None = None
    """The network and its free statistics, for a rule that models them."""

    @classmethod
    def of(cls, job: Job) -> EpochPoint:
        """The point of `job` after the last epoch it streamed back."""
        return cls(
            epoch=len(job.curve),
            accuracy=job.curve[-1].val_accuracy,
            latency_ms=job.price.latency_ms,
            baseline=not job.searched,
            trial=job.trial,
            candidate=job_candidate(job),
        )


def job_candidate(job: Job) -> Candidate:
    """The surrogate's view of the network `job` trains."""
    return Candidate(job.arch, job.price.mflops, job.price.params, job.price.latency_ms)


class StoppingRule(ABC):
    """Decides, epoch by epoch, whether a candidate trains on; owns all the state it needs."""

    stopped_outcome: ClassVar[Outcome] = Outcome.STOPPED
    """What a candidate this rule stops is recorded as."""

    @classmethod
    @abstractmethod
    def for_search(cls, config: SearchConfig, recipe: Recipe) -> StoppingRule:
        """The rule for a search with `config` training with `recipe`.

        Called before anything is written, so a schedule the rule cannot run is refused
        (`InputError`) while the user can still fix the command.
        """

    def load_history(self, study: optuna.Study) -> None:
        """Take in what the study's earlier trials say (a resumed search goes on as it was)."""

    @abstractmethod
    def should_stop(self, point: EpochPoint) -> bool:
        """Whether the candidate at `point` stops now; the rule may keep the point."""

    def on_finished(
        self, curve: Sequence[float], latency_ms: float, candidate: Candidate | None = None
    ) -> None:
        """A candidate trained to its last epoch with this validation-accuracy `curve`."""


class NoStopping(StoppingRule):
    """``--no-early-stopping``: every candidate trains to its last epoch."""

    @classmethod
    def for_search(cls, config: SearchConfig, recipe: Recipe) -> NoStopping:
        return cls()

    def should_stop(self, point: EpochPoint) -> bool:
        return False


@dataclass
class MedianRule(StoppingRule):
    """``--scheduler median``: stop a candidate below the median of the finished candidates at
    least as fast as it, at the same epoch (`MedianCurveStopper`)."""

    last_epoch: int
    """The schedule's last epoch: a candidate there is done, and stopping it would waste it."""
    stopper: MedianCurveStopper = field(default_factory=MedianCurveStopper)
    curves: list[list[float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    """One per curve, same order."""

    @classmethod
    def for_search(cls, config: SearchConfig, recipe: Recipe) -> MedianRule:
        return cls(last_epoch=recipe.epochs)

    def load_history(self, study: optuna.Study) -> None:
        curves, latencies = finished_curves(study)
        self.curves += curves
        self.latencies += latencies

    def should_stop(self, point: EpochPoint) -> bool:
        if point.baseline:
            return False
        return self.stopper.should_stop(
            point.epoch,
            point.accuracy,
            self.curves,
            last_epoch=self.last_epoch,
            cost=point.latency_ms,
            finished_costs=self.latencies,
        )

    def on_finished(
        self, curve: Sequence[float], latency_ms: float, candidate: Candidate | None = None
    ) -> None:
        self.curves.append(list(curve))
        self.latencies.append(latency_ms)


@dataclass
class SuccessiveHalvingRule(StoppingRule):
    """``--scheduler asha``: MO-ASHA, keeping the best 1/eta at each rung on accuracy and
    latency together (`ParetoHalving`), against every candidate that reached the rung before."""

    stopped_outcome: ClassVar[Outcome] = Outcome.NOT_PROMOTED

    halving: ParetoHalving
    at_rung: dict[int, list[RungPoint]] = field(default_factory=dict)
    """(accuracy, latency) of every candidate that reached each rung, stopped there or not."""

    @classmethod
    def for_search(cls, config: SearchConfig, recipe: Recipe) -> SuccessiveHalvingRule:
        return cls(halving_for(config, recipe))

    def load_history(self, study: optuna.Study) -> None:
        for rung, points in rung_points(study, self.halving.rungs).items():
            self.at_rung.setdefault(rung, []).extend(points)

    def should_stop(self, point: EpochPoint) -> bool:
        if point.epoch not in self.halving.rungs:
            return False
        earlier = self.at_rung.setdefault(point.epoch, [])
        stop = self.halving.should_stop(point.epoch, point.accuracy, point.latency_ms, earlier)
        earlier.append((point.accuracy, point.latency_ms))
        return stop and not point.baseline


@dataclass
class SurrogateRule(StoppingRule):
    """``--scheduler surrogate``: stop a candidate once one model of every curve so far is
    confident it cannot beat the finished candidates at least as fast (`SurrogatePromotion`)."""

    promotion: SurrogatePromotion
    running: dict[Candidate, list[float]] = field(default_factory=dict)
    """The accuracies so far of each candidate in training."""

    @classmethod
    def for_search(cls, config: SearchConfig, recipe: Recipe) -> SurrogateRule:
        return cls(SurrogatePromotion(last_epoch=recipe.epochs, seed=config.seed))

    def load_history(self, study: optuna.Study) -> None:
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        for trial in study.get_trials(deepcopy=False, states=states):
            attrs = TrialAttrs.of(trial)
            candidate = candidate_of(attrs)
            if candidate is None or not (attrs.outcome and attrs.outcome.counts):
                continue
            finished = attrs.outcome is Outcome.TRAINED
            self.promotion.add(candidate, attrs.accuracies, finished=finished)

    def should_stop(self, point: EpochPoint) -> bool:
        if point.candidate is None:
            return False
        curve = self.running.setdefault(point.candidate, [])
        del curve[point.epoch - 1 :]  # a retried candidate starts its curve again
        curve.append(point.accuracy)
        if point.baseline or not self.promotion.should_stop(point.candidate, curve):
            return False
        self.promotion.add(point.candidate, self.running.pop(point.candidate), finished=False)
        return True

    def on_finished(
        self, curve: Sequence[float], latency_ms: float, candidate: Candidate | None = None
    ) -> None:
        if candidate is not None:
            self.running.pop(candidate, None)
            self.promotion.add(candidate, curve, finished=True)


@dataclass
class PrunerRule(StoppingRule):
    """A single-objective study (``--objective reward``): the study's own Optuna pruner, the one
    `nas.study.make_pruner` gives it for the `--scheduler` named, judges each reported epoch."""

    last_epoch: int

    @classmethod
    def for_search(cls, config: SearchConfig, recipe: Recipe) -> PrunerRule:
        return cls(last_epoch=recipe.epochs)

    def should_stop(self, point: EpochPoint) -> bool:
        if point.epoch >= self.last_epoch:  # the same last-epoch rule as the median's
            return False
        if point.trial is None:
            raise ValueError("the study's pruner judges a running trial: the point needs it")
        point.trial.report(point.accuracy, point.epoch)
        return point.trial.should_prune() and not point.baseline


RULES: dict[str, type[StoppingRule]] = {
    "median": MedianRule,
    "asha": SuccessiveHalvingRule,
    "surrogate": SurrogateRule,
}
"""The rule of each `--scheduler` name."""


def rule_for(config: SearchConfig, recipe: Recipe) -> StoppingRule:
    """The rule a search with `config` runs with.

    The schedule `--scheduler` names is checked even where another rule runs, so a command
    that cannot work with stopping on is refused with it off too.
    """
    scheduled = RULES[config.scheduler].for_search(config, recipe)
    if not config.early_stopping:
        return NoStopping()
    if config.objective != "pareto":
        return PrunerRule.for_search(config, recipe)
    return scheduled


def halving_for(config: SearchConfig, recipe: Recipe) -> ParetoHalving:
    """The successive-halving schedule of `--scheduler asha` for a recipe of `recipe.epochs`.

    Refuses a schedule too short to have a rung before the work starts.
    """
    halving = ParetoHalving.for_epochs(recipe.epochs, config.reduction_factor)
    if not halving.rungs:
        raise InputError(
            f"--scheduler asha judges candidates at epochs E/eta, E/eta^2, ...: "
            f"{recipe.epochs} epochs with --reduction-factor {config.reduction_factor} leave "
            f"no such epoch; train at least {config.reduction_factor} epochs "
            f"(e.g. --epochs {config.reduction_factor**2}) or lower --reduction-factor "
            f"(2 judges at half the epochs)"
        )
    return halving
