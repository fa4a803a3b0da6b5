"""Latency coverage: at which latencies a search trained candidates, and against which zoo networks.

A front says nothing where nothing trained. The latencies from the space's fastest network to the
budget's limit are cut into bands at the latencies of the zoo networks within the budget, so that
a band with a trained candidate in it holds a challenger, at no more latency, for every zoo
network above it. `Coverage` counts trained candidates per band and, for each zoo network under
the budget, names the searched candidates that run at no more latency: the fastest, and the most
accurate with its accuracy against the zoo network's, beyond the noise or not
(`nas.front.compare_rows`). The band proposer (`nas.reach`) steers by the same bands, and the
search's closing table and the report show this table.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nas.front import TrainedRow, compare_rows

MIN_BANDS = 4
"""Bands at least: where the zoo cuts the range into fewer, the widest bands are halved."""
NARROWEST = 3
"""No band is narrower than the range over this many times `MIN_BANDS`."""


@dataclass(frozen=True)
class LatencyBands:
    """Ascending edges; band i holds latencies in (edges[i], edges[i + 1]], band 0 from the first
    edge on. A latency below the first edge counts in band 0, one above the last in the last."""

    edges: tuple[float, ...]

    @classmethod
    def between(
        cls,
        fastest_ms: float,
        limit_ms: float,
        cuts: Iterable[float] = (),
        minimum: int = MIN_BANDS,
    ) -> LatencyBands:
        """Bands from `fastest_ms` to `limit_ms`, cut at `cuts` (the zoo's latencies) that fall
        between, then the widest halved until there are `minimum`.

        A cut closer than `NARROWEST` x `minimum` bands' width to the edge below it is left out:
        a band too narrow to draw into would hold the steering back, and the band below already
        holds candidates faster than that cut's zoo network.
        """
        limit_ms = max(limit_ms, fastest_ms)
        if limit_ms == fastest_ms:  # one latency only: a band of zero width
            return cls((fastest_ms, limit_ms))
        narrowest = (limit_ms - fastest_ms) / (NARROWEST * minimum)
        edges = [fastest_ms]
        for cut in sorted(cuts):
            if edges[-1] + narrowest <= cut <= limit_ms - narrowest:
                edges.append(cut)
        edges.append(limit_ms)
        while len(edges) - 1 < minimum:
            widest = max(range(len(edges) - 1), key=lambda i: edges[i + 1] - edges[i])
            edges.insert(widest + 1, (edges[widest] + edges[widest + 1]) / 2)
        return cls(tuple(round(edge, 4) for edge in edges))

    def __len__(self) -> int:
        return len(self.edges) - 1

    def band_of(self, latency_ms: float) -> int:
        index = bisect.bisect_left(self.edges, latency_ms) - 1
        return min(max(index, 0), len(self) - 1)

    def label(self, band: int) -> str:
        return f"{self.edges[band]:.2f}-{self.edges[band + 1]:.2f} ms"

    def counts(self, latencies: Iterable[float]) -> list[int]:
        found = [0] * len(self)
        for latency in latencies:
            found[self.band_of(latency)] += 1
        return found


@dataclass(frozen=True)
class ZooPoint:
    """A zoo network within the budget: its latency, and its trained row where the study has it."""

    name: str
    latency_ms: float
    row: TrainedRow | None = None


@dataclass(frozen=True)
class Challenge:
    """The searched candidates at no more latency than one zoo network."""

    zoo: ZooPoint
    n_within: int
    fastest: TrainedRow | None
    best: TrainedRow | None
    verdict: str
    """``better``, ``worse`` (beyond the noise, with p) or ``tie`` of `best` against the zoo
    network; why there is none where there is none."""


@dataclass(frozen=True)
class Coverage:
    bands: LatencyBands
    counts: tuple[int, ...]
    challenges: tuple[Challenge, ...]

    @property
    def uncovered(self) -> list[str]:
        """Zoo networks the space can match (no faster than its fastest network) with no
        searched candidate at their latency or below."""
        fastest = self.bands.edges[0]
        return [
            c.zoo.name for c in self.challenges if not c.n_within and c.zoo.latency_ms >= fastest
        ]

    def band_rows(self) -> list[list[str]]:
        return [[self.bands.label(i), str(n)] for i, n in enumerate(self.counts)]

    def challenge_rows(self) -> list[list[str]]:
        """One row per zoo network: name, ms, accuracy, candidates within, fastest, best, verdict."""
        rows = []
        for c in self.challenges:
            zoo_accuracy = f"{c.zoo.row.accuracy:.2%}" if c.zoo.row else "not trained"
            rows.append(
                [
                    c.zoo.name,
                    f"{c.zoo.latency_ms:.2f}",
                    zoo_accuracy,
                    str(c.n_within),
                    _row_text(c.fastest),
                    _row_text(c.best),
                    c.verdict,
                ]
            )
        return rows

    def markdown(self) -> list[str]:
        lines = [
            "| latency band | searched candidates trained |",
            "|---|---:|",
            *(f"| {band} | {n} |" for band, n in self.band_rows()),
            "",
        ]
        if self.challenges:
            lines += [
                "| zoo network | ms | its accuracy | searched at no more ms | fastest | "
                "most accurate | vs the zoo network |",
                "|---|---:|---:|---:|---|---|---|",
                *("| " + " | ".join(row) + " |" for row in self.challenge_rows()),
                "",
            ]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "bands": [
                {"from_ms": self.bands.edges[i], "to_ms": self.bands.edges[i + 1], "trained": n}
                for i, n in enumerate(self.counts)
            ],
            "zoo": [
                {
                    "name": c.zoo.name,
                    "latency_ms": c.zoo.latency_ms,
                    "searched_within": c.n_within,
                    "fastest_trial": c.fastest.number if c.fastest else None,
                    "best_trial": c.best.number if c.best else None,
                    "verdict": c.verdict,
                }
                for c in self.challenges
            ],
        }


HEADERS_BANDS = ("latency band", "searched candidates trained")
HEADERS_ZOO = (
    "zoo network",
    "ms",
    "its accuracy",
    "searched at no more ms",
    "fastest",
    "most accurate",
    "vs the zoo network",
)


def coverage_of(
    rows: Sequence[TrainedRow], bands: LatencyBands, zoo: Sequence[ZooPoint]
) -> Coverage:
    """The coverage of `rows` (trained candidates; zoo networks among them are not counted as
    searched) over `bands`, against the zoo networks `zoo` within the budget."""
    zoo_archs = {point.row.arch for point in zoo if point.row is not None}
    searched = [row for row in rows if row.name is None and row.arch not in zoo_archs]
    counts = bands.counts(row.latency_ms for row in searched)
    challenges = []
    for point in sorted(zoo, key=lambda p: p.latency_ms):
        within = [row for row in searched if row.latency_ms <= point.latency_ms]
        fastest = min(within, key=lambda row: (row.latency_ms, -row.front_accuracy), default=None)
        best = max(within, key=lambda row: (row.front_accuracy, -row.latency_ms), default=None)
        verdict = _verdict(best, point.row)
        if best is None and point.latency_ms < bands.edges[0]:
            verdict = f"faster than the space's fastest network ({bands.edges[0]:.2f} ms)"
        challenges.append(Challenge(point, len(within), fastest, best, verdict))
    return Coverage(bands, tuple(counts), tuple(challenges))


def _verdict(best: TrainedRow | None, zoo_row: TrainedRow | None) -> str:
    if best is None:
        return "no searched candidate"
    if zoo_row is None:
        return "zoo network not trained"
    comparison = compare_rows(best, zoo_row)
    if comparison is None:
        return "no validation count to compare"
    if not comparison.distinguishable:
        return f"tie ({comparison.p_text})"
    word = "better" if comparison.difference > 0 else "worse"
    return f"{word} by {abs(comparison.difference) * 100:.1f} points ({comparison.p_text})"


def _row_text(row: TrainedRow | None) -> str:
    if row is None:
        return "-"
    return f"trial {row.number}: {row.front_accuracy:.2%} at {row.latency_ms:.2f} ms"
