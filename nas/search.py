"""The search driver: one search from its first candidate to the hand-off after it.

The driver is the only process that touches the study database. Each loop keeps up to
``workers`` candidates training: the proposer (`nas.proposals`) asks, prices and deduplicates
them, so over-budget ones are recorded and never trained; every epoch a worker streams back goes
to the stopping rule (`nas.stopping`); the recorder (`nas.recorder`) writes what became of each.
A worker that dies fails its trial, which runs again with the same parameters (`nas.retries`).
Ctrl-C stops cleanly and queues the interrupted candidates so that ``--resume`` runs them first
(`nas.stop_signals`). Confirm and finalize follow on the same workers (`nas.handoff`).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from optuna.exceptions import UpdateFinishedTrialError

from nas.artifacts import ArtifactWriteFailed, attach_pareto_artifacts
from nas.config import SearchConfig
from nas.counts import StudyCounts, baselines_planned
from nas.errors import SearchFailed
from nas.evaluators.latency import LatencyTable, load_table
from nas.evaluators.results import Status, TrialResult
from nas.export_check import ExportFailed
from nas.finalize import FinalizeResult
from nas.front import TrainedRow, pareto_rows
from nas.handoff import Workers, hand_off
from nas.jobs import Job
from nas.latency_order import CloseInLatency, close_in_latency
from nas.lookup import check_lookup, evaluation_data, evaluation_task
from nas.monitor import SearchMonitor
from nas.outputs import write_outputs
from nas.preflight import check_search_inputs, check_stride_plan, check_table_prices
from nas.pricing import check_budget_is_reachable
from nas.proposals import Proposer
from nas.ray_cluster import RayConnection, join_ray, worker_slots
from nas.ray_cluster import describe as describe_ray
from nas.ray_cluster import start_local_ray as start_local_ray  # noqa: F401 (benchmarks use it)
from nas.recipes import recipe_for
from nas.recorder import Recorder
from nas.retries import FailureStreak
from nas.search_spaces.space import SearchSpace, load_space
from nas.stop_signals import StopRequest, stopping_cleanly
from nas.stopping import EpochPoint, StoppingRule, job_candidate, rule_for
from nas.storage import (
    StorageUnavailable,
    StudyLease,
    artifact_store_for,
    mask_password,
    open_storage,
)
from nas.study import check_study_name, count_trained, open_study
from nas.trials import Outcome
from nas.worker import WorkerMessage, check_gpu_training, describe_gpu_trials, error_line


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
    counts: StudyCounts | None = None
    """Every count of the study (`nas.counts`), as `nas report` and pareto.json give them."""
    close_in_latency: CloseInLatency | None = None
    """Front neighbours closer in latency than the table's stated error (`nas.latency_order`)."""


def search(config: SearchConfig, monitor: SearchMonitor | None = None) -> SearchResult:
    """Run (or resume) the search `config` describes; the CLI is a thin layer over this."""
    return _Driver(config).run(monitor)


