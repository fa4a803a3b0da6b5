"""What a latency table says about itself: the typed record of its ``metadata`` object.

A table's metadata tells where its numbers came from (device, runtime, threads, date, how it was
made) and carries the figures pricing needs beyond the entries (the per-call overhead and the
cold-cache term). `nas lut build`, `adapt` and `import` write it, `scripts/build_armv8_table.py`
writes the shipped armv8 one, and pricing, validation and `nas lut` read it. All of them go
through `TableMetadata`: `from_dict` is the one reader (it checks what pricing relies on),
`to_dict` the one writer (`LatencyTable.to_json` puts it in the file, and a search stores it as
the study attribute ``latency_table``).

Tables outlive the code that wrote them, so a record is faithful to its file: a field this version
does not know is kept as it was (`others`), a field the file set to null stays null rather than
vanishing (`nulls`), and the keys come back in the file's order. A table read and written again
is the same file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from nas.errors import InputError
from nas.search_spaces.signatures import DEPLOY_CLASSES

MAX_ENTRY_MS = 60_000.0
"""Most milliseconds a table entry may say (also its spread, and the per-operator overhead).
An operator of a mobile network takes under 10 ms on a phone (the shipped tables' largest
entry is 8.7 ms); a minute allows a microcontroller and rules out 1e308, which would make every
sum infinite."""

REQUIRED = ("target", "input_size", "method")

R = TypeVar("R", bound="Record")


@dataclass(frozen=True)
class Record:
    """Typed fields read from a JSON object, written back as the same object.

    Subclasses declare their fields, every one optional (None: the file does not say), and name
    the fields that hold a nested record in `NESTED`.
    """

    others: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)
    """Fields this version does not know, kept verbatim so a rewrite does not drop them."""
    nulls: frozenset[str] = field(default=frozenset(), kw_only=True, repr=False)
    """Fields the file gave as null: written back as null, where an unset field is left out."""
    key_order: tuple[str, ...] = field(default=(), kw_only=True, repr=False, compare=False)
    """The file's order of keys, so a rewritten file diffs clean against the one read."""

    NESTED: ClassVar[Mapping[str, type[Record]]] = {}
    _BOOKKEEPING: ClassVar[frozenset[str]] = frozenset({"others", "nulls", "key_order"})

    @classmethod
    def declared(cls) -> tuple[str, ...]:
        """The typed fields, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls._BOOKKEEPING)

    @classmethod
    def create(cls: type[R], **values: Any) -> R:
        """A record as a writer states it: a field given as None is written as null ("not
        known"), where one not given is left out."""
        nulls = frozenset(name for name, value in values.items() if value is None)
        return cls(**values, nulls=nulls)

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """The record of a JSON object; a nested field that is not an object stays in `others`."""
        known = set(cls.declared())
        values: dict[str, Any] = {}
        others: dict[str, Any] = {}
        for name, value in data.items():
            nested = cls.NESTED.get(name)
            if name not in known or (
                nested is not None and not isinstance(value, (dict, type(None)))
            ):
                others[name] = value
            elif nested is not None and value is not None:
                values[name] = nested.from_dict(value)
            else:
                values[name] = _frozen(value)
        nulls = frozenset(name for name, value in data.items() if value is None and name in known)
        return cls(**values, others=others, nulls=nulls, key_order=tuple(data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the file's keys in its order, then any set since, then unknown ones."""
        names = dict.fromkeys([*self.key_order, *self.declared(), *self.others])
        result: dict[str, Any] = {}
        for name in names:
            if name in self.others:
                result[name] = self.others[name]
                continue
            value = getattr(self, name, None)
            if value is None and name not in self.nulls:
                continue
            result[name] = value.to_dict() if isinstance(value, Record) else _thawed(value)
        return result

    def replace(self: R, **changes: Any) -> R:
        """A copy with `changes`; a field changed to None is then left out, like one never set."""
        nulls = self.nulls - {name for name, value in changes.items() if value is None}
        return dataclasses.replace(self, **changes, nulls=nulls)

    def overlay(self: R, other: R) -> R:
        """This record with every field `other` sets (or nulls) taken from `other`; the keys
        keep this record's order."""
        changes = {
            name: getattr(other, name)
            for name in other.declared()
            if getattr(other, name) is not None or name in other.nulls
        }
        nulls = (self.nulls - set(changes)) | other.nulls
        return dataclasses.replace(
            self, **changes, others={**self.others, **other.others}, nulls=nulls
        )

    def with_defaults(self: R, other: R) -> R:
        """This record with the fields it does not set (nor null) taken from `other`."""
        return dataclasses.replace(other.overlay(self), key_order=self.key_order)

    def is_unknown(self, name: str) -> bool:
        """Whether the record says outright that it does not know `name` (a null in the file)."""
        return getattr(self, name) is None and name in self.nulls


def _frozen(value: Any) -> Any:
    """A JSON list as a tuple, so a frozen record cannot be changed through one of its fields."""
    return tuple(_frozen(item) for item in value) if isinstance(value, list) else value


def _thawed(value: Any) -> Any:
    return [_thawed(item) for item in value] if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Calibration(Record):
    """Whole networks timed end to end, and the terms fitted on them (`calibrate.fit_cold_term`)."""

    networks: int | None = None
    fitted: str | None = None
    """Which terms were fitted, and how."""
    mape_without_pct: float | None = None
    """The table's error on these networks before the fit."""
    mape_fitted_pct: float | None = None
    median_network_ms: float | None = None
    median_feature_map_mb: float | None = None
    effective_gb_per_s: float | None = None
    """1 / cold_ms_per_mb: the memory bandwidth the cold term amounts to (null when it is 0)."""
    extra_overhead_ms: float | None = None
    """Per-call overhead fitted above the probe's (`nas lut import`)."""
    seed: int | None = None
    space: str | None = None
    rounds: int | None = None
    date: str | None = None
    seconds: float | None = None


@dataclass(frozen=True)
class AdaptedFrom(Record):
    """The table `nas lut adapt` rescaled, as it was when adapted."""

    target: str | None = None
    path: str | None = None
    device: str | None = None
    runtime: str | None = None
    threads: int | None = None
    date: str | None = None


@dataclass(frozen=True)
class Adaptation(Record):
    """How far `nas lut adapt` got, and, once complete, what its speed fit found."""

    status: str | None = None
    """"measuring" while operators and networks are still being timed, then "complete"."""
    seed: int | None = None
    rounds: int | None = None
    measurement_seconds: float | None = None
    operator_seconds: float | None = None
    networks: tuple[Mapping[str, Any], ...] | None = None
    """The networks timed here: {"arch": arch string, "ms": fastest time}."""
    operators: int | None = None
    variants: int | None = None
    speed_ratio_median: float | None = None
    speed_ratio_p10_p90: tuple[float, float] | None = None
    overall_factor: float | None = None
    ridge: str | None = None
    """The chosen ridge weight's name, a key of `cv_operator_mape_pct_by_ridge`."""
    cv_operator_mape_pct_by_ridge: Mapping[str, float] | None = None
    term_factors: Mapping[str, float] | None = None
    sampled_operator_mape_pct: float | None = None


@dataclass(frozen=True)
class BundleRecord(Record):
    """The bundle (`nas lut bundle`) a phone timed, which `nas lut import` made the table from."""

    folder: str | None = None
    format: str | None = None
    created: str | None = None
    runs: int | None = None
    timed: str | None = None
    last_run: str | None = None


@dataclass(frozen=True)
class TableMetadata(Record):
    """Where a table's numbers come from, and the terms that price a network beyond its entries."""

    target: str
    input_size: int | tuple[int, int, int]
    """The deployment input the entries were measured at: a side, or (channels, height, width)."""
    method: str
    """How the entries were made, in words."""
    device: str | None = None
    cpu: str | None = None
    cpu_model: str | None = None
    """The CPU's name as this machine reports it: a table is validated only where it matches."""
    cores: int | None = None
    machine: str | None = None
    system: str | None = None
    l2_cache_bytes: int | None = None
    serial: str | None = None
    device_properties: Mapping[str, str] | None = None
    runtime: str | None = None
    runtime_note: str | None = None
    runtime_version: str | None = None
    torch_version: str | None = None
    benchmark_tool: str | None = None
    benchmark_tool_sha256: str | None = None
    threads: int | None = None
    threads_note: str | None = None
    precision: str | None = None
    precision_note: str | None = None
    num_classes: int | None = None
    space: str | None = None
    """The space (or comma-separated spaces) whose operators the entries cover."""
    spaces: tuple[str, ...] | None = None
    clock: str | None = None
    sources: tuple[str, ...] | None = None
    date: str | None = None
    build_seconds: float | None = None
    per_op_overhead_ms: float | None = None
    """What one isolated call of the runtime costs; a network pays it once, not per operator."""
    per_op_overhead_probe_ms: float | None = None
    """The overhead as the probe timed it, where `per_op_overhead_ms` adds a fitted part."""
    cold_ms_per_mb: float | None = None
    """Milliseconds per megabyte of feature maps that come from memory inside a network."""
    calibration: Calibration | None = None
    adapted_from: AdaptedFrom | None = None
    adaptation: Adaptation | None = None
    bundle: BundleRecord | None = None
    cv_mape: Mapping[str, Any] | None = None
    """Held-out errors of the cost model a table was made from (the shipped armv8 table)."""
    fit_evidence: Mapping[str, Any] | None = None
    """What a cost model fitted to data outside the entries was fitted to, per operator kind
    (`nas.evaluators.latency.evidence.fit_evidence`)."""
    entry_counts: Mapping[str, int] | None = None
    versions: Mapping[str, str] | None = None

    NESTED: ClassVar[Mapping[str, type[Record]]] = {
        "calibration": Calibration,
        "adapted_from": AdaptedFrom,
        "adaptation": Adaptation,
        "bundle": BundleRecord,
    }

    @classmethod
    def read(cls, data: Any, where: str = "latency table", hint: str = "") -> TableMetadata:
        """The metadata of a table file, refused with an `InputError` naming the field when
        pricing could not trust it."""
        hint = hint or "rebuild it with 'nas lut build' or restore the file"
        if not isinstance(data, dict):
            raise InputError(f"{where}: 'metadata' must be an object: {hint}")
        for name in REQUIRED:
            if name not in data:
                raise InputError(f"{where}: metadata lacks '{name}': {hint}")
        if not _is_input_size(data["input_size"]):
            raise InputError(
                f"{where}: metadata 'input_size' must be a positive integer or "
                f"[channels, height, width]: {hint}"
            )
        for name in ("per_op_overhead_ms", "cold_ms_per_mb"):
            value = data.get(name, 0.0)
            if not is_number(value) or not 0 <= value <= MAX_ENTRY_MS:
                raise InputError(
                    f"{where}: metadata {name!r} is {value!r}, not a number from 0 to "
                    f"{MAX_ENTRY_MS:g}: {hint}"
                )
        return cls.from_dict(data)

    # ---- what readers ask of it ---------------------------------------------------------------

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) the table was built at."""
        size = self.input_size
        return (size, size) if isinstance(size, int) else (size[1], size[2])

    @property
    def classes(self) -> int:
        """Classes of the classifier the entries priced (older tables: the deployment default)."""
        return int(self.num_classes or DEPLOY_CLASSES)

    @property
    def overhead_ms(self) -> float:
        return float(self.per_op_overhead_ms or 0.0)

    @property
    def probe_overhead_ms(self) -> float:
        """The probe's own overhead figure, which a refit of the fitted part starts from."""
        if self.per_op_overhead_probe_ms is not None:
            return float(self.per_op_overhead_probe_ms)
        return self.overhead_ms

    @property
    def cold_ms(self) -> float:
        """`cold_ms_per_mb`, 0 for a table without the term."""
        return float(self.cold_ms_per_mb or 0.0)

    @property
    def first_space(self) -> str | None:
        """The space the table was first built for (a table may cover several)."""
        return str(self.space).split(",")[0] if self.space is not None else None

    @property
    def space_names(self) -> list[str]:
        return [name for name in str(self.space or "").split(",") if name]


def _is_input_size(value: Any) -> bool:
    if isinstance(value, list) and len(value) == 3:
        return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def is_number(value: Any) -> bool:
    """A finite JSON number (booleans are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
