"""Whole networks for the latency tables: sampling them from a space and timing them end to end.

`nas lut build` times a few networks to calibrate what isolated operators miss, and
`nas lut validate` times others to check the result; both sample and time them here, the same
way. Networks are timed in interleaved rounds (every network once per round, the median over
rounds kept), so a burst of load from other processes spreads over all networks instead of
spoiling a few of them.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from nas.evaluators.lut_timing import Backend, measure
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model
from nas.search_spaces.signatures import InputShape
from nas.search_spaces.space import SearchSpace


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
    """Median over rounds of each round's median."""
    spread_ms: float
    """Largest minus smallest round median: how much the machine's load moved it."""


def time_networks(archs: list[Arch], backend: Backend, shape: InputShape, num_classes: int,
                  rounds: int = 3, repeats: int = 20, max_seconds: float = 3.0,
                  description: str = "networks", show_progress: bool = True
                  ) -> list[NetworkTiming]:
    """End-to-end latency of each architecture at batch one, with `backend`'s threads."""
    console = Console(stderr=True)
    runs = []
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console,
                  disable=not show_progress or not console.is_terminal) as progress:
        task = progress.add_task(description, total=len(archs) * (rounds + 1))
        for arch in archs:  # export every network first: it is the slow part
            model = build_model(arch, shape, num_classes).eval()
            runs.append(backend.prepare(model, (1, *shape)))
            progress.advance(task)
        per_round: list[list[float]] = [[] for _ in archs]
        for _ in range(rounds):
            for index, run in enumerate(runs):
                per_round[index].append(measure(run, backend.threads, repeats=repeats, warmup=3,
                                                min_seconds=0.0, max_seconds=max_seconds).ms)
                progress.advance(task)
    return [NetworkTiming(ms=float(statistics.median(values)),
                          spread_ms=float(max(values) - min(values))) for values in per_round]
