"""Reach: proposals across the whole latency range a budget allows (``--sampler bands``).

A network's latency is a sum over its blocks, so the space's uniform draws pile their latency in
the middle, and a sampler's first generations are uniform draws: left to its sampler, a search
trains nothing near the space's fastest networks, where the small zoo networks sit. A budget in
MFLOPs does not pull it there either (grouped pointwise convolutions cut MFLOPs, not latency).

`Reach` cuts the latencies from the space's fastest network to the budget's limit into bands
(`nas.coverage.LatencyBands`, cut at the zoo networks within the budget). Before each ask, when
a band holds fewer than its share of the searched candidates (`SHARE`), it draws a pool of the
space's own candidates, each pulled towards the fastest choices by a random amount, prices them
from their signatures (`nas.pricing.Pricer.estimate`, milliseconds each), and picks one in the
least-covered band that is new and within budget. The proposer queues its parameters
(`optuna.Study.enqueue_trial`), so the trial holds exactly the parameters that trained and the
sampler learns from it as from any other; otherwise the sampler proposes as it would alone.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import optuna

from nas.config import SearchConfig
from nas.coverage import Coverage, LatencyBands, ZooPoint, coverage_of
from nas.errors import InputError
from nas.front import TrainedRow, single_seed_rows
from nas.pricing import Price, Pricer
from nas.search_spaces.arch import Arch
from nas.search_spaces.space import SearchSpace
from nas.search_spaces.zoo import ZOO
from nas.trials import Outcome, TrialAttrs

SHARE = 0.5
"""A band is under-covered while it holds fewer than this share of an equal split of the
searched candidates: at most about half the proposals are steered, the rest are the sampler's."""
POOL = 64
"""Candidates drawn and priced per round of a steered proposal."""
ROUNDS = 16
"""Rounds of `POOL` before a band is given up for this proposal (the sampler proposes instead)."""
DESCENT_PASSES = 2
"""Passes of coordinate descent over the choices that find the space's fastest network."""


def preference_key(name: str) -> str:
    """The choice a parameter stands for, whichever block: ``s3.b2.kernel`` -> ``s3.kernel``."""
    parts = name.split(".")
    if len(parts) == 3 and parts[1].startswith("b") and parts[1][1:].isdigit():
        return f"{parts[0]}.{parts[2]}"
    return name


class _Draw:
    """A `Suggester` that takes each choice's preferred option with probability `pull`, any
    option otherwise, and keeps what it suggested (the parameters to queue)."""

    def __init__(self, prefer: dict[str, Any], pull: float, rng: random.Random) -> None:
        self.prefer, self.pull, self.rng = prefer, pull, rng
        self.params: dict[str, Any] = {}

    def _preferred(self, name: str) -> bool:
        return preference_key(name) in self.prefer and self.rng.random() < self.pull

    def suggest_int(self, name: str, low: int, high: int) -> int:
        value = self.prefer[preference_key(name)] if self._preferred(name) else None
        value = self.rng.randint(low, high) if value is None else value
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        options = list(choices)
        value = self.prefer[preference_key(name)] if self._preferred(name) else None
        value = self.rng.choice(options) if value is None else value
        self.params[name] = value
        return value


class _Options:
    """A `Suggester` that records every choice's options, at the deepest depth of each stage."""

    def __init__(self) -> None:
        self.options: dict[str, tuple[Any, ...]] = {}

    def suggest_int(self, name: str, low: int, high: int) -> int:
        self.options.setdefault(preference_key(name), tuple(range(low, high + 1)))
        return high

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        options = tuple(choices)
        self.options.setdefault(preference_key(name), options)
        return options[0]


def fastest_choices(
    space: SearchSpace, latency_of: Callable[[Arch], float]
) -> tuple[dict[str, Any], float]:
    """Each choice's option (by `preference_key`) that makes the fastest network, and its
    latency: coordinate descent from the space's cheapest corner in multiply-adds."""
    recorder = _Options()
    space.sample(recorder)
    cheapest = space.params_of(space.cheapest()) or {}
    prefer: dict[str, Any] = {}
    for name, value in cheapest.items():
        prefer.setdefault(preference_key(name), value)
    for key, options in recorder.options.items():
        prefer.setdefault(key, options[0])
    rng = random.Random(0)  # unused at a pull of 1: every choice takes its preferred option

    def latency(choices: dict[str, Any]) -> float:
        return latency_of(space.sample(_Draw(choices, 1.0, rng)))

    best = latency(prefer)
    for _ in range(DESCENT_PASSES):
        for key, options in recorder.options.items():
            for option in options:
                trial = {**prefer, key: option}
                ms = latency(trial)
                if ms < best:
                    prefer, best = trial, ms
    return prefer, best


def zoo_within(config: SearchConfig, pricer: Pricer) -> list[tuple[str, Price]]:
    """The zoo networks within the budget, priced from their signatures; those the target's
    table cannot price are left out."""
    found = []
    for name, factory in ZOO.items():
        try:
            cost = pricer.estimate(factory())
        except InputError:
            continue
        if cost.feasible:
            found.append((name, cost))
    return found


