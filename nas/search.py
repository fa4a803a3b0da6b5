"""The search driver: ask Optuna, price, dispatch to Ray, stream epochs back, tell Optuna.

The driver is the only process that touches the study database. Each loop keeps up to
``workers`` candidates training; every over-budget candidate is priced, recorded as infeasible
and never trained; every epoch a worker streams back can stop its candidate early; a worker
that dies fails its trial, which is retried with the same parameters. Ctrl-C stops cleanly and
queues the interrupted candidates so that ``--resume`` runs them first.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import ray
from optuna.trial import TrialState

import nas
from nas.artifacts import attach_pareto_artifacts, save_trial_weights
from nas.config import SearchConfig
from nas.confirm import run_confirm
from nas.early_stopping import MedianCurveStopper
from nas.errors import InputError, SearchFailed
from nas.evaluators.datasets import Dataset, load_dataset
from nas.evaluators.device import mixed_precision_for
from nas.evaluators.latency import LatencyTable, load_table
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import EpochRecord, Status, TrialResult
from nas.export import ExportFailed
from nas.finalize import FinalizeOptions, FinalizeResult, run_finalize
from nas.finalize import prepare as prepare_finalize
from nas.front import TrainedRow, pareto_rows
from nas.monitor import SearchMonitor
from nas.outputs import write_outputs
from nas.preflight import check_search_inputs
from nas.pricing import Price, check_budget_is_reachable, price
from nas.ray_cluster import RayConnection, join_ray, worker_slots
from nas.ray_cluster import describe as describe_ray
from nas.ray_cluster import start_local_ray as start_local_ray  # noqa: F401 (benchmarks use it)
from nas.recipes import recipe_for
from nas.search_spaces.arch import Arch
from nas.search_spaces.space import SearchSpace, load_space
from nas.search_spaces.zoo import ZOO
from nas.storage import (
    StorageUnavailable,
    StudyLease,
    artifact_store_for,
    mask_password,
    open_storage,
)
from nas.study import (
    FINAL_SUFFIX,
    check_study_name,
    count_outcomes,
    count_trained,
    finished_curves,
    objective_values,
    open_study,
    requeue,
    requeue_orphans,
    rung_points,
    set_budget_constraints,
)
from nas.successive_halving import ParetoHalving, RungPoint
from nas.trials import Outcome, TrialAttrs, check_names, result_attrs, write_attrs
from nas.worker import WorkerMessage, check_gpu_training, error_line, remote_trainer

MAX_FRUITLESS_ASKS = 300
"""Consecutive candidates without one to train (all over budget) before the search gives up."""

MAX_FAILURES_IN_ROW = 10
"""Consecutive failed trials (at least two per worker slot) before the search gives up.

