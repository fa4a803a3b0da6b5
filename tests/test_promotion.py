"""Promotion by the surrogate's uncertainty (`nas.promotion`, ``--scheduler surrogate``).

The networks are real NAS-Bench-Macro networks priced as the tabular benchmark prices them; their
learning curves rise towards each network's published mean accuracy, so which candidates can
still join the front is known.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from tiny_search import TINY_SEARCH

from nas.config import SearchConfig
from nas.evaluators.nasbench_macro import NasBenchMacro
from nas.evaluators.recipe import Recipe
from nas.promotion import SurrogatePromotion
from nas.search import search
from nas.stopping import EpochPoint, SurrogateRule, rule_for
from nas.surrogate import Candidate
from nas.trials import Outcome

PRICES = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "tabular_search.json"
EPOCHS = 6


@pytest.fixture(scope="module")
def networks() -> list[tuple[Candidate, float]]:
    """Forty networks in one latency range, each with its published mean accuracy."""
    macro = NasBenchMacro.load()
    prices = json.loads(PRICES.read_text())["prices"]
    keys = random.Random(0).sample(sorted(prices), 40)
    found = []
    for key in keys:
        mflops, params, latency = prices[key][:3]
        candidate = Candidate(macro.arch_of(key), mflops, params, latency)
        found.append((candidate, macro.lookup(candidate.arch).mean))
    return found


def curve(final: float, epochs: int = EPOCHS) -> list[float]:
    """A learning curve that rises towards `final` as short schedules do."""
    return [round(final * (1 - 0.5 * math.exp(-epoch)), 4) for epoch in range(1, epochs + 1)]


def filled(networks: list[tuple[Candidate, float]], count: int) -> SurrogatePromotion:
    promotion = SurrogatePromotion(last_epoch=EPOCHS)
    for candidate, final in networks[:count]:
        promotion.add(candidate, curve(final), finished=True)
    return promotion


def test_nothing_stops_before_enough_candidates_finished(networks) -> None:
    promotion = filled(networks, 4)
    candidate, _ = networks[-1]
    assert not promotion.should_stop(candidate, [0.01, 0.01, 0.01])


def test_a_clear_loser_stops_and_a_contender_trains_on(networks) -> None:
    promotion = filled(networks, 30)
    slowest = max(networks, key=lambda network: network[0].latency_ms)[0]
    bar = promotion.bar(slowest.latency_ms)
    assert bar is not None
    # Far below every finished curve at the same epoch: no plausible final reaches the bar.
    assert promotion.should_stop(slowest, [0.10, 0.10, 0.10])
    # Level with the best finished curve: its place on the front is open, so it trains on.
    assert not promotion.should_stop(slowest, curve(bar + 0.01)[:3])


def test_never_at_warm_up_or_the_last_epoch_or_without_a_faster_finisher(networks) -> None:
    promotion = filled(networks, 30)
    slowest = max(networks, key=lambda network: network[0].latency_ms)[0]
    assert not promotion.should_stop(slowest, [0.10])  # the warm-up epoch
    assert not promotion.should_stop(slowest, [0.10] * EPOCHS)  # done: stopping wastes it
    fastest = min(networks[:30], key=lambda network: network[0].latency_ms)[0]
    faster = Candidate(fastest.arch, fastest.mflops, fastest.params, fastest.latency_ms - 1.0)
    assert promotion.bar(faster.latency_ms) is None
    assert not promotion.should_stop(faster, [0.10, 0.10, 0.10])


def test_a_decision_fits_on_the_nearest_curves_within_its_cap(networks, monkeypatch) -> None:
    import nas.promotion as promotion_module

    monkeypatch.setattr(promotion_module, "MAX_OBSERVATIONS", 3 * EPOCHS + 3)
    promotion = filled(networks, 30)
    candidate, _ = networks[35]
    used = promotion.evidence(candidate, [0.2, 0.3, 0.4])
    assert len(used) == 3 * EPOCHS + 3  # its own three epochs and three whole curves
    assert [o.accuracy for o in used[:3]] == [0.2, 0.3, 0.4]
    distance = sorted(abs(c.latency_ms - candidate.latency_ms) for c, _ in promotion.curves)
    kept = {abs(o.candidate.latency_ms - candidate.latency_ms) for o in used[3:]}
    assert kept == set(distance[:3])


def test_the_rule_pools_stopped_curves_keeps_baselines_and_resumes_from_the_study(
    networks,
) -> None:
    config = SearchConfig(scheduler="surrogate", epochs=EPOCHS)
    rule = rule_for(config, Recipe(epochs=EPOCHS))
    assert isinstance(rule, SurrogateRule)
    for candidate, final in networks[:30]:
        rule.on_finished(curve(final), candidate.latency_ms, candidate)
    slowest = max(networks, key=lambda network: network[0].latency_ms)[0]

    def point(epoch: int, accuracy: float, baseline: bool = False) -> EpochPoint:
        return EpochPoint(epoch, accuracy, slowest.latency_ms, baseline, candidate=slowest)

    # A zoo baseline is never stopped, whatever its curve.
    assert not any(rule.should_stop(point(e, 0.10, baseline=True)) for e in (1, 2, 3))
    # The same network searched: stopped once the evidence allows, and its curve then counts.
    stops = [rule.should_stop(point(e, 0.10)) for e in (1, 2, 3)]
    assert stops[0] is False and True in stops
    assert (slowest, [0.10] * (stops.index(True) + 1)) in rule.promotion.curves

    # A resumed search rebuilds the same evidence from the study's trials.
    study = optuna.create_study(directions=["maximize", "minimize"])
    for candidate, final in networks[:6]:
        study.add_trial(_trial(candidate, curve(final), Outcome.TRAINED))
    study.add_trial(_trial(slowest, [0.10, 0.10], Outcome.STOPPED))
    resumed = rule_for(config, Recipe(epochs=EPOCHS))
    resumed.load_history(study)
    assert len(resumed.promotion.curves) == 7 and len(resumed.promotion.finished) == 6


def _trial(
    candidate: Candidate, accuracies: list[float], outcome: Outcome
) -> optuna.trial.FrozenTrial:
    curve = [{"epoch": epoch, "val_accuracy": value} for epoch, value in enumerate(accuracies, 1)]
    return optuna.trial.create_trial(
        values=[accuracies[-1], candidate.latency_ms],
        user_attrs={
            "arch": candidate.arch.to_string(),
            "mflops": candidate.mflops,
            "params": candidate.params,
            "latency_ms": candidate.latency_ms,
            "outcome": outcome.value,
            "accuracy": accuracies[-1],
            "curve": curve,
        },
    )


@pytest.mark.slow
def test_a_search_with_the_surrogate_rule_counts_every_candidate_and_resumes(
    local_ray, tmp_path: Path
) -> None:
    """The driver feeds the rule real jobs, and a resumed search rebuilds its evidence."""
    settings = {
        **TINY_SEARCH,
        "epochs": 3,
        "workers": 1,
        "scheduler": "surrogate",
        "early_stopping": True,
        "storage": f"sqlite:///{tmp_path / 'nas.db'}",
        "out": str(tmp_path / "out"),
        "study": "promoted",
    }
    search(SearchConfig(**settings, trials=6))
    search(SearchConfig(**settings, trials=8, resume=True))
    trials = optuna.load_study(study_name="promoted", storage=settings["storage"]).get_trials()
    counted = [t for t in trials if t.user_attrs.get("outcome") in ("trained", "stopped_early")]
    assert len(counted) == 8
    for trial in counted:
        epochs = len(trial.user_attrs["curve"])
        if trial.user_attrs["outcome"] == "trained":
            assert trial.state == TrialState.COMPLETE and epochs == 3
        else:  # never at the warm-up epoch, never at the last
            assert epochs == 2
