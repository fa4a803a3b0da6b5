"""How far to trust a table: what it is, the error it states, and per operator kind whether its
price rests on measurements of that kind at those shapes or is extrapolated.

A table is a device, a runtime, a thread count and a precision; a figure from it means nothing
without them (`identity`). It states one error (`stated_error`), which decides when two of its
prices are too close to order. And a price is only as good as what stands behind each kind of
work in it (`kind_trust`): a kind the table's data measured, at shapes within the measured
range, is measured or fitted; a kind nothing measured, or one priced at shapes beyond what was
measured, is extrapolated, however small the table's overall error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.evaluators.latency.evidence import Evidence, KindEvidence, table_evidence
from nas.evaluators.latency.metadata import TableMetadata
from nas.evaluators.latency.op_kinds import KINDS, KindUse, kind_uses
from nas.evaluators.latency.table import LatencyTable
from nas.search_spaces.signatures import OpSignature

NOT_RECORDED = "not recorded"
IDENTITY = ("device", "runtime", "threads", "precision")
"""What a table is: the four things that must match where its prices are used."""


def identity(meta: TableMetadata) -> dict[str, str]:
    """Device, runtime (with version), threads and precision, as the table records them; a
    field it does not record says so, with the table's note on it where it has one."""
    shown = {}
    for name in IDENTITY:
        value = getattr(meta, name)
        text = NOT_RECORDED if value is None else str(value)
        if name == "runtime" and value is not None and meta.runtime_version:
            text = f"{value} {meta.runtime_version}"
        note = getattr(meta, f"{name}_note", None)
        if note and not str(note).startswith(NOT_RECORDED):
            text = f"{text} ({note})"
        shown[name] = text
    return shown


def identity_line(meta: TableMetadata) -> str:
    return "; ".join(f"{name}: {value}" for name, value in identity(meta).items())


@dataclass(frozen=True)
class StatedError:
    """The one error a table states for its prices, and what it was measured on."""

    pct: float
    basis: str

    def text(self) -> str:
        return f"{self.pct:.1f}% ({self.basis})"


def stated_error(meta: TableMetadata | Mapping[str, Any] | None) -> StatedError | None:
    """The table's own error figure: its error on the whole networks timed when it was made
    (built, adapted or imported tables), else the held-out operator error its cost model's fit
    states (the shipped armv8 table); None when it states neither. `meta` may be the metadata
    as a search stored it (a mapping)."""
    if meta is None:
        return None
    if not isinstance(meta, TableMetadata):
        try:
            meta = TableMetadata.from_dict(meta)
        except TypeError:  # a record without target, input size or method says nothing here
            return None
    calibration = meta.calibration
    if calibration is not None and calibration.mape_fitted_pct is not None:
        networks = f"{calibration.networks} " if calibration.networks else ""
        return StatedError(
            float(calibration.mape_fitted_pct),
            f"its error on the {networks}whole networks timed when it was made",
        )
    fitted = meta.fit_evidence or {}
    if fitted.get("stated_error_pct") is not None:
        return StatedError(
            float(fitted["stated_error_pct"]),
            str(fitted.get("stated_error") or "held-out error of its cost model"),
        )
    return None


# ---- per operator kind ------------------------------------------------------------------------


@dataclass(frozen=True)
class KindTrust:
    """One kind of work: what stands behind it, and how the priced operators use it."""

    kind: str
    evidence: KindEvidence | None
    priced: int
    """Uses of the kind among the operators priced."""
    beyond: int
    """Of those, uses at shapes outside the measured range."""
    reasons: tuple[str, ...]
    """Which bounds they cross: side, channels, kernel, stride."""
    from_entries: bool
    """Every use is inside an operator the table measured itself, at this size."""
    networks: int = 0
    """Validated networks containing the kind (`nas lut validate`)."""
    network_mape_pct: float | None = None
    """Their mean absolute error against the time measured end to end."""

    @property
    def price(self) -> str:
        """``measured``, ``fitted``, ``partly extrapolated`` (some uses beyond the measured
        shapes), ``extrapolated`` (no measurement, or every use beyond) or ``not priced``."""
        if self.priced == 0:
            return "not priced"
        if self.evidence is None or self.beyond == self.priced:
            return "extrapolated"
        if self.beyond:
            return "partly extrapolated"
        return "measured" if self.from_entries else "fitted"

    @property
    def why(self) -> str:
        """What makes an extrapolated price one."""
        if self.evidence is None:
            return "no measurement of this kind"
        if self.beyond:
            return f"{self.beyond} of {self.priced} beyond the measured {', '.join(self.reasons)}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "price": self.price,
            "why": self.why,
            "priced": self.priced,
            "beyond_range": self.beyond,
            "beyond": list(self.reasons),
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "networks": self.networks,
            "network_mape_pct": self.network_mape_pct,
        }


