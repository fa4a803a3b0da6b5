"""The recorder: everything a search writes about its trials and itself into the study.

Only the driver's process writes to the study database, and within it only this class records
what happened: a candidate's price, its training result, a failure or an interruption, the
reuse of an identical candidate's result, and the study's own attributes. Trial attributes go
through `nas.trials.write_attrs` and study attributes through
`nas.study_attrs.write_study_attrs`, so each name is spelled once; what gets asked and queued is
`nas.proposals`' business, and when a candidate stops is `nas.stopping`'s.
"""

from __future__ import annotations

import time

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

import nas
from nas.artifacts import save_trial_weights
from nas.config import SearchConfig
from nas.evaluators.datasets import Dataset
from nas.evaluators.latency import LatencyTable
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import TrialResult
from nas.jobs import Job
from nas.pricing import Price
from nas.search_spaces.arch import Arch
from nas.search_spaces.space import SearchSpace
from nas.study import objective_values, set_budget_constraints
from nas.study_attrs import DatasetInfo, write_study_attrs
from nas.trials import Outcome, TrialAttrs, result_attrs, write_attrs


class Recorder:
    """Writes one search's trials and study attributes; the search's only writer of records."""

    def __init__(
        self,
        study: optuna.Study,
        config: SearchConfig,
        *,
        space: SearchSpace,
        table: LatencyTable,
        recipe: Recipe,
        data: Dataset,
        artifacts: FileSystemArtifactStore | None = None,
    ) -> None:
        self.study = study
        self.config = config
        self.space = space
        self.table = table
        self.recipe = recipe
        self.data = data
        self.artifacts = artifacts

    def record_study_attrs(self) -> None:
        """What the study's trials were measured with, for reports and a later resume."""
        write_study_attrs(
            self.study,
            latency_table=self.table.metadata.to_dict(),
            space=self.space.to_dict(),
            recipe=self.recipe.to_dict(),
            dataset=DatasetInfo.of(self.data),
        )

    # ---- a candidate asked for --------------------------------------------------------------

    def priced(self, trial: optuna.Trial, arch: Arch, cost: Price, asked: float) -> None:
        """The candidate and its cost, feasible or not; `asked`: when the driver asked for it
        (`time.monotonic()`), so each trial says what proposing it cost the driver."""
        write_attrs(
            trial,
            arch=arch.to_string(),
            arch_json=arch.to_dict(),
            mflops=cost.mflops,
            params=cost.params,
            latency_ms=cost.latency_ms,
            target=self.table.target,
            latency_n_measured=cost.latency_n_measured,
            latency_n_modelled=cost.latency_n_modelled,
            violations=list(cost.violations),
            cost_input=list(self.config.deploy_input),
            proxy_input=list(self.recipe.proxy_input(self.data.input_shape)),
            nas_version=nas.__version__,
        )
        set_budget_constraints(trial, cost.violations)
        write_attrs(trial, driver_seconds=round(time.monotonic() - asked, 4))

    def infeasible(self, trial: optuna.Trial) -> None:
        """Over budget: priced, never trained."""
        write_attrs(trial, outcome=Outcome.INFEASIBLE)
        self.study.tell(trial, state=TrialState.PRUNED)

    def duplicate_in_flight(self, trial: optuna.Trial, of: int) -> None:
        """The same candidate is training right now as trial `of`."""
        write_attrs(trial, outcome=Outcome.DUPLICATE, duplicate_of=of)
        self.study.tell(trial, state=TrialState.PRUNED)

    def reuse(self, trial: optuna.Trial, previous_number: int) -> None:
        """A candidate trained before (same arch, recipe and seed) gets its values, not a rerun."""
        previous = self.study.get_trials(deepcopy=False)[previous_number]
        attrs = TrialAttrs.of(previous)
        write_attrs(
            trial,
            accuracy=attrs.accuracy,
            val_count=attrs.val_count,
            val_correct=attrs.val_correct,
            accuracy_interval=attrs.accuracy_interval,
            curve=attrs.curve,
            train_seconds=attrs.train_seconds,
            images_per_second=attrs.images_per_second,
            outcome=Outcome.DUPLICATE,
            duplicate_of=previous_number,
        )
        self.study.tell(trial, previous.values)

    # ---- a candidate that ran ---------------------------------------------------------------

    def trained(
        self, job: Job, result: TrialResult, outcome: Outcome, weights: bytes | None = None
    ) -> None:
        """A candidate trained to the end (`Outcome.TRAINED`) or stopped early.

        A candidate stopped early is PRUNED, whichever rule stopped it: its accuracy after
        fewer epochs is on another scale than a finished candidate's, so it must not join the
        Pareto front. TPE ranks PRUNED trials below every COMPLETE one, which is what stopping
        found; NSGA-II builds its generations from COMPLETE trials only.
        """
        self._result(job, result, outcome)
        if weights:  # artifacts can only be attached before the trial finishes
            assert self.artifacts is not None, "weights need an artifact store"
            save_trial_weights(job.trial, weights, self.artifacts)
        if outcome is Outcome.TRAINED:
            accuracy = float(result.accuracy)
            values = objective_values(self.config, accuracy, job.price.latency_ms)
            self.study.tell(job.trial, values)
        else:
            self.study.tell(job.trial, state=TrialState.PRUNED)

    def failed(self, job: Job, error: str, result: TrialResult | None = None) -> None:
        """A candidate whose training failed (`result`: what it measured) or whose worker was
        lost (no result: where it was, and the epochs it streamed before)."""
        trial = job.trial
        if result is not None:
            self._result(job, result, Outcome.FAILED)
        else:
            write_attrs(trial, curve=job.curve_attr())
            if job.curve:  # where it was running when it was lost
                write_attrs(
                    trial, worker_host=job.host, worker_node=job.node_id, worker_device=job.device
                )
        write_attrs(trial, outcome=Outcome.FAILED, error=error, attempt=job.attempt)
        self.study.tell(trial, state=TrialState.FAIL)

    def interrupted(self, job: Job) -> None:
        """A candidate the user's Ctrl-C (or a lost lease) took off its worker."""
        write_attrs(
            job.trial, outcome=Outcome.INTERRUPTED, curve=job.curve_attr(), attempt=job.attempt
        )
        self.study.tell(job.trial, state=TrialState.FAIL)

    def _result(self, job: Job, result: TrialResult, outcome: Outcome) -> None:
        write_attrs(
            job.trial,
            **result_attrs(result, outcome),
            recipe=self.recipe.to_dict(),
            seed=self.recipe.seed,
            worker_host=job.host,
            worker_node=job.node_id,
            worker_device=job.device,
            wall_seconds=round(time.monotonic() - job.dispatched, 3),
            attempt=job.attempt,
        )
