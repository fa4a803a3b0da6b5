"""Successive halving over accuracy and latency: rungs, fronts, crowding and promotion."""

from __future__ import annotations

import math
import random

import pytest

from nas.stopping import EpochPoint, SuccessiveHalvingRule
from nas.successive_halving import (
    ParetoHalving,
    best,
    crowding_distances,
    non_dominated_fronts,
    rung_epochs,
)


@pytest.mark.parametrize(
    "epochs, eta, rungs",
    [(9, 3, (1, 3)), (27, 3, (1, 3, 9)), (4, 3, (1,)), (8, 2, (1, 2, 4)), (2, 3, ()), (1, 2, ())],
)
def test_rungs_are_the_schedule_divided_by_eta_again_and_again(epochs, eta, rungs):
    assert rung_epochs(epochs, eta) == rungs


def test_a_reduction_factor_below_two_is_refused():
    with pytest.raises(ValueError):
        rung_epochs(9, 1)
    with pytest.raises(ValueError):
        ParetoHalving((1,), reduction_factor=1)


def brute_force_fronts(points):
    """Fronts by the definition: peel off the points nothing left dominates."""

    def dominates(a, b):
        return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])

    left, fronts = set(range(len(points))), []
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        fronts.append(front)
        left -= front
    return fronts


@pytest.mark.parametrize("seed", range(20))
def test_fronts_match_the_definition(seed):
    rng = random.Random(seed)
    # Few distinct values, so ties on either objective are common.
    points = [(rng.choice([0.1, 0.2, 0.3, 0.4]), rng.choice([1.0, 2.0, 3.0])) for _ in range(15)]
    assert [set(f) for f in non_dominated_fronts(points)] == brute_force_fronts(points)


def test_crowding_keeps_the_ends_of_a_front():
    front = [(0.9, 9.0), (0.8, 5.0), (0.79, 4.9), (0.5, 1.0)]
    distance = crowding_distances(front, range(4))
    assert distance[0] == distance[3] == math.inf
    assert distance[1] > 0 and distance[2] > 0
    assert best(front, 2) == {0, 3}  # the extremes of the trade-off, not the crowded middle


def test_a_fast_candidate_nothing_dominates_is_promoted_over_slower_accurate_ones():
    halving = ParetoHalving((1, 3), reduction_factor=3)
    slow_and_good = [(0.80, 30.0), (0.78, 31.0), (0.79, 29.0), (0.77, 32.0), (0.76, 33.0)]
    assert not halving.should_stop(1, 0.30, 5.0, slow_and_good)  # fastest of all: front 1
    assert halving.should_stop(1, 0.30, 40.0, slow_and_good)  # slow and poor: dominated


def test_the_first_candidates_at_a_rung_go_on_and_later_ones_must_rank():
    halving = ParetoHalving((1,), reduction_factor=3)
    assert not halving.should_stop(1, 0.1, 50.0, [])
    assert not halving.should_stop(1, 0.1, 50.0, [(0.5, 10.0)])
    assert halving.should_stop(1, 0.1, 50.0, [(0.5, 10.0), (0.6, 12.0)])
    assert not halving.should_stop(2, 0.1, 50.0, [(0.5, 10.0)] * 10)  # not a rung


def test_about_one_in_eta_is_promoted_from_a_stream_of_candidates():
    rng = random.Random(0)
    halving = ParetoHalving((1,), reduction_factor=3)
    earlier, promoted = [], 0
    for _ in range(300):
        # Accuracy grows with latency, with noise: a trade-off, as in a real space.
        latency = rng.uniform(5, 50)
        accuracy = 0.3 + latency / 100 + rng.gauss(0, 0.05)
        promoted += not halving.should_stop(1, accuracy, latency, earlier)
        earlier.append((accuracy, latency))
    assert 60 <= promoted <= 140  # 100 in expectation


def test_a_nan_accuracy_is_never_promoted():
    assert ParetoHalving((1,)).should_stop(1, math.nan, 1.0, [])


def test_the_rule_never_stops_a_zoo_baseline_but_counts_its_rung_point() -> None:
    rule = SuccessiveHalvingRule(ParetoHalving.for_epochs(4, 3))
    # Three earlier candidates, all faster and more accurate: anything new is dominated at rung 1.
    rule.at_rung = {1: [(0.9, 1.0), (0.8, 1.5), (0.85, 1.2)]}

    assert not rule.should_stop(EpochPoint(1, 0.1, 9.0, baseline=True))
    assert len(rule.at_rung[1]) == 4  # the baseline's point is there for later candidates
    assert rule.should_stop(EpochPoint(1, 0.1, 9.0))
