"""The surrogate (`nas.surrogate`) on real NAS-Bench-Macro rows, the hypervolume gain it is
read through (`nas.acquisition`), and ``--sampler surrogate`` proposing in the product's loop."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import optuna
import pytest
from rich.console import Console
from scipy.stats import kendalltau
from tiny_search import TINY_SEARCH

from nas.acquisition import expected_hypervolume_gain
from nas.config import SearchConfig
from nas.evaluators.latency import load_table
from nas.evaluators.nasbench_macro import SPACE, NasBenchMacro, described_dataset
from nas.lookup import lookup_candidate
from nas.monitor import SearchMonitor
from nas.pricing import Pricer
from nas.proposals import Proposer
from nas.recipes import recipe_for
from nas.recorder import Recorder
from nas.search import search
from nas.search_spaces.space import load_space
from nas.study import open_study
from nas.surrogate import MIN_OBSERVATIONS, Candidate, Observation, Surrogate, prior_score
from nas.trials import Outcome, TrialAttrs
from nas.worker import WorkerMessage

PRICES = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "tabular_search.json"


@pytest.fixture(scope="module")
def macro() -> NasBenchMacro:
    return NasBenchMacro.load()


@pytest.fixture(scope="module")
def candidates(macro: NasBenchMacro) -> dict[str, Candidate]:
    """Every priced NAS-Bench-Macro key (one per distinct network) as a candidate; the prices
    are the tabular benchmark's, counted with fvcore at 32x32 on armv8."""
    prices = json.loads(PRICES.read_text())["prices"]
    return {
        key: Candidate(macro.arch_of(key), fields[0], fields[1], fields[2])
        for key, fields in prices.items()
    }


def observed(macro: NasBenchMacro, candidates: dict[str, Candidate], keys: list[str]):
    """Each key's first published run, as a search at its first seed would have seen it."""
    return [
        Observation(candidates[key], 50, macro.lookup(candidates[key].arch).accuracy(0))
        for key in keys
    ]


def true_means(macro: NasBenchMacro, candidates: dict[str, Candidate], keys: list[str]):
    return [macro.lookup(candidates[key].arch).mean for key in keys]


def test_the_pooled_fit_ranks_held_out_networks_beyond_chance_and_beyond_size_alone(
    macro: NasBenchMacro, candidates: dict[str, Candidate]
) -> None:
    keys = sorted(candidates)
    rng = random.Random(0)
    chosen = rng.sample(keys, 400)
    train, held_out = chosen[:100], chosen[100:]
    asked = [candidates[key] for key in held_out]
    surrogate = Surrogate().fit(observed(macro, candidates, train), asked)
    mean, std = surrogate.predict(asked)
    truth = true_means(macro, candidates, held_out)
    fitted_tau, p = kendalltau(mean, truth)
    prior_tau, prior_p = kendalltau(prior_score(asked), truth)
    assert fitted_tau > 0 and p < 0.001
    assert prior_tau > 0 and prior_p < 0.001  # the prior before training is worth having
    assert fitted_tau > prior_tau  # and what training adds is worth more
    assert np.all(std > 0) and np.all(np.isfinite(mean))


def test_uncertainty_grows_far_from_the_data(
    macro: NasBenchMacro, candidates: dict[str, Candidate]
) -> None:
    """Trained only on networks whose last layer is an identity, the model is less sure of
    networks with an operator there than of other networks like those it saw."""
    last_empty = sorted(key for key in candidates if key.endswith("0"))
    last_full = sorted(key for key in candidates if key.endswith("2"))
    rng = random.Random(1)
    train = rng.sample(last_empty, 120)
    near = rng.sample([key for key in last_empty if key not in train], 100)
    far = rng.sample(last_full, 100)
    asked = [candidates[key] for key in near + far]
    surrogate = Surrogate().fit(observed(macro, candidates, train), asked)
    _, std = surrogate.predict(asked)
    assert np.median(std[100:]) > 1.5 * np.median(std[:100])


