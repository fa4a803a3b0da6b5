"""Confirm seeds go to the front members and baselines whose place is within the noise."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import optuna
import pytest

from nas.confirm import plan
from nas.confirm_choice import SAMPLING_FACTOR, Z_95, place_rows, run_noise
from nas.front import TrainedRow

E2E = Path(__file__).resolve().parent.parent / "benchmarks/results/end_to_end/study.db"


def _row(number: int, latency: float, accuracy: float, baseline: str | None = None, **kw):
    return TrainedRow(
        number=number,
        accuracy=accuracy,
        val_count=kw.pop("val_count", 1000),
        latency_ms=latency,
        mflops=10.0 * latency,
        params=1000,
        baseline=baseline,
        arch=f"arch{number}",
        **kw,
    )


def test_neighbours_within_the_noise_are_confirmed_and_clear_ones_are_not() -> None:
    rows = [
        _row(0, 1.0, 0.50),
        _row(1, 2.0, 0.51),  # a point above its cheaper neighbour: a tie on one run each
        _row(2, 3.0, 0.70),  # far above both
        _row(3, 2.5, 0.30, baseline="slow_net"),  # far below the best searched at 2.5 ms
        _row(4, 3.5, 0.68, baseline="close_net"),  # within the noise of the 3 ms member
        _row(5, 2.8, 0.40),  # dominated: not on the front, never confirmed
    ]
    placement = place_rows(rows, noise=0.01)
    assert placement.considered == (0, 1, 2, 3, 4)
    assert placement.uncertain == {0, 1, 2, 4}
    # The noise is floored at the split's sampling noise: 1,000 images at 50% is 1.6 points,
    # so a 0.01 run noise still makes a gap of a point a tie.
    floor = SAMPLING_FACTOR * math.sqrt(0.5 * 0.5 / 1000)
    assert 0.01 < Z_95 * math.sqrt(2) * floor


def test_a_larger_split_and_a_small_noise_separate_what_one_run_could_not() -> None:
    rows = [_row(0, 1.0, 0.50, val_count=10**6), _row(1, 2.0, 0.53, val_count=10**6)]
    assert place_rows(rows, noise=0.005).uncertain == frozenset()
    assert place_rows(rows, noise=0.02).uncertain == {0, 1}


def test_without_a_noise_estimate_every_front_member_and_baseline_is_confirmed() -> None:
    rows = [_row(0, 1.0, 0.2), _row(1, 2.0, 0.9), _row(2, 5.0, 0.1, baseline="zoo")]
    placement = place_rows(rows, noise=None)
    assert placement.uncertain == {0, 1, 2} and placement.run_noise is None


def test_repeated_trainings_give_the_pooled_spread_as_the_run_noise() -> None:
    seeded = [(0.50, 0.52), (0.40, 0.44, 0.42), (0.30, 0.31)]
    rows = [
        _row(i, float(i), runs[0], seeds=len(runs), seed_accuracies=runs)
        for i, runs in enumerate(seeded)
    ]
    squares = 0.0002 + 0.0008 + 0.00005  # sum of squared deviations from each mean
    assert run_noise(rows, [], []) == pytest.approx(math.sqrt(squares / 4))
    assert run_noise(rows[:2], [], []) is None  # two networks: no surrogate fit from no trials


def test_a_confirmed_study_plans_the_next_seed_only_where_a_place_is_uncertain(
    tmp_path: Path,
) -> None:
    shutil.copyfile(E2E, tmp_path / "study.db")
    study = optuna.load_study(
        study_name="e2e-mobile-armv8-150mflops-cifar10-asha",
        storage=f"sqlite:///{tmp_path / 'study.db'}",
    )
    assert plan(study, 2, "all") == [] and plan(study, 2, "uncertain") == []  # both done
    every = plan(study, 3, "all")
    chosen = plan(study, 3, "uncertain")
    assert set(chosen) <= set(every)  # the same third seed of each member it keeps
    members = {run.confirms for run in chosen}
    assert members and members < {run.confirms for run in every}
    # The baselines there are points below the searched networks at their latency: clear.
    assert not [run for run in chosen if run.baseline]
