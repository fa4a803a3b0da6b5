"""Early stopping: the median rule over learning curves, and Optuna's pruners for one objective."""

from __future__ import annotations

import math

import pytest

from nas.early_stopping import MedianCurveStopper

FINISHED = [
    [0.50, 0.60, 0.70],
    [0.40, 0.55, 0.65],
    [0.45, 0.50, 0.68],
    [0.52, 0.62, 0.72],
    [0.30, 0.58, 0.66],
]  # medians 0.45, 0.58, 0.68


def test_below_the_median_after_warm_up_stops():
    stopper = MedianCurveStopper(warmup_epochs=1, min_finished=5)
    assert stopper.median_at(2, FINISHED) == pytest.approx(0.58)
    assert stopper.should_stop(2, 0.57, FINISHED)
    assert not stopper.should_stop(2, 0.58, FINISHED)  # equal to the median is kept
    assert not stopper.should_stop(3, 0.69, FINISHED)


def test_never_stops_during_warm_up():
    stopper = MedianCurveStopper(warmup_epochs=2, min_finished=1)
    assert not stopper.should_stop(1, 0.0, FINISHED)
    assert not stopper.should_stop(2, 0.0, FINISHED)
    assert stopper.should_stop(3, 0.0, FINISHED)


def test_needs_enough_finished_curves_that_reach_the_epoch():
    stopper = MedianCurveStopper(warmup_epochs=0, min_finished=3)
    assert not stopper.should_stop(2, 0.0, FINISHED[:2])
    short = [[0.9], [0.9], [0.9], [0.1, 0.2]]  # only one curve has an epoch 2
    assert not stopper.should_stop(2, 0.0, short)
    assert stopper.should_stop(1, 0.5, short)
    assert not stopper.should_stop(1, 0.5, [])


def test_nan_values_in_finished_curves_are_ignored_and_a_nan_candidate_stops():
    stopper = MedianCurveStopper(warmup_epochs=0, min_finished=2)
    curves = [[0.5], [math.nan], [0.7]]
    assert stopper.median_at(1, curves) == pytest.approx(0.6)
    assert stopper.should_stop(1, math.nan, curves)


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        MedianCurveStopper(min_finished=0)


def test_never_stops_at_the_last_epoch():
    stopper = MedianCurveStopper(warmup_epochs=0, min_finished=5)
    assert stopper.should_stop(3, 0.0, FINISHED)
    assert not stopper.should_stop(3, 0.0, FINISHED, last_epoch=3)
    assert stopper.should_stop(2, 0.0, FINISHED, last_epoch=3)


def test_with_costs_only_finished_candidates_at_least_as_fast_are_compared():
    stopper = MedianCurveStopper(warmup_epochs=1, min_finished=2)
    curves = [[0.3, 0.40], [0.3, 0.42], [0.3, 0.60], [0.3, 0.62]]
    latencies = [5.0, 6.0, 15.0, 16.0]  # the fast ones are less accurate
    # Below the median of all four (0.51) but above that of the two as fast as it: kept.
    assert stopper.should_stop(2, 0.45, curves)
    assert not stopper.should_stop(2, 0.45, curves, cost=7.0, finished_costs=latencies)
    # A slow candidate meets every finished one, so the plain median applies.
    assert stopper.should_stop(2, 0.45, curves, cost=20.0, finished_costs=latencies)
    # Faster than all but one finished candidate: too few to judge it by.
    assert not stopper.should_stop(2, 0.0, curves, cost=5.5, finished_costs=latencies)


def test_costs_must_match_the_curves():
    with pytest.raises(ValueError):
        MedianCurveStopper().should_stop(2, 0.5, FINISHED, cost=1.0, finished_costs=[1.0])
