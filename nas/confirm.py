"""Confirm: train the front and the baselines again with other seeds, so a ranking rests on more
than one run.

One proxy run's accuracy moves by a point or more with its training seed alone, as much as the
gaps along a typical front. After a search, each front member and each zoo baseline is trained
`seeds` more times with the same recipe and other training seeds (the validation split stays
the same), in parallel on the Ray workers, and the front is recomputed on seed means, with
Welch's t-test between neighbours (`nas.outputs.mark_ties`).

The runs live in a companion study, ``<study>.confirm``, in the same storage. A trial of the
search's own study would enter the sampler's history (these re-measure candidates the sampler
already has) and would be counted, exported and reported as a new candidate; a study of its own
keeps them apart, while optuna-dashboard lists it beside the search's. Each of its trials names
the search trial it confirms (``confirms``) and its ``seed``; a rerun trains only the runs that
are missing, so an interrupted confirm resumes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import ray
from optuna.trial import TrialState

from nas.evaluators.recipe import Recipe
from nas.evaluators.results import Status, TrialResult
from nas.monitor import SearchMonitor
from nas.outputs import pareto_front, single_seed_rows
from nas.study import companion, confirm_runs
from nas.trials import Outcome, TrialAttrs, result_attrs, write_attrs
from nas.worker import WorkerMessage, error_line


@dataclass(frozen=True)
class ConfirmRun:
    """One more training of a search trial's architecture with another seed."""

    confirms: int
    arch: str
    seed: int
    baseline: str | None = None


def confirm_seed(seed: int, k: int) -> int:
    """The k-th (1-based) confirm seed of a candidate first trained with `seed`."""
    return seed + k


def plan(study: optuna.Study, seeds: int) -> list[ConfirmRun]:
    """The runs still missing: `seeds` per front member and per trained baseline."""
    rows = single_seed_rows(study)
    chosen = {row["number"]: row for row in pareto_front(rows)}
    chosen.update({row["number"]: row for row in rows if row.get("baseline")})
    done = {(run["confirms"], run["seed"]) for runs in confirm_runs(study).values() for run in runs}
    trials = {trial.number: TrialAttrs.of(trial) for trial in study.get_trials(deepcopy=False)}
    planned = []
    for number in sorted(chosen):
        attrs = trials[number]
        for k in range(1, seeds + 1):
            seed = confirm_seed(attrs.seed or 0, k)
            if (number, seed) not in done:
                planned.append(ConfirmRun(number, attrs.arch, seed, attrs.baseline))
    return planned


def run_confirm(
    study: optuna.Study,
    seeds: int,
    recipe: Recipe,
    trainer: Any,
    data_ref: Any,
    slots: Callable[[], int],
    monitor: SearchMonitor,
) -> int:
    """Train every missing confirm run on Ray; returns how many finished.

    Ctrl-C cancels what is running and marks it interrupted; a rerun trains it again.
    """
    confirm_study = companion(study, create=True)
    assert confirm_study is not None
    for trial in confirm_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        confirm_study.tell(trial.number, state=TrialState.FAIL)  # left by a driver that died
    pending = deque(plan(study, seeds))
    if not pending:
        return 0
    monitor.say(
        f"confirm: {len(pending)} runs ({seeds} more seeds of each front member and "
        f"baseline) into study {confirm_study.study_name!r}"
    )
    running: dict[Any, tuple[ConfirmRun, optuna.Trial, float]] = {}
    finished = 0
    try:
        while pending or running:
            while pending and len(running) < slots():
                run = pending.popleft()
                run_recipe = recipe.replace(seed=run.seed).to_dict()
                trial = confirm_study.ask()
                write_attrs(
                    trial,
                    arch=run.arch,
                    confirms=run.confirms,
                    seed=run.seed,
                    baseline=run.baseline,
                    recipe=run_recipe,
                )
                generator = trainer.remote(run.arch, data_ref, run_recipe)
                running[generator] = (run, trial, time.monotonic())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for generator in ready:
                result = _next_result(generator)
                if result is None:
                    continue  # an epoch record: confirm runs are never stopped early
                run, trial, started = running.pop(generator)
                finished += _record(confirm_study, trial, run, result, started, monitor)
    except KeyboardInterrupt:
        for generator, (_, trial, _) in running.items():
            ray.cancel(generator)
            write_attrs(trial, outcome=Outcome.INTERRUPTED)
            confirm_study.tell(trial, state=TrialState.FAIL)
        raise
    return finished


def _next_result(generator: Any) -> TrialResult | None:
    try:
        message = WorkerMessage.from_dict(ray.get(next(generator)))
    except StopIteration:
        return TrialResult(
            status=Status.FAILED, accuracy=None, error="the worker ended without a result"
        )
    except ray.exceptions.RayError as error:
        return TrialResult(status=Status.FAILED, accuracy=None, error=error_line(error))
    return message.result


def _record(
    confirm_study: optuna.Study,
    trial: optuna.Trial,
    run: ConfirmRun,
    result: TrialResult,
    started: float,
    monitor: SearchMonitor,
) -> int:
    write_attrs(
        trial,
        **result_attrs(result),
        worker_host=result.host or None,
        wall_seconds=round(time.monotonic() - started, 3),
    )
    if not result.ok:
        confirm_study.tell(trial, state=TrialState.FAIL)
        monitor.say(f"confirm of trial {run.confirms} (seed {run.seed}) failed: {result.error}")
        return 0
    confirm_study.tell(trial, result.accuracy)
    monitor.say(
        f"confirm of trial {run.confirms} (seed {run.seed}): accuracy {result.accuracy:.4f}"
    )
    return 1
