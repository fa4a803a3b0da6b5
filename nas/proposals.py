"""Proposals: which candidate trains next.

`Proposer.next` asks Optuna for a trial, turns its suggestions (or the zoo network or retry it
was queued with) into an `Arch`, prices it at the deployment input, and hands back a `Job` only
for a candidate within budget that is neither trained already nor training now. Every other
candidate it asked for is recorded on the way (over budget, or a duplicate that reuses a
trained twin's result), so the sampler learns from it too. The proposer also owns the queue:
the zoo baselines before a search, and the candidates to run again after a crash or an
interruption.

This is the one place that chooses what to train, so a choice beyond the sampler's goes here
behind the same `next`: with ``--sampler bands`` (`nas.reach`), a proposal is steered into the
least-covered latency band before the sampler is asked, by queueing the chosen candidate's
parameters, so the trial records exactly what trained. With ``--sampler surrogate``
(`nas.acquisition`), every proposal is queued that way: the candidate of a priced pool expected to
grow the front most per second of training, by a surrogate fitted on every trial so far.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.acquisition import SurrogateProposals
from nas.config import ALL_BASELINES, SearchConfig
from nas.coverage import Coverage
from nas.errors import InputError, SearchFailed
from nas.evaluators.latency import LatencyTable
from nas.evaluators.recipe import Recipe
from nas.jobs import Job
from nas.monitor import SearchMonitor
from nas.pricing import Pricer
from nas.reach import Reach, priced_latencies, steer_seed, study_coverage
from nas.recorder import Recorder
from nas.search_spaces.arch import Arch
from nas.search_spaces.limits import MAX_INPUT_SIZE
from nas.search_spaces.signatures import InputShape, arch_signatures
from nas.search_spaces.space import SearchSpace
from nas.search_spaces.zoo import ZOO
from nas.study import companion, requeue, requeue_orphans
from nas.trials import Outcome, TrialAttrs, check_names

MAX_FRUITLESS_ASKS = 300
"""Consecutive candidates without one to train (all over budget) before the search gives up."""


class Proposer:
    """Proposes the candidates of one search, recording through `recorder` those it skips."""

    def __init__(
        self,
        study: optuna.Study,
        config: SearchConfig,
        *,
        space: SearchSpace,
        table: LatencyTable,
        recorder: Recorder,
        monitor: SearchMonitor,
        pricer: Pricer | None = None,
    ) -> None:
        self.study = study
        self.config = config
        self.space = space
        self.table = table
        self.recorder = recorder
        self.monitor = monitor
        self.pricer = pricer or Pricer(config, table)
        """Prices each network once; a benchmark may hand in one that knows costs already."""
        self.trained = trained_archs(study)
        """Network key -> number of the trial that trained it to the end."""
        self.reach: Reach | None = None
        """The latency bands steered by, with ``--sampler bands`` or ``surrogate``; None: the
        sampler alone."""
        self.surrogate: SurrogateProposals | None = None
        """Chooses every proposal, with ``--sampler surrogate``."""
        if config.sampler in ("bands", "surrogate"):
            searched, feasible = priced_latencies(study)
            try:
                self.reach = Reach(
                    space,
                    config,
                    self.pricer,
                    seed=steer_seed(config, len(study.get_trials(deepcopy=False))),
                    proposed=searched,
                    feasible=feasible,
                )
            except InputError as error:  # a table that cannot price the space's corners
                monitor.say(
                    f"--sampler {config.sampler}: no latency bands ({error}); NSGA-II proposes alone"
                )
        if config.sampler == "surrogate" and self.reach is not None:
            self.surrogate = SurrogateProposals(self.reach, seed=config.seed)

    def next(self, in_flight: Mapping[str, int]) -> Job:
        """Ask until a feasible, new candidate comes up; record every other one on the way.

        New means neither trained before nor training right now (`in_flight`: network key,
        `Arch.network_key`, -> trial).
        """
        for _ in range(MAX_FRUITLESS_ASKS):
            asked = time.monotonic()
            if self.reach is not None:
                self._steer(in_flight)
            trial = self.study.ask()
            queued = TrialAttrs.of(trial)  # a zoo network or a retry carries what it must run
            arch = ZOO[queued.zoo]() if queued.zoo else self.space.sample(trial)
            cost = self.pricer(arch)
            self.recorder.priced(trial, arch, cost, asked)
            if self.reach is not None:
                self.reach.priced(cost)
            if not cost.feasible:
                self.recorder.infeasible(trial)
                self.monitor.infeasible_skipped(
                    trial.number, cost.mflops, cost.latency_ms, cost.over_budget()
                )
                continue
            key = arch.network_key()
            previous = self.trained.get(key)
            if previous is not None and queued.retry_of is None:
                self.recorder.reuse(trial, previous)
                continue
            if key in in_flight:
                self.recorder.duplicate_in_flight(trial, in_flight[key])
                continue
            job = Job(trial, arch, cost, attempt=queued.attempt or 1, baseline=queued.baseline)
            if self.reach is not None and job.searched and queued.retry_of is None:
                self.reach.dispatched(cost)
            return job
        raise SearchFailed(
            f"{MAX_FRUITLESS_ASKS} candidates in a row were over budget or "
            f"already trained: the budget leaves too little of space "
            f"{self.space.name!r}; raise it or use another space"
        )

    def _steer(self, in_flight: Mapping[str, int]) -> None:
        """Queue a candidate for the least-covered latency band when one is under-covered, or
        (``--sampler surrogate``) the surrogate's choice for every proposal.

        Only when nothing is queued already (baselines, retries), since the study hands out
        queued trials first come, first served.
        """
        assert self.reach is not None
        if self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return
        if self.surrogate is not None:
            confirm_study = companion(self.study)
            chosen = self.surrogate.choose(
                self.study.get_trials(deepcopy=False),
                confirm_study.get_trials(deepcopy=False) if confirm_study else [],
                lambda key: key in self.trained or key in in_flight,
            )
            if chosen is not None:
                self.study.enqueue_trial(chosen)
            return
        band = self.reach.wanted()
        if band is None:
            return
        params = self.reach.draw(band, lambda key: key in self.trained or key in in_flight)
        if params is not None:
            self.study.enqueue_trial(params)

    def coverage(self) -> Coverage | None:
        """The study's trained candidates per latency band, and against each zoo network within
        the budget (`nas.coverage`); None where the target's table cannot price the space."""
        return study_coverage(self.study, self.config, self.space, self.pricer, self.reach)

    def on_trained(self, job: Job) -> None:
        """`job` trained to its last epoch: a later proposal of its arch reuses its result."""
        self.trained[job.arch.network_key()] = job.trial.number

    # ---- the queue ----------------------------------------------------------------------------

    def enqueue_baselines(self) -> None:
        """Queue the zoo networks that fit the budget as baselines, trained before the search.

        They are what the search must beat, not part of it: they do not count toward --trials
        (`nas search --trials 4` trains four searched candidates besides them), and they enter
        the sampler's history like any trial, so the search starts from known designs. At most
        ``--baselines`` of them, spread over latency (`spread_over_latency`). One the space can
        express is queued by its parameters; any other by its zoo name. One the proxy input is
        too small for (`cannot_train`) is left out, in one line, before the spread is drawn: it
        would fail every attempt, and the spread would lose the yardstick in its place.
        """
        recipe, data_shape = self.recorder.recipe, self.recorder.data.input_shape
        within: dict[str, tuple[Arch, float]] = {}
        refused: list[str] = []
        for name, factory in ZOO.items():
            arch = factory()
            try:
                cost = self.pricer.estimate(arch)  # as fvcore counts, building nothing
            except InputError:
                continue  # the table cannot price this network's operators
            if not cost.feasible:
                continue
            if cannot_train(arch, recipe, data_shape) is None:
                within[name] = (arch, cost.latency_ms)
            else:
                refused.append(name)
        if refused:
            self.monitor.say(
                "baselines: "
                + left_out_line(refused, recipe.proxy_input(data_shape), "proxy input")
                + proxy_resolution_hint(refused, recipe, data_shape)
            )
        limit = None if self.config.baselines == ALL_BASELINES else int(self.config.baselines)
        chosen = spread_over_latency({name: ms for name, (_, ms) in within.items()}, limit)
        for name in chosen:
            params = self.space.params_of(within[name][0])
            fixed = {} if params else {"zoo": name}
            self.study.enqueue_trial(
                params or {}, user_attrs=check_names({**fixed, "baseline": name})
            )

    def requeue(self, trial: optuna.Trial | FrozenTrial, reason: str) -> None:
        """Run the same candidate again, first, as attempt n + 1."""
        requeue(self.study, trial, reason=reason)

    def requeue_orphans(self) -> list[int]:
        """Queue again the trials a dead driver (or one stopped between ask and dispatch) left
        RUNNING; returns their numbers."""
        return requeue_orphans(self.study)


