"""After the search: the front confirmed with more seeds, then finalized, on the same workers.

Neither feeds the sampler: confirm runs go to the ``.confirm`` companion study (`nas.confirm`)
and final trainings to the ``.final`` one (`nas.finalize`). Both run on the search's own Ray
trainer and data, and stop when the search's lease is lost, as the search itself would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from nas.config import SearchConfig
from nas.confirm import run_confirm
from nas.evaluators.recipe import Recipe
from nas.finalize import FinalizeOptions, FinalizeResult, run_finalize
from nas.finalize import prepare as prepare_finalize
from nas.monitor import SearchMonitor
from nas.storage import StudyLease
from nas.study import FINAL_SUFFIX


@dataclass(frozen=True)
class Workers:
    """What the search trains on: its Ray trainer, the data it put in Ray's object store, and
    how many runs the cluster holds at once (read again before every dispatch)."""

    trainer: Any
    data_ref: Any
    slots: Callable[[], int]


def hand_off(
    study: optuna.Study,
    config: SearchConfig,
    recipe: Recipe,
    workers: Workers,
    monitor: SearchMonitor,
    lease: StudyLease,
) -> FinalizeResult | None:
    """Confirm (`--confirm-seeds`) and finalize (`--finalize K`) as `config` asks; returns what
    finalizing trained, or None when it was not asked for."""
    if config.seeds_to_confirm:
        run_confirm(
            study,
            config.seeds_to_confirm,
            recipe,
            workers.trainer,
            workers.data_ref,
            workers.slots,
            monitor,
            stop_if=lease.stop_reason,
            where=config.confirm_where,
        )
    if not config.finalize:
        return None
    return _finalize(study, config, workers, monitor, lease)


def _finalize(
    study: optuna.Study,
    config: SearchConfig,
    workers: Workers,
    monitor: SearchMonitor,
    lease: StudyLease,
) -> FinalizeResult:
    """The final training of `--finalize` picks and the zoo, under the final study's own lease."""
    options = FinalizeOptions(
        study=study.study_name,
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
    plan = prepare_finalize(study, options)
    with StudyLease.acquire(lease.engine, f"{study.study_name}{FINAL_SUFFIX}") as final_lease:
        return run_finalize(
            study,
            plan,
            options,
            monitor.say,
            workers.trainer,
            workers.slots,
            stop_if=lambda: lease.stop_reason() or final_lease.stop_reason(),
        )
