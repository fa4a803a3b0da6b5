"""`nas.pricing.Pricer`: a search counts each network once, and a cost counted under one budget
is judged under another exactly as pricing it again would judge it."""

from __future__ import annotations

import pytest

from nas.config import SearchConfig
from nas.evaluators.latency import load_table
from nas.evaluators.nasbench_macro import NasBenchMacro
from nas.pricing import Pricer, estimate_price, price
from nas.search_spaces.space import load_space
from nas.search_spaces.zoo import ZOO

TABLE_PRICING = dict(space="nasbench-macro", evaluator="table", input_size=32)


@pytest.fixture(scope="module")
def macro() -> NasBenchMacro:
    return NasBenchMacro.load()


def test_skips_placed_differently_are_counted_once(macro: NasBenchMacro) -> None:
    config = SearchConfig(**TABLE_PRICING, budget_mflops=30.0)
    table = load_table("armv8")
    # Layers 2 and 3 of stage 2: a skip after the stage's first block is an identity wherever
    # it sits, so these two keys are one network.
    one, other = macro.arch_of("11201100"), macro.arch_of("11210100")
    assert one != other and one.network_key() == other.network_key()
    pricer = Pricer(config, table)
    first = pricer(one)
    assert pricer(other) is first and list(pricer.known) == [one.network_key()]
    assert first == price(other, config, table)
    assert not first.feasible


def test_a_known_cost_serves_another_budget(macro: NasBenchMacro) -> None:
    table = load_table("armv8")
    arch = macro.arch_of("21210200")
    counted = price(arch, SearchConfig(**TABLE_PRICING), table)
    assert counted.feasible
    for budget in ({"budget_mflops": 40.0}, {"budget_ms": 4.0}, {"budget_mflops": 60.0}):
        config = SearchConfig(**TABLE_PRICING, **budget)
        assert counted.held_against(config) == price(arch, config, table)
    known = {arch.network_key(): counted.held_against(SearchConfig(**TABLE_PRICING, budget_ms=4.0))}
    pricer = Pricer(SearchConfig(**TABLE_PRICING, budget_ms=4.0), table, known)
    assert pricer(arch) is known[arch.network_key()]


def test_a_price_from_signatures_is_the_counted_price() -> None:
    """What a proposer weighs (`Pricer.estimate`) is what a trained candidate is recorded with."""
    config = SearchConfig(budget_mflops=150.0)
    table = load_table("armv8")
    space = load_space("mobile")
    pricer = Pricer(config, table)
    for params in ({}, {"s2.depth": 4, "s2.width": 48, "s2.b0.groups": 2, "s2.b3.kernel": 7}):
        arch = space.sample(_Fixed(params))
        estimated = pricer.estimate(arch)
        counted = pricer(arch)
        assert estimated == counted and estimated is not counted
        assert pricer.estimate(arch) is counted  # once counted, the counted price is used


def test_every_zoo_network_is_priced_from_signatures_as_fvcore_counts_it() -> None:
    """Finalize and the warm start price the zoo from signatures; a trained baseline is recorded
    with fvcore's count: the two must agree for every network, or a zoo network would be
    finalized (or queued) under one price and reported under another."""
    config = SearchConfig(budget_mflops=150.0)
    table = load_table("armv8")
    for name, factory in ZOO.items():
        arch = factory()
        assert estimate_price(arch, config, table) == price(arch, config, table), name


class _Fixed:
    """Suggestions from `params`, each other choice its first option (depth its least)."""

    def __init__(self, params: dict) -> None:
        self.params = params

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self.params.get(name, low)

    def suggest_categorical(self, name: str, choices):  # noqa: ANN201 (any option's type)
        return self.params.get(name, choices[0])
