"""Price a candidate at the deployment input and hold it against the search's budgets.

Pricing is milliseconds of work and happens in the driver before anything is trained: an
over-budget candidate is recorded with its cost and never reaches a worker.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace

from nas.config import SearchConfig
from nas.errors import InputError
from nas.evaluators.flops import count_cost, estimate_cost
from nas.evaluators.latency import LatencyTable
from nas.search_spaces.arch import Arch
from nas.search_spaces.space import SearchSpace


@dataclass(frozen=True)
class Price:
    """A candidate's cost at the deployment input, and how far over each budget it is."""

    mflops: float
    params: int
    latency_ms: float
    latency_n_measured: int
    latency_n_modelled: int
    violations: tuple[float, float, float]
    """(MFLOPs, params, ms) over budget; <= 0 is within. Optuna's constraint convention."""
    unrounded: tuple[float, float] | None = field(default=None, compare=False, repr=False)
    """(MFLOPs, ms) before rounding: what the budgets are held against."""

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations)

    def over_budget(self) -> str:
        names = ("MFLOPs", "params", "ms")
        return ", ".join(
            f"{name} over by {v:g}" for name, v in zip(names, self.violations) if v > 0
        )

    def held_against(self, config: SearchConfig) -> Price:
        """The same cost held against `config`'s budgets, as `price` would hold it, so that a
        network counted once is judged under any budget without counting it again."""
        mflops, latency_ms = self.unrounded or (self.mflops, self.latency_ms)
        return replace(self, violations=_violations(config, mflops, self.params, latency_ms))


def price(arch: Arch, config: SearchConfig, table: LatencyTable) -> Price:
    """MACs and parameters counted by fvcore; latency from the target's lookup table."""
    cost = count_cost(arch, config.deploy_input, config.deploy_classes)
    latency = table.predict(arch, config.deploy_input, config.deploy_classes)
    return Price(
        mflops=round(cost.mflops, 4),
        params=cost.params,
        latency_ms=round(latency.total_ms, 4),
        latency_n_measured=latency.n_measured,
        latency_n_modelled=latency.n_modelled,
        violations=_violations(config, cost.mflops, cost.params, latency.total_ms),
        unrounded=(cost.mflops, latency.total_ms),
    )


class Pricer:
    """`price` for one search, counting each network once (`Arch.network_key`).

    Counting with fvcore takes a fifth of a second, and a sampler in a small space proposes
    the same network again and again (skips placed differently are one network, with one
    cost); `known` may hold costs counted earlier, by network key.
    """

    def __init__(
        self,
        config: SearchConfig,
        table: LatencyTable,
        known: MutableMapping[str, Price] | None = None,
    ) -> None:
        self.config = config
        self.table = table
        self.known: MutableMapping[str, Price] = {} if known is None else known

    def __call__(self, arch: Arch) -> Price:
        key = arch.network_key()
        found = self.known.get(key)
        if found is None:
            found = self.known[key] = price(arch, self.config, self.table)
        return found


def _violations(
    config: SearchConfig, mflops: float, params: int, latency_ms: float
) -> tuple[float, float, float]:
    def over(value: float, budget: float | None) -> float:
        return 0.0 if budget is None else round(value - budget, 6)

    return (
        over(mflops, config.budget_mflops),
        over(params, config.budget_params),
        over(latency_ms, config.budget_ms),
    )


def check_budget_is_reachable(
    space: SearchSpace, config: SearchConfig, table: LatencyTable
) -> None:
    """Fail at once, naming the minimum, when no architecture of the space fits the budget.

    The cheapest architecture in multiply-adds takes each choice at its cheapest; parameters
    and latency fall with the same choices, so it is the one to test against every budget.
    """
    cheapest = space.cheapest()
    cost = estimate_cost(cheapest, config.deploy_input, config.deploy_classes)
    latency = table.predict(cheapest, config.deploy_input, config.deploy_classes).total_ms
    checks = (
        ("--budget-mflops", config.budget_mflops, cost.mflops, "MFLOPs"),
        ("--budget-params", config.budget_params, cost.params, "parameters"),
        ("--budget-ms", config.budget_ms, latency, f"ms on {table.target}"),
    )
    for flag, budget, minimum, unit in checks:
        if budget is not None and minimum > budget:
            raise InputError(
                f"{flag} {budget:g} is below the cheapest architecture of space "
                f"{space.name!r} ({minimum:.4g} {unit}): raise the budget or use "
                f"a smaller space"
            )