def test_too_few_observations_leave_the_prior_to_rank(
    macro: NasBenchMacro, candidates: dict[str, Candidate]
) -> None:
    keys = sorted(candidates)[: MIN_OBSERVATIONS - 1]
    surrogate = Surrogate().fit(observed(macro, candidates, keys))
    assert not surrogate.fitted


def test_the_hypervolume_gain_matches_sampling_and_orders_the_obvious() -> None:
    front = [(2.0, 0.70), (4.0, 0.80)]
    reference = (0.5, 6.0)
    mean = np.array([0.75, 0.75, 0.60, 0.90])
    std = np.array([0.02, 0.02, 1e-6, 0.05])
    latency = np.array([1.0, 3.0, 3.0, 5.0])
    gain = expected_hypervolume_gain(mean, std, latency, front, reference)
    # Faster at the same accuracy gains more; surely dominated gains nothing.
    assert gain[0] > gain[1] > 0
    assert gain[2] == pytest.approx(0.0, abs=1e-9)
    # The closed form against Monte Carlo over the candidate's accuracy.
    rng = np.random.default_rng(0)
    draws = rng.normal(mean[3], std[3], 200_000)
    # At 5 ms the front's best is 0.80 up to the reference at 6 ms.
    sampled = np.clip(draws - 0.80, 0, None).mean() * (6.0 - 5.0)
    assert gain[3] == pytest.approx(sampled, rel=0.02)


def test_surrogate_proposals_are_new_feasible_and_recorded_as_trained(
    macro: NasBenchMacro,
) -> None:
    """The product's proposer with ``--sampler surrogate`` over looked-up accuracies: every
    proposal is a queued candidate of fixed parameters, within budget, never one trained."""
    config = SearchConfig(
        space=SPACE,
        evaluator="table",
        input_size=32,
        target="armv8",
        budget_ms=4.4,
        sampler="surrogate",
        seed=5,
        trials=12,
    )
    table, space, recipe = load_table("armv8"), load_space(SPACE), recipe_for(config)
    study = open_study(config, optuna.storages.InMemoryStorage(), recipe)
    recorder = Recorder(
        study, config, space=space, table=table, recipe=recipe, data=described_dataset()
    )
    monitor = SearchMonitor(config.trials, console=Console(quiet=True), live=False)
    proposer = Proposer(
        study,
        config,
        space=space,
        table=table,
        recorder=recorder,
        monitor=monitor,
        pricer=Pricer(config, table),
    )
    assert proposer.surrogate is not None
    keys = []
    for _ in range(config.trials):
        job = proposer.next({})
        assert job.price.feasible
        frozen = study.trials[job.trial.number]
        assert "fixed_params" in frozen.system_attrs  # the surrogate chose it
        assert space.sample(optuna.trial.FixedTrial(frozen.params)) == job.arch
        *_, last = lookup_candidate(job.arch.to_string(), macro, recipe.to_dict())
        result = WorkerMessage.from_dict(last).result
        assert result is not None
        recorder.trained(job, result, Outcome.TRAINED)
        proposer.on_trained(job)
        keys.append(job.arch.network_key())
    assert len(set(keys)) == len(keys)
    outcomes = [TrialAttrs.of(trial).outcome for trial in study.trials]
    assert outcomes.count(Outcome.TRAINED) == config.trials


@pytest.mark.slow
def test_a_search_with_the_surrogate_trains_and_reports(local_ray, tmp_path: Path) -> None:
    """A real `tiny` search, trained on Fashion-MNIST images: past the first proposals the
    surrogate has trained candidates to fit and chooses from them."""
    trials = MIN_OBSERVATIONS + 2
    config = SearchConfig(
        **TINY_SEARCH,
        sampler="surrogate",
        trials=trials,
        storage=f"sqlite:///{tmp_path / 'nas.db'}",
        out=str(tmp_path / "out"),
    )
    result = search(config)
    study = optuna.load_study(study_name=result.study_name, storage=config.storage)
    trained = [t for t in study.trials if TrialAttrs.of(t).outcome is Outcome.TRAINED]
    assert len(trained) == trials
    assert all("fixed_params" in t.system_attrs for t in trained)
    assert all(TrialAttrs.of(t).mflops <= config.budget_mflops for t in trained)
    assert result.pareto
