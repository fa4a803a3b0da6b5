"""Whole networks for the latency tables: sampling them from a space and timing them end to end.

`nas lut build` times a few networks to calibrate what isolated operators miss, and
`nas lut validate` times others to check the result; both sample and time them here, the same
way. Networks are timed in interleaved rounds (every network once per round, the fastest run
over all rounds kept), so a burst of load from other processes spreads over all networks
instead of spoiling a few of them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nas.evaluators.latency.timing import Backend, Timing, measure
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model
from nas.search_spaces.signatures import InputShape
from nas.search_spaces.space import SearchSpace

NETWORK_ROUNDS = 15
"""Interleaved rounds per network, for calibration and validation alike.

On a two-core virtual machine the median of one short round moved by up to 20% from round to
round: the host's other guests slow whole stretches of time. Fifteen rounds, each network's
fastest run over all of them kept, give each network fifteen chances to meet a quiet moment,
at about three minutes for the 59 networks of a validation.
"""


class SeededSuggester:
    """A seeded stand-in for an Optuna trial: uniform choices, reproducible from the seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.rng.choice(list(choices))


def sample_archs(space: SearchSpace, count: int, seed: int) -> list[Arch]:
    """`count` distinct architectures drawn uniformly through `space.sample`."""
    rng = random.Random(seed)
    archs: dict[Arch, None] = {}
    for _ in range(count * 100):
        if len(archs) == count:
            break
        archs.setdefault(space.sample(SeededSuggester(rng)), None)
    return list(archs)


@dataclass(frozen=True)
class NetworkTiming:
    ms: float
    """Fastest run over all rounds, the statistic the table's entries use (`Timing.ms`)."""
    spread_ms: float
    """Largest minus smallest round median: how much the machine's load moved it."""


def time_networks(
    archs: list[Arch],
    backend: Backend,
    shape: InputShape,
    num_classes: int,
    rounds: int = NETWORK_ROUNDS,
    repeats: int = 20,
    max_seconds: float = 3.0,
    description: str = "networks",
    show_progress: bool = True,
) -> list[NetworkTiming]:
    """End-to-end latency of each architecture at batch one, with `backend`'s threads."""
    console = Console(stderr=True)
    runs = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress or not console.is_terminal,
    ) as progress:
        task = progress.add_task(description, total=len(archs) * (rounds + 1))
        for arch in archs:  # export every network first: it is the slow part
            model = build_model(arch, shape, num_classes).eval()
            runs.append(backend.prepare(model, (1, *shape)))
            progress.advance(task)
        per_round: list[list[Timing]] = [[] for _ in archs]
        for _ in range(rounds):
            for index, run in enumerate(runs):
                per_round[index].append(
                    measure(
                        run,
                        backend.threads,
                        repeats=repeats,
                        warmup=3,
                        min_seconds=0.0,
                        max_seconds=max_seconds,
                    )
                )
                progress.advance(task)
    return [
        NetworkTiming(
            ms=min(t.ms for t in timings),
            spread_ms=max(t.median_ms for t in timings) - min(t.median_ms for t in timings),
        )
        for timings in per_round
    ]
