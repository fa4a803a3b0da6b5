"""Price a candidate at the deployment input and hold it against the search's budgets.

Pricing happens in the driver before anything is trained: an over-budget candidate is
recorded with its cost and never reaches a worker. A candidate that trains is counted by fvcore
on its built model (`price`); one the proposer only considers (a pool of candidates for a
latency band, `nas.reach`) is priced from its operator signatures (`estimate_price`), the same
numbers without building anything, so thousands can be weighed before one is chosen.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from nas.config import SearchConfig
from nas.errors import InputError
from nas.evaluators.flops import count_cost, estimate_cost
from nas.evaluators.latency import LatencyTable
from nas.search_spaces.arch import Arch
from nas.search_spaces.footprint import op_macs, op_params
from nas.search_spaces.signatures import OpSignature, arch_signatures
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


def estimate_price(arch: Arch, config: SearchConfig, table: LatencyTable) -> Price:
    """`price` from the operator signatures alone (as `estimate_cost` counts), building nothing.

    The signatures are derived once and serve both the count and the latency table; each
    operator's count is remembered (`_op_counts`), since a space has a few thousand operators
    and its candidates share them.
    """
    sigs = arch_signatures(arch, config.deploy_input, config.deploy_classes)
    macs = params = 0
    for sig in sigs:
        op_m, op_p = _op_counts(sig)
        macs += op_m
        params += op_p
    _, height, width = config.deploy_input
    if table.cost_model is not None or (height, width) == table.input_hw:
        latency = table.price(sigs)
    else:  # entries of another size and no model: predict says which build would fill it
        latency = table.predict(arch, config.deploy_input, config.deploy_classes)
    mflops = macs / 1e6
    return Price(
        mflops=round(mflops, 4),
        params=params,
        latency_ms=round(latency.total_ms, 4),
        latency_n_measured=latency.n_measured,
        latency_n_modelled=latency.n_modelled,
        violations=_violations(config, mflops, params, latency.total_ms),
        unrounded=(mflops, latency.total_ms),
    )


@lru_cache(maxsize=65536)
def _op_counts(sig: OpSignature) -> tuple[int, int]:
    return op_macs(sig), op_params(sig)


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

        self.estimated: dict[str, Price] = {}
        """Costs from signatures (`estimate_price`) of networks only considered, by network key."""

    def __call__(self, arch: Arch) -> Price:
        key = arch.network_key()
        found = self.known.get(key)
        if found is None:
            found = self.known[key] = price(arch, self.config, self.table)
        return found

    def estimate(self, arch: Arch, key: str | None = None) -> Price:
        """The cost of a network the proposer weighs but may never train: the counted one when
        known, else from its signatures (`estimate_price`), remembered by network key."""
        key = key or arch.network_key()
        found = self.known.get(key) or self.estimated.get(key)
        if found is None:
            found = self.estimated[key] = estimate_price(arch, self.config, self.table)
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
