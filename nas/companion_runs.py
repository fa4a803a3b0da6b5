"""Train a list of runs of known architectures into a companion study, on the Ray workers.

Confirm (`nas.confirm`) and finalize (`nas.finalize`) both re-train architectures the search
already chose, with other seeds or another recipe; neither asks a sampler anything. Each run
becomes one trial of a companion study (``<study>.confirm``, ``<study>.final``): written when it
is dispatched, told when its result comes back, so the study is the state and a rerun trains
only what is missing. Ctrl-C cancels what is running and marks it interrupted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import ray
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import TrialState

from nas.artifacts import save_trial_weights
from nas.errors import SearchFailed
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import Status, TrialResult
from nas.trials import Outcome, result_attrs, write_attrs, write_frozen_attrs
from nas.worker import WorkerMessage, error_line


@dataclass(frozen=True)
class CompanionRun:
    """One training of `arch` with `seed`; `attrs` are recorded on its trial when it starts."""

    arch: str
    seed: int
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunsDone:
    finished: int = 0
    failed: int = 0


def fail_left_running(companion: optuna.Study) -> None:
    """Fail the runs left RUNNING, by a driver that died or by this one as it stops; a rerun
    trains them again."""
    for trial in companion.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        write_frozen_attrs(companion, trial, outcome=Outcome.INTERRUPTED)
        companion.tell(trial.number, state=TrialState.FAIL)


def train_runs(
    companion: optuna.Study,
    runs: Sequence[CompanionRun],
    recipe: Recipe,
    trainer: Any,
    data_ref: Any,
    slots: Callable[[], int],
    say: Callable[[str], None],
    *,
    final: bool = False,
    artifacts: FileSystemArtifactStore | None = None,
    stop_if: Callable[[], str | None] | None = None,
) -> RunsDone:
    """Train every run on Ray, at most `slots()` at once, and record each in `companion`.

    The trial's value is the validation accuracy, or with `final` the test accuracy; with
    `artifacts` the trained weights are attached to the trial (`weights.safetensors`).
    `stop_if` (the driver's lease) returns why this driver must stop writing, if it must: then
    the runs are cancelled and `SearchFailed` raised, leaving the study to the driver that took
    it over.
    """
    pending = deque(runs)
    running: dict[Any, tuple[CompanionRun, optuna.Trial, float]] = {}
    devices: dict[Any, dict[str, Any]] = {}  # what each run trains on, from its first record
    done = RunsDone()
    try:
        while pending or running:
            while pending and len(running) < slots():
                run = pending.popleft()
                run_recipe = recipe.replace(seed=run.seed).to_dict()
                trial = companion.ask()
                write_attrs(trial, arch=run.arch, seed=run.seed, recipe=run_recipe, **run.attrs)
                generator = trainer.remote(run.arch, data_ref, run_recipe, final)
                running[generator] = (run, trial, time.monotonic())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            why = stop_if() if stop_if is not None else None
            if why:
                for generator in running:
                    ray.cancel(generator)
                raise SearchFailed(why)
            for generator in ready:
                message = _next_message(generator)
                if message.device:
                    devices[generator] = message.device
                if message.result is None:
                    continue  # an epoch record: these runs are never stopped early
                run, trial, started = running.pop(generator)
                if generator in devices:
                    write_attrs(trial, worker_device=devices.pop(generator))
                ok = _record(companion, trial, run, message, started, say, final, artifacts)
                done = RunsDone(done.finished + ok, done.failed + (not ok))
    except KeyboardInterrupt:
        for generator in running:
            ray.cancel(generator)
        # Every RUNNING run is this driver's (its lease), including one the stop caught between
        # `ask` and `running`, which the dict does not hold yet.
        fail_left_running(companion)
        raise
    return done


def _next_message(generator: Any) -> WorkerMessage:
    try:
        return WorkerMessage.from_dict(ray.get(next(generator)))
    except StopIteration:
        error = "the worker ended without a result"
    except ray.exceptions.RayError as failure:
        error = error_line(failure)
    return WorkerMessage(result=TrialResult(status=Status.FAILED, accuracy=None, error=error))


def _record(
    companion: optuna.Study,
    trial: optuna.Trial,
    run: CompanionRun,
    message: WorkerMessage,
    started: float,
    say: Callable[[str], None],
    final: bool,
    artifacts: FileSystemArtifactStore | None,
) -> bool:
    result = message.result
    assert result is not None
    write_attrs(
        trial,
        **result_attrs(result),
        worker_host=result.host or None,
        wall_seconds=round(time.monotonic() - started, 3),
    )
    value = result.test_accuracy if final else result.accuracy
    if not result.ok or value is None:
        companion.tell(trial, state=TrialState.FAIL)
        say(f"{run.label} (seed {run.seed}) failed: {result.error or 'no accuracy'}")
        return False
    if artifacts is not None and message.weights:
        save_trial_weights(trial, message.weights, artifacts)  # before tell: Optuna's rule
    companion.tell(trial, value)
    what = "test accuracy" if final else "accuracy"
    say(f"{run.label} (seed {run.seed}): {what} {value:.4f} ({result.train_seconds:.0f} s)")
    return True