def cannot_train(arch: Arch, recipe: Recipe, data_shape: InputShape) -> str | None:
    """Why `arch` cannot train with `recipe` on images of `data_shape`; None when it can.

    A network with an unpadded window (SqueezeNet's stem and ceil-mode pools) leaves nothing of
    a small enough input. What it sees is the recipe's: its resolution, and its stride plan,
    which may free the network's strides (and so let it take a smaller input) or not. The
    signatures of that network at that input follow the builder's shapes, so they refuse
    exactly what the worker could not build, without building anything.
    """
    try:
        arch_signatures(recipe.proxy_arch(arch, data_shape), recipe.proxy_input(data_shape))
    except InputError as error:
        return str(error)
    return None


def left_out_line(names: Iterable[str], trains_at: InputShape, what: str) -> str:
    """One line naming the zoo networks within the budget that `trains_at` (the `what`: the
    proxy input, the final training's) is too small for, so no one looks for them in vain."""
    ordered = sorted(names)
    _, height, width = trains_at
    them = "it" if len(ordered) == 1 else "them"
    return (
        f"{', '.join(ordered)} within the budget but left out: the {height}x{width} {what} is "
        f"too small for {them}"
    )


def proxy_resolution_hint(names: Iterable[str], recipe: Recipe, data_shape: InputShape) -> str:
    """``; --proxy-resolution N takes them``: the smallest side above today's at which every
    network of `names` trains under the same stride plan; empty when none does.

    The smallest that works, not a bound: freeing strides at a small input can leave a network
    trainable at one side and not at the next.
    """
    archs = [ZOO[name]() for name in names]
    _, height, width = recipe.proxy_input(data_shape)
    for side in range(min(height, width) + 1, MAX_INPUT_SIZE + 1):
        at = replace(recipe, resolution=side)
        if all(cannot_train(arch, at, data_shape) is None for arch in archs):
            them = "it" if len(archs) == 1 else "them"
            return f"; --proxy-resolution {side} takes {them}"
    return ""


