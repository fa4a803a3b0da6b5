"""Confirm: train the front and the baselines again with other seeds, so a ranking rests on more
than one run.

One proxy run's accuracy moves by a point or more with its training seed alone, as much as the
gaps along a typical front. After a search, the front members and zoo baselines whose place
one run cannot settle (`nas.confirm_choice`; every one with ``where="all"``) are trained `seeds`
more times with the same recipe and other training seeds (the validation split stays the same),
in parallel on the Ray workers, and the front is recomputed on seed means, with Welch's t-test
between neighbours (`nas.front.mark_ties`).

The runs live in a companion study, ``<study>.confirm``, in the same storage. A trial of the
search's own study would enter the sampler's history (these re-measure candidates the sampler
already has) and would be counted, exported and reported as a new candidate; a study of its own
keeps them apart, while optuna-dashboard lists it beside the search's. Each of its trials names
the search trial it confirms (``confirms``) and its ``seed``; a rerun trains only the runs that
are missing, so an interrupted confirm resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import optuna

from nas.companion_runs import CompanionRun, fail_left_running, train_runs
from nas.config import CONFIRM_WHERE
from nas.confirm_choice import Placement, place_rows, study_run_noise
from nas.evaluators.recipe import Recipe
from nas.front import single_seed_rows, trained_rows
from nas.monitor import SearchMonitor
from nas.study import companion, confirm_runs
from nas.trials import TrialAttrs

MAX_ROUNDS = 3
"""Rounds of confirm at most: each confirms what the previous one moved onto the front."""


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


def plan(study: optuna.Study, seeds: int, where: str = "uncertain") -> list[ConfirmRun]:
    """The runs still missing: `seeds` per front member and per trained baseline (`where`
    ``all``), or only per one whose place is within the noise (``uncertain``,
    `nas.confirm_choice`)."""
    return _planned(study, seeds, _choose(study, where).uncertain)


def _choose(study: optuna.Study, where: str) -> Placement:
    """The rows to confirm. ``all``: the front of the search's own runs and every baseline,
    the same set however many confirm runs have finished; ``uncertain``: judged on every seed
    the study holds so far."""
    if where not in CONFIRM_WHERE:
        raise ValueError(f"where must be one of {CONFIRM_WHERE}, got {where!r}")
    if where == "all":
        return place_rows(single_seed_rows(study), None)
    rows = trained_rows(study)
    return place_rows(rows, study_run_noise(study, rows))


def _planned(study: optuna.Study, seeds: int, chosen: Iterable[int]) -> list[ConfirmRun]:
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
    where: str = "uncertain",
) -> int:
    """Train every missing confirm run on Ray, in rounds; returns how many finished.

    Runs that move a seed mean can move the front, and a new member may be within the noise of
    a neighbour: the next round confirms it, up to `MAX_ROUNDS`. Ctrl-C cancels what is running
    and marks it interrupted; a rerun trains it again. `stop_if`: see `train_runs`.
    """
    confirm_study = companion(study, create=True)
    assert confirm_study is not None
    fail_left_running(confirm_study)
    finished = 0
    for round_number in range(1, MAX_ROUNDS + 1):
        placement = _choose(study, where)
        pending = _planned(study, seeds, placement.uncertain)
        if not pending:
            break
        monitor.say(_announce(pending, seeds, placement, round_number, confirm_study.study_name))
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
        finished += done.finished
    return finished


def _announce(
    pending: list[ConfirmRun], seeds: int, placement: Placement, round_number: int, name: str
) -> str:
    """What a round of confirm is about to train, and why those."""
    chosen = len({run.confirms for run in pending})
    more = f"{seeds} more seed{'' if seeds == 1 else 's'}"
    if placement.typical_deviation is None:
        why = f"{more} of each front member and baseline"
    else:
        clear = len(placement.considered) - len(placement.uncertain)
        why = (
            f"{more} of {chosen} front members and baselines within the noise "
            f"(one run: +-{placement.typical_deviation * 100:.1f} points) of a neighbour; "
            f"{clear} clear of theirs get none"
        )
    again = "" if round_number == 1 else f", round {round_number}"
    return f"confirm: {len(pending)} runs ({why}{again}) into study {name!r}"
