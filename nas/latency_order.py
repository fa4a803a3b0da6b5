"""Whether a front's order in latency is one its latency table can tell.

A front lists members cheapest first, each more accurate than the one before. Two neighbours
whose predicted latencies differ by less than the error the table states for its prices
(`nas.evaluators.latency.stated_error`) may run in the other order on the device: the choice
between them then rests on accuracy alone, and the search says so in one line, naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.evaluators.latency import StatedError, TableMetadata, stated_error
from nas.front import TrainedRow

MAX_NAMED = 4
"""Pairs named in the line; more are counted."""


@dataclass(frozen=True)
class CloseInLatency:
    """Neighbouring front members closer in latency than the table's stated error."""

    pairs: tuple[tuple[TrainedRow, TrainedRow], ...]
    error: StatedError
    target: str

    def line(self) -> str:
        named = ", ".join(
            f"{_member(cheaper)} and {_member(dearer)} ({cheaper.latency_ms:.2f} vs "
            f"{dearer.latency_ms:.2f} ms, {_gap_pct(cheaper, dearer):.1f}%)"
            for cheaper, dearer in self.pairs[:MAX_NAMED]
        )
        more = len(self.pairs) - MAX_NAMED
        if more > 0:
            named += f" and {more} more"
        return (
            f"latency order within the table's error: {named} differ by less than "
            f"{self.target}'s stated {self.error.pct:.1f}% ({self.error.basis}), so the "
            f"device may run them in either order"
        )


def close_in_latency(
    front: Sequence[TrainedRow],
    metadata: TableMetadata | Mapping[str, Any] | None,
    target: str,
) -> CloseInLatency | None:
    """The neighbours of `front` (cheapest first) whose latencies differ by less than the
    error `metadata` states; None when there are none, or the table states no error."""
    error = stated_error(metadata)
    if error is None:
        return None
    pairs = tuple(
        (cheaper, dearer)
        for cheaper, dearer in zip(front, front[1:])
        if _gap_pct(cheaper, dearer) < error.pct
    )
    return CloseInLatency(pairs, error, target) if pairs else None


def _gap_pct(cheaper: TrainedRow, dearer: TrainedRow) -> float:
    """How much slower `dearer` is predicted, in percent of `cheaper`'s latency."""
    if cheaper.latency_ms <= 0:
        return float("inf")
    return (dearer.latency_ms - cheaper.latency_ms) / cheaper.latency_ms * 100


def _member(row: TrainedRow) -> str:
    return f"trial {row.number}" + (f" ({row.name})" if row.name else "")
