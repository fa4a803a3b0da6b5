"""Stopping rules on their own: each rule fed epochs by hand, with no Ray and no driver."""

from __future__ import annotations

import math
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from nas.config import SCHEDULERS, SearchConfig
from nas.errors import InputError
from nas.evaluators.recipe import Recipe
from nas.search_spaces.zoo import mobilenet_v3_small
from nas.stopping import (
    RULES,
    EpochPoint,
    MedianRule,
    NoStopping,
    PrunerRule,
    SuccessiveHalvingRule,
    rule_for,
)
from nas.successive_halving import ParetoHalving
from nas.surrogate import Candidate
from nas.trials import Outcome

FINISHED = [
    [0.50, 0.60, 0.70],
    [0.40, 0.55, 0.65],
    [0.45, 0.50, 0.68],
    [0.52, 0.62, 0.72],
    [0.30, 0.58, 0.66],
]  # medians 0.45, 0.58, 0.68


def finished_median_rule(latencies: list[float] | None = None) -> MedianRule:
    rule = MedianRule(last_epoch=3)
    for curve, latency in zip(FINISHED, latencies or [1.0] * len(FINISHED)):
        rule.on_finished(curve, latency)
    return rule


def past_trial(
    outcome: Outcome, curve: list[float], latency_ms: float, state: TrialState
) -> optuna.trial.FrozenTrial:
    """A trial as the recorder leaves it: its outcome, latency and per-epoch curve."""
    return create_trial(
        state=state,
        values=[curve[-1], latency_ms] if state is TrialState.COMPLETE else None,
        user_attrs={
            "outcome": outcome.value,
            "latency_ms": latency_ms,
            "curve": [{"epoch": i + 1, "val_accuracy": a} for i, a in enumerate(curve)],
        },
    )


# ---- no stopping ----------------------------------------------------------------------------


def test_no_stopping_lets_every_candidate_train_on():
    rule = NoStopping()
    assert not rule.should_stop(EpochPoint(1, math.nan, 1.0))
    assert not rule.should_stop(EpochPoint(2, 0.0, 1.0))


# ---- the median rule --------------------------------------------------------------------------


def test_the_median_rule_stops_below_the_median_of_the_finished_curves():
    rule = finished_median_rule()
    assert rule.should_stop(EpochPoint(2, 0.57, 1.0))
    assert not rule.should_stop(EpochPoint(2, 0.58, 1.0))  # equal to the median is kept
    assert not rule.should_stop(EpochPoint(3, 0.0, 1.0))  # the last epoch: training is done
    assert rule.stopped_outcome is Outcome.STOPPED


def test_the_median_rule_compares_only_with_finished_candidates_at_least_as_fast():
    rule = finished_median_rule(latencies=[1.0, 1.0, 1.0, 9.0, 9.0])
    # Three as fast as it: too few (five are needed), so the candidate trains on.
    assert not rule.should_stop(EpochPoint(2, 0.0, 5.0))
    assert rule.should_stop(EpochPoint(2, 0.0, 10.0))


def test_the_median_rule_never_stops_a_baseline():
    assert not finished_median_rule().should_stop(EpochPoint(2, 0.0, 1.0, baseline=True))


def test_the_median_rule_learns_from_finished_candidates():
    rule = MedianRule(last_epoch=3)
    assert not rule.should_stop(EpochPoint(2, 0.0, 1.0))  # nothing finished yet
    for curve in FINISHED:
        rule.on_finished(curve, 1.0)
    assert rule.should_stop(EpochPoint(2, 0.0, 1.0))


def test_the_median_rule_takes_in_the_curves_a_study_trained_to_the_end():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for curve in FINISHED:
        study.add_trial(past_trial(Outcome.TRAINED, curve, 1.0, TrialState.COMPLETE))
    # Stopped early: its short curve is no finished candidate's.
    study.add_trial(past_trial(Outcome.STOPPED, [0.9, 0.9], 1.0, TrialState.PRUNED))
    rule = MedianRule(last_epoch=3)
    rule.load_history(study)
    assert rule.curves == FINISHED and rule.latencies == [1.0] * 5
    assert rule.should_stop(EpochPoint(2, 0.57, 1.0))


# ---- successive halving -----------------------------------------------------------------------