class Reach:
    """The bands of one search and what the searched candidates cover of them."""

    def __init__(
        self,
        space: SearchSpace,
        config: SearchConfig,
        pricer: Pricer,
        *,
        seed: int,
        proposed: Iterable[float] = (),
        feasible: Iterable[float] = (),
    ) -> None:
        """`proposed`: latencies of the searched candidates already trained (a resume);
        `feasible`: latencies of every candidate within budget priced so far."""
        self.space, self.config, self.pricer = space, config, pricer
        self.rng = random.Random(seed)
        self.prefer, self.fastest_ms = fastest_choices(
            space, lambda a: pricer.estimate(a).latency_ms
        )
        self.zoo = zoo_within(config, pricer)
        self.proposed = list(proposed)
        self.exhausted: set[tuple[LatencyBands, int]] = set()
        """Bands (with the edges they had) in which `draw` found no new candidate."""
        self.limit_ms = max([self.fastest_ms, *feasible, *(c.latency_ms for _, c in self.zoo)])

    def bands(self) -> LatencyBands:
        return LatencyBands.between(
            self.fastest_ms,
            self.config.budget_ms or self.limit_ms,
            (cost.latency_ms for _, cost in self.zoo),
        )

    def zoo_points(self) -> list[ZooPoint]:
        return [ZooPoint(name, cost.latency_ms) for name, cost in self.zoo]

    def priced(self, cost: Price) -> None:
        """A candidate the study recorded: a feasible one may raise the top of the range (under a
        budget in MFLOPs or parameters, the limit is the slowest feasible latency seen)."""
        if cost.feasible:
            self.limit_ms = max(self.limit_ms, cost.latency_ms)

    def dispatched(self, cost: Price) -> None:
        self.proposed.append(cost.latency_ms)

    def wanted(self) -> int | None:
        """The least-covered band (the fastest among equals) when it is under-covered, else None.

        A band whose draws found nothing new (`draw`) is passed over until the bands change.
        """
        bands = self.bands()
        counts = bands.counts(self.proposed)
        open_bands = [i for i in range(len(counts)) if (bands, i) not in self.exhausted]
        if not open_bands:
            return None
        band = min(open_bands, key=lambda i: (counts[i], i))
        share = SHARE * len(self.proposed) / len(counts)
        return band if counts[band] < share else None

    def draw(self, band: int, taken: Callable[[str], bool]) -> dict[str, Any] | None:
        """Parameters of a new, feasible candidate in `band`, or None when `ROUNDS` pools of
        draws found none (`taken`: whether a network key is trained or training)."""
        bands = self.bands()
        for _ in range(ROUNDS):
            found = []
            for _ in range(POOL):
                draw = _Draw(self.prefer, self.rng.random(), self.rng)
                arch = self.space.sample(draw)
                key = arch.network_key()
                if taken(key):
                    continue
                cost = self.pricer.estimate(arch, key)
                if cost.feasible and bands.band_of(cost.latency_ms) == band:
                    found.append(draw.params)
            if found:
                return self.rng.choice(found)
        self.exhausted.add((bands, band))
        return None

    def pool(self, size: int, taken: Callable[[str], bool]) -> list[tuple[dict[str, Any], Arch]]:
        """Up to `size` new candidates within budget (parameters and network), each drawn
        pulled towards the fastest choices by a random amount, as `draw` draws, so the pool
        spans the latency range; a network drawn twice is kept once."""
        found: dict[str, tuple[dict[str, Any], Arch]] = {}
        for _ in range(size):
            draw = _Draw(self.prefer, self.rng.random(), self.rng)
            arch = self.space.sample(draw)
            key = arch.network_key()
            if key in found or taken(key):
                continue
            if self.pricer.estimate(arch, key).feasible:
                found[key] = (draw.params, arch)
        return list(found.values())


def steer_seed(config: SearchConfig, trials_so_far: int) -> int:
    """The draws' seed: the search's, moved on by the trials a resumed study holds (as the
    sampler's is), so a resume does not replay the draws of the run it continues."""
    return (config.seed * 1_000_003 + trials_so_far) % 2**32


def priced_latencies(study: optuna.Study) -> tuple[list[float], list[float]]:
    """Latencies of the searched candidates `study` sent to workers (trained, stopped or not
    promoted), and of every candidate within budget it priced: what a resumed band proposer
    starts from, and what a report's bands are drawn from."""
    sent = (Outcome.TRAINED, Outcome.STOPPED, Outcome.NOT_PROMOTED)
    searched, feasible = [], []
    for trial in study.get_trials(deepcopy=False):
        attrs = TrialAttrs.of(trial)
        if attrs.latency_ms is None or any(v > 0 for v in attrs.violations or ()):
            continue
        feasible.append(attrs.latency_ms)
        if attrs.outcome in sent and attrs.baseline is None and attrs.zoo is None:
            searched.append(attrs.latency_ms)
    return searched, feasible


def study_coverage(
    study: optuna.Study,
    config: SearchConfig,
    space: SearchSpace,
    pricer: Pricer,
    reach: Reach | None = None,
    rows: Sequence[TrainedRow] | None = None,
) -> Coverage | None:
    """`study`'s trained candidates (`rows`, read from it unless given: a report's carry the
    confirm seeds) over the bands `reach` steers by (drawn anew for a study searched without
    them), against the zoo networks within the budget; None where the target's table cannot
    price the space."""
    if reach is None:
        try:
            reach = Reach(space, config, pricer, seed=0, feasible=priced_latencies(study)[1])
        except InputError:
            return None
    else:
        reach.limit_ms = max([reach.limit_ms, *priced_latencies(study)[1]])
    rows = single_seed_rows(study) if rows is None else list(rows)
    points = []
    for point in reach.zoo_points():
        arch = ZOO[point.name]().to_string()
        trained = [row for row in rows if row.name == point.name or row.arch == arch]
        row = max(trained, key=lambda r: r.accuracy, default=None)
        points.append(ZooPoint(point.name, point.latency_ms, row))
    return coverage_of(rows, reach.bands(), points)