class _Driver:
    """Moves jobs between the proposer, the Ray workers, the stopping rule and the recorder."""

    monitor: SearchMonitor
    """What the user sees; set once the search starts (`_open`)."""

    def __init__(self, config: SearchConfig) -> None:
        # Everything a user can get wrong is checked before Ray starts or a trial is written.
        self.config = config
        self.space: SearchSpace = load_space(config.space)
        check_lookup(config, self.space)  # a search the published table cannot answer
        check_search_inputs(config, self.space)  # output folder writable, space within limits
        self.table: LatencyTable = load_table(config.target)
        check_table_prices(self.space, config, self.table)
        check_budget_is_reachable(self.space, config, self.table)
        self.data, self.task_input = evaluation_data(config, self.space)
        self.recipe = recipe_for(config)
        check_stride_plan(self.recipe, self.data.input_shape)
        self.rule: StoppingRule = rule_for(config, self.recipe)
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
        self.rule.load_history(self.study)
        self.recorder = Recorder(
            self.study,
            config,
            space=self.space,
            table=self.table,
            recipe=self.recipe,
            data=self.data,
            artifacts=self.artifacts,
        )
        self.failures = FailureStreak(config.max_retries)
        self.stop_request = StopRequest()  # replaced by the signal handlers' own in `run`

    # ---- the loop ---------------------------------------------------------------------------

    def run(self, monitor: SearchMonitor | None) -> SearchResult:
        try:
            with stopping_cleanly(self.say) as self.stop_request:
                return self._run(monitor)
        finally:
            self.lease.release()

    def say(self, message: str) -> None:
        """Tell the user through the live monitor once it exists, on stderr before that."""
        monitor = getattr(self, "monitor", None)
        if monitor is not None:
            monitor.say(message)
        else:
            print(message, file=sys.stderr, flush=True)

    def _run(self, given: SearchMonitor | None) -> SearchResult:
        started = time.monotonic()
        config = self.config
        monitor, trained = self._open(given)
        trainer = evaluation_task(config)
        data_ref = ray.put(self.task_input)
        running: dict[Any, Job] = {}
        interrupted = False
        final = None
        try:
            with monitor:
                self._train(trainer, data_ref, running, trained)
                monitor.coverage(self.proposer.coverage())
                workers = Workers(trainer, data_ref, self._slots)
                final = hand_off(self.study, config, self.recipe, workers, monitor, self.lease)
        except KeyboardInterrupt:
            interrupted = self.stop_request.delivered = True
            self._interrupt(running, monitor)
        except StorageUnavailable:
            for generator in running:  # nothing can be written: resume re-runs what was running
                ray.cancel(generator)
            raise
        finally:
            self._close_ray()
        result = self._write_results(started, interrupted, monitor)
        self.storage.engine.dispose()
        return dataclasses.replace(result, final=final)

    def _open(self, given: SearchMonitor | None) -> tuple[SearchMonitor, int]:
        """Start the study's side of the search and say where it runs; returns the monitor and
        the searched candidates the study has trained already."""
        config, study = self.config, self.study
        trained, baselines_done = count_trained(study)
        monitor = self.monitor = given or SearchMonitor(
            config.trials,
            already_trained=trained,
            epochs=self.recipe.epochs,
            baselines_done=baselines_done,
        )
        self.proposer = Proposer(
            study,
            config,
            space=self.space,
            table=self.table,
            recorder=self.recorder,
            monitor=monitor,
        )
        orphans = self.proposer.requeue_orphans()
        self.recorder.record_study_attrs()
        if config.warm_start and not config.resume and not config.looks_up:
            self.proposer.enqueue_baselines()  # (the zoo's networks have no published result)
        monitor.baselines = baselines_planned(study)
        self.storage.notify = monitor.say
        monitor.say(
            f"study {study.study_name!r} in {mask_password(config.storage)}"
            + (f"; re-running trials {orphans} left running" if orphans else "")
        )
        if self.ray is not None:
            monitor.say(describe_ray(self.ray))
        if self.gpu is not None:
            monitor.say(describe_gpu_trials(self.gpu, config.gpus_per_trial, self.recipe))
        elif config.gpus_per_trial > 0:
            monitor.say(
                "GPU trials: no GPU was free to check before the first trial; a trial whose "
                "GPU torch cannot use fails saying why"
            )
        return monitor, trained

    def _train(self, trainer: Any, data_ref: Any, running: dict[Any, Job], trained: int) -> None:
        """Keep every worker slot busy until --trials searched candidates are trained."""
        while True:
            self._check_lease(running)
            while (
                len(running) < self._slots() and trained + _searched(running) < self.config.trials
            ):
                self._dispatch(trainer, data_ref, running)
            if not running:
                return
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            self.stop_request.raise_if_lost()
            self.monitor.tick()
            self._check_lease(running)  # a driver stalled past the lease's TTL wakes up here
            for generator in ready:
                try:
                    trained += self._advance(generator, running)
                except UpdateFinishedTrialError:  # taken over between the check and the write
                    self._check_lease(running)
                    raise
                except ArtifactWriteFailed as error:  # a full disk fails every trial after it
                    self._requeue_running(running)
                    raise SearchFailed(
                        f"{error}; the study keeps its trials and runs that one first: free "
                        f"space there (or pass --artifact-dir with another folder), then run "
                        f"again with --resume"
                    ) from None
            if self.failures.failing_throughout(self._slots):
                self._requeue_running(running)
                raise SearchFailed(self.failures.why())

    def _check_lease(self, running: dict[Any, Job]) -> None:
        """Stop, writing nothing more, when another driver has taken the study over."""
        if why := self.lease.stop_reason():
            for generator in running:  # the new driver runs them again
                ray.cancel(generator)
            raise SearchFailed(why)

    def _dispatch(self, trainer: Any, data_ref: Any, running: dict[Any, Job]) -> None:
        """Send the next proposed candidate to a worker."""
        in_flight = {job.arch.network_key(): job.trial.number for job in running.values()}
        job = self.proposer.next(in_flight)
        running[self._submit(trainer, job, data_ref)] = job
        self.monitor.started(
            job.trial.number,
            job.arch.to_string(),
            job.price.mflops,
            job.price.latency_ms,
            job.note(),
        )

    def _submit(self, trainer: Any, job: Job, data_ref: Any) -> Any:
        """Start `job` on a worker; returns the stream of records it sends back."""
        return trainer.remote(job.arch.to_string(), data_ref, self.recipe.to_dict())

    def _slots(self) -> int:
        """Candidates to train at once: --workers, or what the cluster's CPUs (and GPUs, with
        --gpus-per-trial) hold right now.

        Read on every loop, so Ray nodes that join a running search are put to work.
        """
        config = self.config
        return worker_slots(config.workers, config.cpus_per_trial, config.gpus_per_trial)

    def _advance(self, generator: Any, running: dict[Any, Job]) -> int:
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
            self._fail(job, error_line(error), retry=True)
            return 0
        job.host = message.host or job.host
        job.node_id = message.node_id or job.node_id
        job.device = message.device or job.device
        if message.epoch is not None:
            job.curve.append(message.epoch)
            record = message.epoch
            self.monitor.epoch(job.trial.number, record.epoch, record.val_accuracy, record.seconds)
            if self.rule.should_stop(EpochPoint.of(job)):
                ray.cancel(generator)
                del running[generator]
                self._tell_trained(job, job.partial_result(), outcome=self.rule.stopped_outcome)
                return int(job.searched)
            return 0
        del running[generator]
        result = message.result
        assert result is not None
        if result.ok:
            self._tell_trained(job, result, message.weights)
            return int(job.searched)
        # Training itself failed (NaN loss, time limit): deterministic, so not retried.
        self._fail(job, result.error or "training failed", retry=False, result=result)
        return 0

    # ---- what became of a candidate --------------------------------------------------------------

    def _tell_trained(
        self,
        job: Job,
        result: TrialResult,
        weights: bytes | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        """Record a candidate trained to the end (`Status.OK`) or stopped early."""
        outcome = outcome or Outcome.of_status(result.status)
        accuracy = float(result.accuracy)
        try:
            self.recorder.trained(job, result, outcome, weights)
        except ArtifactWriteFailed as error:
            self.recorder.failed(job, str(error), result)
            self.proposer.requeue(job.trial, reason="its weights could not be saved")
            raise
        if outcome is Outcome.TRAINED:
            curve = [epoch.val_accuracy for epoch in result.curve]
            self.rule.on_finished(curve, job.price.latency_ms, job_candidate(job))
            self.proposer.on_trained(job)
        self.monitor.finished(
            job.trial.number, outcome, accuracy, job.price.latency_ms, baseline=job.baseline
        )
        self.failures.trained()

    def _fail(self, job: Job, error: str, retry: bool, result: TrialResult | None = None) -> None:
        """Record a failed candidate, and queue it again when its failure may not recur."""
        self.recorder.failed(job, error, result)
        retrying = self.failures.failed(job, error, retry)
        if retrying:
            self.proposer.requeue(job.trial, reason=error)
        self.monitor.failed(job.trial.number, error, retrying)

    def _interrupt(self, running: dict[Any, Job], monitor: SearchMonitor) -> None:
        self._requeue_running(running)
        # A candidate asked for but not yet sent to a worker is RUNNING too; under the lease
        # every RUNNING trial of the study is this driver's, so none is left for a resume.
        self.proposer.requeue_orphans()
        monitor.say(
            "interrupted: the candidates that were training are queued to run first on resume"
        )

    def _requeue_running(self, running: dict[Any, Job]) -> None:
        """Cancel what is training and queue it to run first when the search resumes."""
        for generator, job in running.items():
            ray.cancel(generator)
            self.recorder.interrupted(job)
            self.proposer.requeue(job.trial, reason="interrupted")
        running.clear()

    def _close_ray(self) -> None:
        """Close Ray; a stop that comes now, after the last trial, still gets the results."""
        if self.ray is None:
            return
        try:
            self.ray.close()
        except KeyboardInterrupt:  # any later signal only says "still stopping"
            self.stop_request.delivered = True
            self.ray.close()

    def _write_results(
        self, started: float, interrupted: bool, monitor: SearchMonitor
    ) -> SearchResult:
        """`_finish`, once more without the Pareto artifacts if a stop comes while it runs:
        every file is written whole or not at all, and a resume attaches what was skipped."""
        try:
            return self._finish(started, interrupted or self.stop_request.requested, monitor)
        except KeyboardInterrupt:
            self.stop_request.delivered = True
            monitor.say("stopping: writing the results of the finished trials")
            return self._finish(started, True, monitor)

    def _finish(self, started: float, interrupted: bool, monitor: SearchMonitor) -> SearchResult:
        counts = StudyCounts.of(self.study)
        out_dir = Path(self.config.out or Path("results") / self.study.study_name)
        rows = pareto_rows(self.study)
        write_outputs(self.study, out_dir, rows, counts)
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
            n_trained=counts.searched,
            n_baselines=counts.baselines,
            n_infeasible=counts.over_budget,
            n_failed=counts.failed,
            counts=counts,
            wall_seconds=round(time.monotonic() - started, 2),
            interrupted=interrupted,
            close_in_latency=close_in_latency(rows, self.table.metadata, self.table.target),
        )


def _searched(running: dict[Any, Job]) -> int:
    """Candidates out on workers that will count toward --trials."""
    return sum(job.searched for job in running.values())
