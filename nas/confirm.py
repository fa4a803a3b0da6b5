"""Confirm: train the front and the baselines again with other seeds, so a ranking rests on more
than one run.

One proxy run's accuracy moves by a point or more with its training seed alone, as much as the
gaps along a typical front. After a search, each front member and each zoo baseline is trained
`seeds` more times with the same recipe and other training seeds (the validation split stays
the same), in parallel on the Ray workers, and the front is recomputed on seed means, with
Welch's t-test between neighbours (`nas.front.mark_ties`).

The runs live in a companion study, ``<study>.confirm``, in the same storage. A trial of the
search's own study would enter the sampler's history (these re-measure candidates the sampler
already has) and would be counted, exported and reported as a new candidate; a study of its own
keeps them apart, while optuna-dashboard lists it beside the search's. Each of its trials names
the search trial it confirms (``confirms``) and its ``seed``; a rerun trains only the runs that
are missing, so an interrupted confirm resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from nas.companion_runs import CompanionRun, fail_left_running, train_runs
from nas.evaluators.recipe import Recipe
from nas.front import pareto_front, single_seed_rows
from nas.monitor import SearchMonitor
from nas.study import companion, confirm_runs
from nas.trials import TrialAttrs


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
    chosen = {row.number: row for row in pareto_front(rows)}
    chosen.update({row.number: row for row in rows if row.baseline})
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
    stop_if: Callable[[], str | None] | None = None,
) -> int:
    """Train every missing confirm run on Ray; returns how many finished.

    Ctrl-C cancels what is running and marks it interrupted; a rerun trains it again.
    `stop_if`: see `train_runs`.
    """
    confirm_study = companion(study, create=True)
    assert confirm_study is not None
    fail_left_running(confirm_study)
    pending = plan(study, seeds)
    if not pending:
        return 0
    monitor.say(
        f"confirm: {len(pending)} runs ({seeds} more seed{'' if seeds == 1 else 's'} of each "
        f"front member and baseline) into study {confirm_study.study_name!r}"
    )
    runs = [
        CompanionRun(
            arch=run.arch,
            seed=run.seed,
            label=f"confirm of trial {run.confirms}",
            attrs={"confirms": run.confirms, "baseline": run.baseline},
        )
        for run in pending
    ]
    done = train_runs(
        confirm_study, runs, recipe, trainer, data_ref, slots, monitor.say, stop_if=stop_if
    )
    return done.finished
