"""What measurements stand behind a table, per operator kind (`op_kinds`).

A table's price for an operator is as good as the measurements it rests on. For each kind of
work this records how many measured operators contained it, over which shapes (feature-map
side, channels, kernels, strides), and, where a cost model was checked on operators it was not
fitted to, its error on the held-out operators that contained the kind.

Two sources, merged where a table has both:

- the table's own ``measured`` entries (`nas lut build`, `import`, the sample `adapt` timed),
  found by enumerating the operators of its spaces and of the zoo networks at its input size;
  the held-out error is then a 5-fold cross-validation of a cost model refitted to them, the
  way `nas lut build` and `import` fit theirs (an adapted table's model is rescaled, not
  fitted, so it gets none);
- the metadata's ``fit_evidence``: the data a cost model was fitted to when that data is not in
  the entries (the shipped armv8 table, fitted to published Note10 operators at other input
  sizes), written by whoever fitted it with `fit_evidence`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.errors import InputError
from nas.evaluators.latency.op_kinds import KindUse, kind_uses
from nas.evaluators.latency.table import LatencyTable
from nas.search_spaces.signatures import OpSignature, arch_signatures

CV_FOLDS = 5
MIN_CV_SAMPLES = 20
"""Fewer measured operators than this leave too few per fold for a held-out error (and a kind
gets one only where at least `CV_FOLDS` of them contain it)."""


@dataclass(frozen=True)
class KindEvidence:
    """The measured operators that contained one kind, and the shapes the kind had in them."""

    n: int
    side: tuple[int, int]
    channels: tuple[int, int]
    kernels: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    out_channels: tuple[int, int] | None = None
    """The channels written, for kinds whose output width can differ from their input's."""
    held_out_mape_pct: float | None = None
    """Mean absolute error of a cost model on held-out operators containing the kind."""

    def beyond(self, use: KindUse) -> tuple[str, ...]:
        """Why `use` lies outside what was measured (nothing: within it)."""
        reasons = []
        if not self.side[0] <= use.side <= self.side[1]:
            reasons.append("side")
        out_beyond = (
            self.out_channels is not None
            and use.out_channels is not None
            and not self.out_channels[0] <= use.out_channels <= self.out_channels[1]
        )
        if out_beyond or not self.channels[0] <= use.channels <= self.channels[1]:
            reasons.append("channels")
        if use.kernel is not None and self.kernels and use.kernel not in self.kernels:
            reasons.append("kernel")
        if use.stride is not None and self.strides and use.stride not in self.strides:
            reasons.append("stride")
        return tuple(reasons)

    def range_text(self) -> str:
        """``side 7-112, ch 16-960, k3/5/7, s1/2``: the shapes measured."""
        channels = _span("ch", self.channels)
        if self.out_channels is not None and self.out_channels != self.channels:
            channels += " > " + _span("", self.out_channels).strip()
        parts = [_span("side", self.side), channels]
        if self.kernels:
            parts.append("k" + "/".join(map(str, self.kernels)))
        if self.strides:
            parts.append("s" + "/".join(map(str, self.strides)))
        return ", ".join(parts)

    def merged(self, other: KindEvidence) -> KindEvidence:
        """Both sources' operators; the held-out error of the one that has it (this first)."""
        return KindEvidence(
            n=self.n + other.n,
            side=(min(self.side[0], other.side[0]), max(self.side[1], other.side[1])),
            channels=(
                min(self.channels[0], other.channels[0]),
                max(self.channels[1], other.channels[1]),
            ),
            kernels=tuple(sorted({*self.kernels, *other.kernels})),
            strides=tuple(sorted({*self.strides, *other.strides})),
            out_channels=_union(self.out_channels, other.out_channels),
            held_out_mape_pct=(
                self.held_out_mape_pct
                if self.held_out_mape_pct is not None
                else other.held_out_mape_pct
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "n": self.n,
            "side": list(self.side),
            "channels": list(self.channels),
            "kernels": list(self.kernels),
            "strides": list(self.strides),
        }
        if self.out_channels is not None:
            data["out_channels"] = list(self.out_channels)
        if self.held_out_mape_pct is not None:
            data["held_out_mape_pct"] = self.held_out_mape_pct
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> KindEvidence:
        try:
            held_out = data.get("held_out_mape_pct")
            out = data.get("out_channels")
            return cls(
                n=int(data["n"]),
                side=(int(data["side"][0]), int(data["side"][1])),
                channels=(int(data["channels"][0]), int(data["channels"][1])),
                kernels=tuple(int(k) for k in data.get("kernels", ())),
                strides=tuple(int(s) for s in data.get("strides", ())),
                out_channels=None if out is None else (int(out[0]), int(out[1])),
                held_out_mape_pct=None if held_out is None else float(held_out),
            )
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise InputError(
                f"{where}: metadata 'fit_evidence' kind record {dict(data)!r} lacks n, side or "
                f"channels: rebuild the table or restore the file"
            ) from None


def _union(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), max(a[1], b[1]))