@dataclass(frozen=True)
class TableTrust:
    """A table's identity, stated error and per-kind trust over a set of priced operators."""

    identity: dict[str, str]
    error: StatedError | None
    evidence: Evidence
    kinds: tuple[KindTrust, ...]
    priced: str
    """What was priced, in words (the spaces and networks the kinds were counted over)."""

    @property
    def unmeasured(self) -> list[str]:
        """Kinds priced here that nothing the table rests on measured."""
        return [k.kind for k in self.kinds if k.priced and k.evidence is None]

    @property
    def beyond_range(self) -> list[str]:
        """Kinds measured, but priced here (in some or all uses) at shapes beyond that."""
        return [k.kind for k in self.kinds if k.evidence is not None and k.beyond]

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "stated_error": (
                {"pct": self.error.pct, "basis": self.error.basis} if self.error else None
            ),
            "evidence": {
                "sources": list(self.evidence.sources),
                "held_out": list(self.evidence.held_out),
            },
            "priced": self.priced,
            "unmeasured": self.unmeasured,
            "beyond_range": self.beyond_range,
            "kinds": [kind.to_dict() for kind in self.kinds],
        }


NetworkError = tuple[Sequence[OpSignature], float]
"""A validated network's operators and its error against the measured time, in percent."""


def kind_trust(
    table: LatencyTable,
    sigs: Iterable[OpSignature],
    priced: str,
    networks: Sequence[NetworkError] = (),
    evidence: Evidence | None = None,
) -> TableTrust:
    """Per kind (every kind, in `KINDS` order), over the operators `sigs`: what measured it,
    how many uses lie beyond that, and the validated networks' error where `networks` give it."""
    sigs = list(dict.fromkeys(sigs))
    evidence = evidence or table_evidence(table, sigs)
    uses: dict[str, list[tuple[KindUse, bool]]] = {}
    for sig in sigs:
        measured = table.entries.get(sig.key, {}).get("source") == "measured"
        for use in kind_uses(sig):
            uses.setdefault(use.kind, []).append((use, measured))
    errors: dict[str, list[float]] = {}
    for net_sigs, error in networks:
        for kind in {use.kind for sig in net_sigs for use in kind_uses(sig)}:
            errors.setdefault(kind, []).append(abs(error))
    rows = []
    for kind in [*KINDS, *sorted(set(uses) - set(KINDS))]:
        found = evidence.kinds.get(kind)
        kind_used = uses.get(kind, [])
        crossed = [found.beyond(use) if found else () for use, _ in kind_used]
        kind_errors = errors.get(kind, [])
        rows.append(
            KindTrust(
                kind=kind,
                evidence=found,
                priced=len(kind_used),
                beyond=sum(1 for reasons in crossed if reasons),
                reasons=tuple(sorted({r for reasons in crossed for r in reasons})),
                from_entries=bool(kind_used) and all(measured for _, measured in kind_used),
                networks=len(kind_errors),
                network_mape_pct=(
                    round(sum(kind_errors) / len(kind_errors), 2) if kind_errors else None
                ),
            )
        )
    return TableTrust(
        identity(table.metadata), stated_error(table.metadata), evidence, tuple(rows), priced
    )


def table_trust(table: LatencyTable, space: str | None = None) -> TableTrust:
    """Per-kind trust over the operators of `space` (default: the table's own spaces, those
    that still load) and of the zoo networks, at the table's input size: what `nas lut show`
    reports. A `space` that does not load is the `InputError` that names it."""
    from nas.errors import InputError
    from nas.search_spaces.signatures import arch_signatures
    from nas.search_spaces.space import load_space
    from nas.search_spaces.zoo import zoo_at

    shape = (3, *table.input_hw)
    meta = table.metadata
    names = [space] if space else list(dict.fromkeys([*meta.space_names, *(meta.spaces or ())]))
    sigs: list[OpSignature] = []
    loaded = []
    for name in names:
        try:
            sigs += load_space(name).signatures(shape, table.num_classes)
        except InputError:
            if space:
                raise
            continue  # the table's own space file is gone: price the rest
        loaded.append(name)
    for arch in zoo_at(shape).values():
        sigs += arch_signatures(arch, shape, table.num_classes)
    spaces = f"the spaces {', '.join(loaded)} and " if loaded else ""
    what = f"operators of {spaces}the zoo networks at {shape[1]}x{shape[2]}"
    return kind_trust(table, sigs, what)