A cause that fails every trial (a worker that cannot import the package, a time limit no
candidate meets) would otherwise fail trial after trial for as long as the search runs.
"""


@dataclass
class SearchResult:
    """What a finished (or interrupted) search leaves behind."""

    study_name: str
    storage: str
    out_dir: Path
    pareto: list[TrainedRow]
    n_trained: int
    """Searched candidates trained (what --trials counts); baselines are `n_baselines`."""
    n_infeasible: int
    n_failed: int
    wall_seconds: float
    interrupted: bool = False
    n_baselines: int = 0
    final: FinalizeResult | None = None
    """What `--finalize` trained, when it was asked for."""


@dataclass
class _Job:
    """A candidate out on a worker."""

    trial: optuna.Trial
    arch: Arch
    price: Price
    attempt: int
    baseline: str | None = None
    dispatched: float = field(default_factory=time.monotonic)
    curve: list[EpochRecord] = field(default_factory=list)
    host: str | None = None
    node_id: str | None = None
    device: dict[str, Any] | None = None
    """Where the worker runs, once it has streamed a record."""

    def partial_result(self) -> TrialResult:
        """What a candidate stopped early is recorded with: its last epoch, as a finished one is."""
        last = self.curve[-1]
        return TrialResult(
            status=Status.STOPPED,
            accuracy=last.val_accuracy,
            curve=list(self.curve),
            train_seconds=round(sum(epoch.seconds for epoch in self.curve), 3),
            images_per_second=last.images_per_second,
            host=self.host or "",
            val_count=last.val_count,
        )


def search(config: SearchConfig, monitor: SearchMonitor | None = None) -> SearchResult:
    """Run (or resume) the search `config` describes; the CLI is a thin layer over this."""
    return _Driver(config).run(monitor)


class _Driver:
    def __init__(self, config: SearchConfig) -> None:
        # Everything a user can get wrong is checked before Ray starts or a trial is written.
        self.config = config
        self.space: SearchSpace = load_space(config.space)
        check_search_inputs(config, self.space)  # output folder writable, space within limits
        self.table: LatencyTable = load_table(config.target)
        check_budget_is_reachable(self.space, config, self.table)
        self.data: Dataset = load_dataset(
            config.dataset, config.data_dir, seed=config.seed, limit_train=config.limit_train
        )
        self.recipe = recipe_for(config)
        self.halving = halving_for(config, self.recipe)
        self.storage = open_storage(config.storage, outage_window_s=config.storage_outage_s)
        # Taken before the study is touched: a live driver's trials must never be requeued.
        self.lease = StudyLease.acquire(self.storage.engine, config.study_name)
        self.ray: RayConnection | None = None
        self.gpu: dict[str, Any] | None = None
        try:
            self.artifacts = artifact_store_for(config.storage, config.artifact_dir)
            # Ray before a new study: an address nothing answers on, or a trial no node can run,
            # must not leave a study that the corrected command would need --resume for. A
            # resumed study exists already, so its (fast) checks come first.
            if config.resume:
                self.study = open_study(config, self.storage, self.recipe)
            else:
                check_study_name(config, self.storage)
            self.ray = join_ray(config.ray_address, config.cpus_per_trial, config.gpus_per_trial)
            self.gpu = check_gpu_training(config.cpus_per_trial, config.gpus_per_trial)
            if not config.resume:
                self.study = open_study(config, self.storage, self.recipe)
        except BaseException:
            if self.ray is not None:
                self.ray.close()
            self.lease.release()
            raise
        self.stopper = MedianCurveStopper()
        self.curves, self.curve_latencies = finished_curves(self.study)
        self.at_rung: dict[int, list[RungPoint]] = (
            rung_points(self.study, self.halving.rungs) if self.halving else {}
        )
        self.trained_archs = self._trained_archs()
        self.failures_in_row = 0
        self.last_error = ""

    # ---- the loop ---------------------------------------------------------------------------

    def run(self, monitor: SearchMonitor | None) -> SearchResult:
        previous = _stop_once(lambda message: self.say(message))
        try:
            return self._run(monitor)
        finally:
            _restore_handlers(previous)
            self.lease.release()

    def say(self, message: str) -> None:
        """Tell the user through the live monitor once it exists, on stderr before that."""
        monitor = getattr(self, "monitor", None)
        if monitor is not None:
            monitor.say(message)
        else:
            print(message, file=sys.stderr, flush=True)

    def _run(self, monitor: SearchMonitor | None) -> SearchResult:
        started = time.monotonic()
        config, study = self.config, self.study
        orphans = requeue_orphans(study)
        self._record_study_attrs()
        if config.warm_start and not config.resume:
            self._enqueue_zoo()
        trained, _ = count_trained(study)
        monitor = monitor or SearchMonitor(config.trials, already_trained=trained)
        self.monitor = monitor
        self.storage.notify = monitor.say
        monitor.say(
            f"study {study.study_name!r} in {mask_password(config.storage)}"
            + (f"; re-running trials {orphans} left running" if orphans else "")
        )
        if self.ray is not None:
            monitor.say(describe_ray(self.ray))
        if self.gpu is not None:
            monitor.say(_describe_gpu(self.gpu, config.gpus_per_trial, self.recipe))
        elif config.gpus_per_trial > 0:
            monitor.say(
                "GPU trials: no GPU was free to check before the first trial; a trial whose "
                "GPU torch cannot use fails saying why"
            )
        trainer = remote_trainer(config.cpus_per_trial, config.gpus_per_trial)
        data_ref = ray.put(self.data)
        running: dict[Any, _Job] = {}
        interrupted = False
        final = None
        try:
            with monitor:
                while True:
                    while (
                        len(running) < self._slots()
                        and trained + _searched(running) < config.trials
                    ):
                        in_flight = {
                            job.arch.to_string(): job.trial.number for job in running.values()
                        }
                        job = self._next_job(monitor, in_flight)
                        running[self._submit(trainer, job, data_ref)] = job
                        monitor.started(
                            job.trial.number,
                            job.arch.to_string(),
                            job.price.mflops,
                            job.price.latency_ms,
                            _job_note(job),
                        )
                    if not running:
                        break
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                    if why := self.lease.stop_reason():
                        for generator in running:
                            ray.cancel(generator)
                        raise SearchFailed(why)
                    for generator in ready:
                        trained += self._advance(generator, running, monitor)
                    if self._failing_throughout():
                        self._requeue_running(running)
                        raise SearchFailed(
                            f"{self.failures_in_row} trials in a row failed (the last: "
                            f"{self.last_error}); the study keeps them with their errors: fix "
                            f"the cause, then run again with --resume"
                        )
                if config.seeds_to_confirm:
                    run_confirm(
                        study,
                        config.seeds_to_confirm,
                        self.recipe,
                        trainer,
                        data_ref,
                        self._slots,
                        monitor,
                        stop_if=self.lease.stop_reason,
                    )
                if config.finalize:
                    final = self._finalize(trainer, monitor)
        except KeyboardInterrupt:
            interrupted = True
            self._interrupt(running, monitor)
        except StorageUnavailable:
            for generator in running:  # nothing can be written: resume re-runs what was running
                ray.cancel(generator)
            raise
        finally:
            if self.ray is not None:
                self.ray.close()
        result = self._finish(started, interrupted, monitor)
        self.storage.engine.dispose()
        return dataclasses.replace(result, final=final)

    def _finalize(self, trainer: Any, monitor: SearchMonitor) -> FinalizeResult:
        """`--finalize K`: the final training of K picks and the zoo, on this search's workers."""
        config = self.config
        options = FinalizeOptions(
            study=self.study.study_name,
            storage=config.storage,
            top=config.finalize,
            epochs=config.final_epochs,
            seeds=config.final_seeds,
            cpus_per_trial=config.cpus_per_trial,
            gpus_per_trial=config.gpus_per_trial,
            workers=config.workers,
            data_dir=config.data_dir,
            artifact_dir=config.artifact_dir,
        )
        plan = prepare_finalize(self.study, options)
        final_name = f"{self.study.study_name}{FINAL_SUFFIX}"
        with StudyLease.acquire(self.storage.engine, final_name) as final_lease:
            return run_finalize(
                self.study,
                plan,
                options,
                monitor.say,
                trainer,
                self._slots,
                stop_if=lambda: self.lease.stop_reason() or final_lease.stop_reason(),
            )

    def _submit(self, trainer: Any, job: _Job, data_ref: Any) -> Any:
        """Start `job` on a worker; returns the stream of records it sends back."""
        return trainer.remote(job.arch.to_string(), data_ref, self.recipe.to_dict())

    def _slots(self) -> int:
        """Candidates to train at once: --workers, or what the cluster's CPUs (and GPUs, with
        --gpus-per-trial) hold right now.

        Read on every loop, so Ray nodes that join a running search are put to work.
        """
        config = self.config
        return worker_slots(config.workers, config.cpus_per_trial, config.gpus_per_trial)

    def _failing_throughout(self) -> bool:
        """Whether enough trials failed in a row (at least two per slot) to stop asking."""
        # The slot count asks the cluster, so it is only read once the run of failures is long.
        return (
            self.failures_in_row >= MAX_FAILURES_IN_ROW
            and self.failures_in_row >= 2 * self._slots()
        )

    def _next_job(self, monitor: SearchMonitor, in_flight: dict[str, int]) -> _Job:
        """Ask until a feasible, new candidate comes up; record every other one on the way.

        New means neither trained before nor training right now (`in_flight`: arch -> trial).
        """
        for _ in range(MAX_FRUITLESS_ASKS):
            asked = time.monotonic()
            trial = self.study.ask()
            queued = TrialAttrs.of(trial)  # a zoo network or a retry carries what it must run
            arch = ZOO[queued.zoo]() if queued.zoo else self.space.sample(trial)
            cost = price(arch, self.config, self.table)
            self._record_price(trial, arch, cost)
            write_attrs(trial, driver_seconds=round(time.monotonic() - asked, 4))
            if not cost.feasible:
                write_attrs(trial, outcome=Outcome.INFEASIBLE)
                self.study.tell(trial, state=TrialState.PRUNED)
                monitor.infeasible_skipped(
                    trial.number, cost.mflops, cost.latency_ms, cost.over_budget()
                )
                continue
            previous = self.trained_archs.get(arch.to_string())
            if previous is not None and queued.retry_of is None:
                self._reuse(trial, previous)
                continue
            if arch.to_string() in in_flight:
                write_attrs(
                    trial, outcome=Outcome.DUPLICATE, duplicate_of=in_flight[arch.to_string()]
                )
                self.study.tell(trial, state=TrialState.PRUNED)
                continue
            return _Job(trial, arch, cost, attempt=queued.attempt or 1, baseline=queued.baseline)
        raise SearchFailed(
            f"{MAX_FRUITLESS_ASKS} candidates in a row were over budget or "
            f"already trained: the budget leaves too little of space "
            f"{self.space.name!r}; raise it or use another space"
        )

    def _advance(self, generator: Any, running: dict[Any, _Job], monitor: SearchMonitor) -> int:
        """Take the next record a worker streamed; return 1 when a searched candidate is trained.

        Baselines are trained as candidates are, but do not count toward --trials.
        """
        job = running[generator]
        try:
            message = WorkerMessage.from_dict(ray.get(next(generator)))
        except StopIteration:
            message = WorkerMessage(
                result=TrialResult(
                    status=Status.FAILED,
                    accuracy=None,
                    curve=list(job.curve),
                    error="the worker ended without a result",
                )
            )
        except ray.exceptions.RayError as error:
            del running[generator]
            self._fail(job, error_line(error), monitor, retry=True)
            return 0
        job.host = message.host or job.host
        job.node_id = message.node_id or job.node_id
        job.device = message.device or job.device
        if message.epoch is not None:
            job.curve.append(message.epoch)
            monitor.epoch(job.trial.number, message.epoch.epoch, message.epoch.val_accuracy)
            if self._should_stop(job):
                ray.cancel(generator)
                del running[generator]
                outcome = Outcome.NOT_PROMOTED if self.halving else Outcome.STOPPED
                self._tell_trained(job, job.partial_result(), monitor, outcome=outcome)
                return int(job.baseline is None)
            return 0
        del running[generator]
        result = message.result
        assert result is not None
        if result.ok:
            self._tell_trained(job, result, monitor, message.weights)
            return int(job.baseline is None)
        # Training itself failed (NaN loss, time limit): deterministic, so not retried.
        self._fail(job, result.error or "training failed", monitor, retry=False, result=result)
        return 0

    # ---- telling Optuna -----------------------------------------------------------------------

    def _tell_trained(
        self,
        job: _Job,
        result: TrialResult,
        monitor: SearchMonitor,
        weights: bytes | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        """Record a candidate trained to the end (`Status.OK`) or stopped early.

        A candidate stopped early is PRUNED, whichever rule stopped it: its accuracy after
        fewer epochs is on another scale than a finished candidate's, so it must not join the
        Pareto front. TPE ranks PRUNED trials below every COMPLETE one, which is what stopping
        found; NSGA-II builds its generations from COMPLETE trials only.
        """
        trial = job.trial
        outcome = outcome or Outcome.of_status(result.status)
        accuracy = float(result.accuracy)
        self._record_result(trial, job, result, outcome)
        if weights:  # artifacts can only be attached before the trial finishes
            save_trial_weights(trial, weights, self.artifacts)
        values = objective_values(self.config, accuracy, job.price.latency_ms)
        if outcome is Outcome.TRAINED:
            self.study.tell(trial, values)
            self.curves.append([epoch.val_accuracy for epoch in result.curve])
            self.curve_latencies.append(job.price.latency_ms)
            self.trained_archs[job.arch.to_string()] = trial.number
        else:
            self.study.tell(trial, state=TrialState.PRUNED)
        monitor.finished(
            trial.number, outcome, accuracy, job.price.latency_ms, baseline=job.baseline
        )
        self.failures_in_row = 0

    def _fail(
        self,
        job: _Job,
        error: str,
        monitor: SearchMonitor,
        retry: bool,
        result: TrialResult | None = None,
    ) -> None:
        trial = job.trial
        if result is not None:
            self._record_result(trial, job, result, Outcome.FAILED)
        else:
            write_attrs(trial, curve=_curve_attr(job.curve))
            if job.curve:  # where it was running when it was lost
                write_attrs(
                    trial, worker_host=job.host, worker_node=job.node_id, worker_device=job.device
                )
        write_attrs(trial, outcome=Outcome.FAILED, error=error, attempt=job.attempt)
        retrying = retry and job.attempt <= self.config.max_retries
        self.study.tell(trial, state=TrialState.FAIL)
        if retrying:
            requeue(self.study, trial, reason=error)
        monitor.failed(trial.number, error, retrying)
        self.failures_in_row += 1
        self.last_error = error

    def _interrupt(self, running: dict[Any, _Job], monitor: SearchMonitor) -> None:
        self._requeue_running(running)
        # A candidate asked for but not yet sent to a worker is RUNNING too; under the lease
        # every RUNNING trial of the study is this driver's, so none is left for a resume.
        requeue_orphans(self.study)
        monitor.say(
            "interrupted: the candidates that were training are queued to run first on resume"
        )

    def _requeue_running(self, running: dict[Any, _Job]) -> None:
        """Cancel what is training and queue it to run first when the search resumes."""
        for generator, job in running.items():
            ray.cancel(generator)
            write_attrs(
                job.trial,
                outcome=Outcome.INTERRUPTED,
                curve=_curve_attr(job.curve),
                attempt=job.attempt,
            )
            self.study.tell(job.trial, state=TrialState.FAIL)
            requeue(self.study, job.trial, reason="interrupted")
        running.clear()

    def _should_stop(self, job: _Job) -> bool:
        """Whether the rule stops `job` after its latest epoch. A zoo baseline is never
        stopped: it is the yardstick the front is compared with (its rung accuracy still counts
        as a point the rule compares later candidates with)."""
        if not self.config.early_stopping:
            return False
        epoch = len(job.curve)
        value = job.curve[-1].val_accuracy
        if self.config.objective == "reward":  # the study's own pruner (`make_pruner`)
            if epoch >= self.recipe.epochs:  # the same last-epoch rule as the curve stopper's
                return False
            job.trial.report(value, epoch)
            return job.trial.should_prune() and job.baseline is None
        if self.halving is not None:
            if epoch not in self.halving.rungs:
                return False
            earlier = self.at_rung.setdefault(epoch, [])
            latency = job.price.latency_ms
            stop = self.halving.should_stop(epoch, value, latency, earlier)
            earlier.append((value, latency))
            return stop and job.baseline is None
        if job.baseline is not None:
            return False
        return self.stopper.should_stop(
            epoch,
            value,
            self.curves,
            last_epoch=self.recipe.epochs,
            cost=job.price.latency_ms,
            finished_costs=self.curve_latencies,
        )

    # ---- user attributes ------------------------------------------------------------------------

    def _record_price(self, trial: optuna.Trial, arch: Arch, cost: Price) -> None:
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

    def _record_result(
        self, trial: optuna.Trial, job: _Job, result: TrialResult, outcome: Outcome
    ) -> None:
        write_attrs(
            trial,
            **result_attrs(result, outcome),
            recipe=self.recipe.to_dict(),
            seed=self.recipe.seed,
            worker_host=job.host,
            worker_node=job.node_id,
            worker_device=job.device,
            wall_seconds=round(time.monotonic() - job.dispatched, 3),
            attempt=job.attempt,
        )

    def _reuse(self, trial: optuna.Trial, previous_number: int) -> None:
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

    def _record_study_attrs(self) -> None:
        self.study.set_user_attr("latency_table", self.table.metadata)
        self.study.set_user_attr("space", self.space.to_dict())
        self.study.set_user_attr("recipe", self.recipe.to_dict())
        self.study.set_user_attr(
            "dataset",
            {
                "name": self.data.name,
                "input_shape": list(self.data.input_shape),
                "num_classes": self.data.num_classes,
            },
        )

    # ---- helpers ------------------------------------------------------------------------------

    def _enqueue_zoo(self) -> None:
        """Queue the zoo networks that fit the budget as baselines, trained before the search.

        They are what the search must beat, not part of it: they do not count toward --trials
        (`nas search --trials 4` trains four searched candidates besides them), and they enter
        the sampler's history like any trial, so the search starts from known designs. One
        the space can express is queued by its parameters; any other by its zoo name.
        """
        for name, factory in ZOO.items():
            arch = factory()
            try:
                cost = price(arch, self.config, self.table)
            except InputError:
                continue  # the table cannot price this network's operators
            if cost.feasible:
                params = self.space.params_of(arch)
                fixed = {} if params else {"zoo": name}
                self.study.enqueue_trial(
                    params or {}, user_attrs=check_names({**fixed, "baseline": name})
                )

    def _trained_archs(self) -> dict[str, int]:
        trained = (
            (trial.number, TrialAttrs.of(trial))
            for trial in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        )
        return {attrs.arch: number for number, attrs in trained if attrs.outcome is Outcome.TRAINED}

    def _finish(self, started: float, interrupted: bool, monitor: SearchMonitor) -> SearchResult:
        counts = count_outcomes(self.study)
        searched, baselines = count_trained(self.study)
        out_dir = Path(self.config.out or Path("results") / self.study.study_name)
        rows = pareto_rows(self.study)
        write_outputs(self.study, out_dir, rows)
        if not interrupted and rows:
            try:  # ONNX + arch JSON of the front, downloadable from optuna-dashboard
                attach_pareto_artifacts(
                    self.study, self.config.storage, rows, self.config.artifact_dir
                )
            except ExportFailed as error:
                monitor.say(f"Pareto artifacts: {error}")
        return SearchResult(
            study_name=self.study.study_name,
            storage=mask_password(self.config.storage),
            out_dir=out_dir,
            pareto=rows,
            n_trained=searched,
            n_baselines=baselines,
            n_infeasible=counts.get(Outcome.INFEASIBLE, 0),
            n_failed=counts.get(Outcome.FAILED, 0),
            wall_seconds=round(time.monotonic() - started, 2),
            interrupted=interrupted,
        )


def _describe_gpu(info: dict[str, Any], gpus: float, recipe: Recipe) -> str:
    """The line that says what a GPU trial trains on."""
    per_gpu = f", {10_000 // int(round(gpus * 10_000))} trials per GPU" if gpus < 1 else ""
    precision = recipe.precision
    if precision == "auto":
        major = int(str(info.get("capability") or "0").split(".")[0])
        precision = f"auto: {mixed_precision_for(major)}"
    return (
        f"GPU trials: {info.get('name')} (compute {info.get('capability')}, CUDA "
        f"{info.get('cuda')}, cuDNN {info.get('cudnn')}), precision {precision}{per_gpu}"
    )


def halving_for(config: SearchConfig, recipe: Recipe) -> ParetoHalving | None:
    """The successive-halving rule of `--scheduler asha` on a Pareto study; None otherwise.

    Refuses a schedule too short to have a rung before the work starts.
    """
    if config.scheduler != "asha":
        return None
    halving = ParetoHalving.for_epochs(recipe.epochs, config.reduction_factor)
    if not halving.rungs:
        raise InputError(
            f"--scheduler asha judges candidates at epochs E/eta, E/eta^2, ...: "
            f"{recipe.epochs} epochs with --reduction-factor {config.reduction_factor} leave "
            f"no such epoch; train at least {config.reduction_factor} epochs "
            f"(e.g. --epochs {config.reduction_factor**2}) or lower --reduction-factor "
            f"(2 judges at half the epochs)"
        )
    return halving if config.objective == "pareto" else None


def _stop_once(say: Callable[[str], None]) -> dict[int, Any] | None:
    """Make the first Ctrl-C or SIGTERM (docker stop, kill) stop the search cleanly, and any
    later one say that it is stopping; return the handlers to restore.

    Ray installs a SIGTERM handler that exits at once, which would leave the running trials
    RUNNING until a resume noticed them; raising KeyboardInterrupt takes the clean path instead.
    A second signal while the running trials are queued and Ray shuts down would break that
    clean-up half way (a traceback, no resume command), so it only says what is happening.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    stopping = False
    told = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping, told
        if not stopping:
            stopping = True
            raise KeyboardInterrupt
        if not told:
            told = True
            say("still stopping: queuing the running candidates for --resume (a few seconds)")

    return {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}


def _restore_handlers(previous: dict[int, Any] | None) -> None:
    for signum, handler in (previous or {}).items():
        signal.signal(signum, handler)


def _searched(running: dict[Any, _Job]) -> int:
    """Candidates out on workers that will count toward --trials."""
    return sum(job.baseline is None for job in running.values())


def _curve_attr(curve: list[EpochRecord]) -> list[dict[str, Any]]:
    return [epoch.to_dict() for epoch in curve]


def _job_note(job: _Job) -> str:
    queued = TrialAttrs.of(job.trial)
    notes = []
    if job.baseline:
        notes.append(f"baseline {job.baseline}")
    if job.attempt > 1:
        notes.append(f"attempt {job.attempt}, retry of trial {queued.retry_of}")
    return ", ".join(notes)