def spread_over_latency(latencies: Mapping[str, float], limit: int | None) -> list[str]:
    """At most `limit` of the named networks (all where None), spread evenly over their latency
    range, fastest first.

    The slowest is always kept: it is the hand-designed network closest to the budget, the one
    a user comparing at that budget names first. The fastest comes next, then the one nearest
    each evenly spaced latency between them, so the yardsticks sit along the whole front rather
    than bunched where the zoo happens to be dense. Ties go by name, so the choice is the same
    on every run.
    """
    ordered = sorted(latencies, key=lambda name: (latencies[name], name))
    if limit is None or len(ordered) <= limit:
        return ordered
    if limit <= 0:
        return []
    low, high = latencies[ordered[0]], latencies[ordered[-1]]
    if limit == 1:
        return [ordered[-1]]
    targets = [high, low] + [low + (high - low) * i / (limit - 1) for i in range(1, limit - 1)]
    chosen: list[str] = []
    for target in targets:
        nearest = min(
            (name for name in ordered if name not in chosen),
            key=lambda name: (abs(latencies[name] - target), latencies[name], name),
        )
        chosen.append(nearest)
    return sorted(chosen, key=lambda name: (latencies[name], name))


def trained_archs(study: optuna.Study) -> dict[str, int]:
    """Network key (`Arch.network_key`) -> trial number of every candidate `study` trained to
    the end."""
    trained = (
        (trial.number, TrialAttrs.of(trial))
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    )
    return {
        Arch.from_string(attrs.arch).network_key(): number
        for number, attrs in trained
        if attrs.outcome is Outcome.TRAINED and attrs.arch
    }