def test_successive_halving_judges_at_rungs_only_and_keeps_every_rung_point():
    rule = SuccessiveHalvingRule(ParetoHalving.for_epochs(9, 3))  # rungs 1 and 3
    assert not rule.should_stop(EpochPoint(2, 0.0, 50.0))
    assert rule.at_rung == {}
    assert not rule.should_stop(EpochPoint(1, 0.5, 10.0))
    assert not rule.should_stop(EpochPoint(1, 0.6, 12.0))
    # The third at rung 1, slower and less accurate than both before it: not promoted.
    assert rule.should_stop(EpochPoint(1, 0.1, 50.0))
    assert rule.at_rung == {1: [(0.5, 10.0), (0.6, 12.0), (0.1, 50.0)]}
    assert rule.stopped_outcome is Outcome.NOT_PROMOTED


def test_successive_halving_takes_in_the_rung_points_of_every_trained_candidate():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(past_trial(Outcome.TRAINED, [0.5, 0.6, 0.7], 10.0, TrialState.COMPLETE))
    study.add_trial(past_trial(Outcome.NOT_PROMOTED, [0.6], 12.0, TrialState.PRUNED))
    study.add_trial(past_trial(Outcome.INFEASIBLE, [], 99.0, TrialState.PRUNED))
    rule = SuccessiveHalvingRule(ParetoHalving((1, 2), reduction_factor=3))
    rule.load_history(study)
    assert rule.at_rung == {1: [(0.5, 10.0), (0.6, 12.0)], 2: [(0.6, 10.0)]}
    assert rule.should_stop(EpochPoint(1, 0.1, 50.0))  # as the third point of a fresh rung


# ---- the study's own pruner ---------------------------------------------------------------------


def test_the_pruner_rule_reports_each_epoch_and_follows_the_studys_pruner():
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2)
    )
    for _ in range(2):
        finished = study.ask()
        for epoch in (1, 2, 3):
            finished.report(0.9, epoch)
        study.tell(finished, 0.9)
    rule = PrunerRule(last_epoch=3)
    trial = study.ask()
    assert rule.should_stop(EpochPoint(1, 0.1, 1.0, trial=trial))
    assert trial.storage.get_trial(trial._trial_id).intermediate_values == {1: 0.1}
    assert not rule.should_stop(EpochPoint(2, 0.1, 1.0, baseline=True, trial=trial))
    assert not rule.should_stop(EpochPoint(3, 0.1, 1.0, trial=trial))  # the last epoch
    with pytest.raises(ValueError):
        rule.should_stop(EpochPoint(1, 0.1, 1.0))


# ---- which rule a search runs with ----------------------------------------------------------


@pytest.mark.parametrize(
    "settings, rule",
    [
        ({}, MedianRule),
        ({"scheduler": "asha"}, SuccessiveHalvingRule),
        ({"scheduler": "asha", "early_stopping": False}, NoStopping),
        ({"early_stopping": False}, NoStopping),
        ({"objective": "reward", "target_ms": 10.0}, PrunerRule),
        ({"objective": "reward", "target_ms": 10.0, "scheduler": "asha"}, PrunerRule),
    ],
)
def test_a_search_runs_the_rule_its_settings_name(settings, rule):
    config = SearchConfig(budget_mflops=150, **settings)
    assert type(rule_for(config, Recipe(epochs=9))) is rule


def test_a_schedule_too_short_for_a_rung_is_refused_even_with_stopping_off():
    for early_stopping in (True, False):
        config = SearchConfig(budget_mflops=150, scheduler="asha", early_stopping=early_stopping)
        with pytest.raises(InputError, match="--scheduler asha"):
            rule_for(config, Recipe(epochs=2))


def test_every_scheduler_flag_value_has_its_rule():
    assert set(RULES) == set(SCHEDULERS)


def test_a_point_is_a_jobs_latest_epoch():
    arch = mobilenet_v3_small()
    job = SimpleNamespace(
        curve=[SimpleNamespace(val_accuracy=0.3), SimpleNamespace(val_accuracy=0.4)],
        price=SimpleNamespace(latency_ms=7.5, mflops=21.0, params=1234),
        arch=arch,
        searched=False,
        trial="the trial",
    )
    network = Candidate(arch, 21.0, 1234, 7.5)
    assert EpochPoint.of(job) == EpochPoint(
        2, 0.4, 7.5, baseline=True, trial="the trial", candidate=network
    )