def _span(name: str, bounds: tuple[int, int]) -> str:
    low, high = bounds
    return f"{name} {low}" if low == high else f"{name} {low}-{high}"


@dataclass(frozen=True)
class Evidence:
    """Per kind, what stands behind a table's prices, and where that came from."""

    kinds: Mapping[str, KindEvidence]
    sources: tuple[str, ...]
    """In words: the measured entries, the data a cost model was fitted to."""
    held_out: tuple[str, ...] = ()
    """How each held-out error was obtained, in words."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "held_out": list(self.held_out),
            "kinds": {kind: evidence.to_dict() for kind, evidence in self.kinds.items()},
        }


Sample = tuple[Sequence[OpSignature], float, float | None]
"""One measured operator (or several timed together), its time, and a held-out prediction."""


def gather(samples: Iterable[Sample], min_held_out: int = 1) -> dict[str, KindEvidence]:
    """Per kind: the samples that contain it, their shapes, and the held-out error on them
    where at least `min_held_out` of them have a held-out prediction (a kind held out with
    its only sample is priced by no rate fitted to it, which says nothing of the model)."""
    uses: dict[str, list[KindUse]] = {}
    counts: dict[str, int] = {}
    errors: dict[str, list[float]] = {}
    for sigs, measured, predicted in samples:
        found: dict[str, list[KindUse]] = {}
        for sig in sigs:
            for use in kind_uses(sig):
                found.setdefault(use.kind, []).append(use)
        for kind, kind_found in found.items():
            uses.setdefault(kind, []).extend(kind_found)
            counts[kind] = counts.get(kind, 0) + 1
            if predicted is not None:
                errors.setdefault(kind, []).append(abs(predicted - measured) / measured * 100)
    return {
        kind: _evidence(
            counts[kind],
            uses[kind],
            errors[kind] if len(errors.get(kind, ())) >= min_held_out else None,
        )
        for kind in uses
    }


def _evidence(n: int, uses: list[KindUse], errors: list[float] | None) -> KindEvidence:
    sides = [use.side for use in uses]
    channels = [use.channels for use in uses]
    outs = [use.out_channels for use in uses if use.out_channels is not None]
    return KindEvidence(
        n=n,
        side=(min(sides), max(sides)),
        channels=(min(channels), max(channels)),
        kernels=tuple(sorted({use.kernel for use in uses if use.kernel is not None})),
        strides=tuple(sorted({use.stride for use in uses if use.stride is not None})),
        out_channels=(min(outs), max(outs)) if outs else None,
        held_out_mape_pct=round(float(np.mean(errors)), 2) if errors else None,
    )


def fit_evidence(samples: Iterable[Sample], data: str, held_out: str) -> dict[str, Any]:
    """The metadata record (``fit_evidence``) of a cost model fitted to data the table's
    entries do not hold: `data` and `held_out` say in words what the samples are and how
    their held-out predictions were made."""
    kinds = gather(samples)
    return {
        "data": data,
        "held_out": held_out,
        "kinds": {kind: kinds[kind].to_dict() for kind in sorted(kinds)},
    }


# ---- a table's evidence ---------------------------------------------------------------------


def table_evidence(table: LatencyTable, also: Iterable[OpSignature] = ()) -> Evidence:
    """What stands behind `table`: its measured entries and its metadata's fit evidence.

    Measured entries are found among the operators of its spaces and the zoo networks, and of
    `also` (the operators being priced: a space given as a file is recorded by name only)."""
    kinds: dict[str, KindEvidence] = {}
    sources: list[str] = []
    held_out: list[str] = []
    recorded = table.metadata.fit_evidence
    if recorded:
        where = table.describe()
        for kind, data in dict(recorded.get("kinds") or {}).items():
            kinds[kind] = KindEvidence.from_dict(data, where)
        sources.append(str(recorded.get("data", "the data its cost model was fitted to")))
        if recorded.get("held_out"):
            held_out.append(str(recorded["held_out"]))
    measured = measured_signatures(table, also)
    if measured:
        predictions = _cross_validated(table, measured)
        samples = [
            ((sig,), table.entries[sig.key]["ms"], predicted)
            for sig, predicted in zip(measured, predictions)
        ]
        for kind, found in gather(samples, min_held_out=CV_FOLDS).items():
            kinds[kind] = kinds[kind].merged(found) if kind in kinds else found
        held = sum(1 for entry in table.entries.values() if entry.get("source") == "measured")
        sources.append(f"{len(measured)} of its {held} measured entries")
        if any(p is not None for p in predictions):
            held_out.append(
                f"{CV_FOLDS}-fold cross-validation of a cost model fitted to the measured entries"
            )
    return Evidence(kinds, tuple(sources), tuple(held_out))


def measured_signatures(table: LatencyTable, also: Iterable[OpSignature] = ()) -> list[OpSignature]:
    """The table's measured entries as signatures: the operators of its spaces, of the zoo
    networks at its input size and of `also` whose entry is ``measured`` (an entry key is not
    parsed back into a signature, so an entry none of these produce is left out)."""
    from nas.search_spaces.space import load_space
    from nas.search_spaces.zoo import zoo_at

    shape = (3, *table.input_hw)
    found: dict[str, OpSignature] = {sig.key: sig for sig in also}
    for name in _space_names(table):
        try:
            sigs = load_space(name).signatures(shape, table.num_classes)
        except InputError:
            continue  # a space file that is gone: its entries stay unmatched
        found.update((sig.key, sig) for sig in sigs)
    for arch in zoo_at(shape).values():
        found.update((sig.key, sig) for sig in arch_signatures(arch, shape, table.num_classes))
    return [
        found[key]
        for key in sorted(found)
        if table.entries.get(key, {}).get("source") == "measured"
    ]


def _space_names(table: LatencyTable) -> list[str]:
    meta = table.metadata
    return list(dict.fromkeys([*meta.space_names, *(meta.spaces or ())]))


def _cross_validated(table: LatencyTable, sigs: list[OpSignature]) -> list[float | None]:
    """Each measured operator priced by a cost model fitted to the other folds, as `nas lut
    build` checks its own (every fifth operator in key order held out in turn); None where the
    table has no fitted model to vouch for (none at all, or an adapted one) or too few."""
    from nas.evaluators.latency.cost_model import DEFAULT_CACHE_BYTES, cross_validate

    if (
        table.cost_model is None
        or table.metadata.adapted_from is not None
        or len(sigs) < MIN_CV_SAMPLES
    ):
        return [None] * len(sigs)
    cache = float(table.cost_model.get("cache_bytes") or DEFAULT_CACHE_BYTES)
    samples = [(sig, table.entries[sig.key]["ms"]) for sig in sigs]
    folds = cross_validate(
        samples,
        [index % CV_FOLDS for index in range(len(sigs))],
        labels=[str(index) for index in range(len(sigs))],
        cache_bytes=cache,
    )
    predicted: list[float | None] = [None] * len(sigs)
    for fold in folds:
        for label, value in zip(fold.labels, fold.predicted):
            predicted[int(label)] = float(value)
    return predicted
