"""`--sampler bands` (`nas.reach`): proposals reach the fast end of the budget, priced only, and
`--sampler nsga2` proposes as the sampler alone does."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

from nas.config import SearchConfig
from nas.evaluators.latency import LatencyTable, load_table
from nas.jobs import Job
from nas.lookup import evaluation_data
from nas.monitor import SearchMonitor
from nas.pricing import Pricer
from nas.proposals import Proposer
from nas.reach import fastest_choices, zoo_within
from nas.recipes import recipe_for
from nas.recorder import Recorder
from nas.search_spaces.space import load_space
from nas.study import open_study

MOBILE_150 = dict(budget_mflops=150.0, target="armv8", space="mobile", seed=3)


@pytest.fixture(scope="module")
def armv8() -> LatencyTable:
    return load_table("armv8")


def proposer_for(config: SearchConfig, table: LatencyTable) -> Proposer:
    """The product's proposer on an in-memory study, as a search makes it."""
    space = load_space(config.space)
    recipe = recipe_for(config)
    study = open_study(config, optuna.storages.InMemoryStorage(), recipe)
    data, _ = evaluation_data(config, space) if config.looks_up else (_described(config), None)
    recorder = Recorder(study, config, space=space, table=table, recipe=recipe, data=data)
    monitor = SearchMonitor(config.trials, console=Console(quiet=True), live=False)
    return Proposer(study, config, space=space, table=table, recorder=recorder, monitor=monitor)


def _described(config: SearchConfig):  # the study records a dataset; no image is read here
    from nas.evaluators.nasbench_macro import described_dataset

    return described_dataset()


def propose(proposer: Proposer, n: int) -> list[Job]:
    """`n` proposals, none trained: each stays in flight, as on a worker."""
    in_flight: dict[str, int] = {}
    jobs = []
    for _ in range(n):
        job = proposer.next(in_flight)
        in_flight[job.arch.network_key()] = job.trial.number
        jobs.append(job)
    return jobs


def test_the_fastest_network_is_faster_than_the_cheapest_corner(armv8: LatencyTable) -> None:
    space = load_space("mobile")
    pricer = Pricer(SearchConfig(**MOBILE_150), armv8)
    _, fastest_ms = fastest_choices(space, lambda arch: pricer.estimate(arch).latency_ms)
    assert fastest_ms <= pricer.estimate(space.cheapest()).latency_ms


def test_bands_reach_under_the_fastest_zoo_network_in_a_few_proposals(
    armv8: LatencyTable,
) -> None:
    config = SearchConfig(**MOBILE_150, sampler="bands")
    proposer = proposer_for(config, armv8)
    assert proposer.reach is not None
    # The zoo networks within budget that the space can match (some run faster than any of it).
    zoo = [cost.latency_ms for _, cost in zoo_within(config, proposer.pricer)]
    fastest_zoo = min(ms for ms in zoo if ms >= proposer.reach.fastest_ms)
    jobs = propose(proposer, 3)
    assert min(job.price.latency_ms for job in jobs) <= fastest_zoo
    assert all(job.price.feasible for job in jobs)
    # What trained is what the study holds: a steered candidate is a trial of fixed parameters.
    steered = [
        j for j in jobs if "fixed_params" in j.trial.study.trials[j.trial.number].system_attrs
    ]
    assert steered
    for job in steered:
        frozen = proposer.study.trials[job.trial.number]
        assert proposer.space.sample(optuna.trial.FixedTrial(frozen.params)) == job.arch


def test_nsga2_proposes_as_the_sampler_alone(armv8: LatencyTable) -> None:
    config = SearchConfig(**MOBILE_150, sampler="nsga2")
    proposer = proposer_for(config, armv8)
    assert proposer.reach is None
    propose(proposer, 2)
    asked = proposer.study.get_trials(deepcopy=False)
    assert not any("fixed_params" in trial.system_attrs for trial in asked)
    # The same seed asked without the proposer suggests the same parameters, trial for trial.
    alone = open_study(config, optuna.storages.InMemoryStorage(), recipe_for(config))
    for trial in asked:
        fresh = alone.ask()
        proposer.space.sample(fresh)
        assert fresh.params == trial.params
        alone.tell(fresh, state=TrialState.FAIL)
