"""Latency lookup tables: a target device's time per operator signature, and the sum of them.

A table is a JSON file (nothing is unpickled, so a table from anywhere is safe to load)::

    {"metadata": {"target": "x86_64", "input_size": 224, "threads": 1, "method": "...", ...},
     "entries": {"mbconv:56x56x24>40:e3:k5:s2:g1:se0.25:hs": {"ms": 0.41, "std": 0.02,
                                                              "source": "measured"}, ...},
     "cost_model": {...}}                                   # optional

Entries are what one operator costs alone, run again and again with its weights and feature maps
warm in cache. A network is not quite the sum of its operators run that way, for two measured
reasons that the metadata carries:

- each isolated run pays the runtime's per-call overhead, which a network pays once:
  ``per_op_overhead_ms``, timed on a graph that computes next to nothing;
- inside a network each operator's feature maps were last touched a whole network ago and come
  from memory rather than cache: ``cold_ms_per_mb`` per megabyte of feature maps an operator
  reads and writes (`feature_map_bytes`), fitted by `nas lut build` on networks it times end to
  end (never the ones `nas lut validate` judges it on).

So a network of operators i = 1..n is priced::

    sum(ms_i) - (n - 1) * per_op_overhead_ms + cold_ms_per_mb * sum(feature_map_bytes_i) / 1e6

A signature the table lacks is priced by the optional cost model (entries and estimate then say
``model``); without one it is an error that names the signature and the command that fills it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from nas.errors import InputError
from nas.evaluators.latency.metadata import MAX_ENTRY_MS, TableMetadata, is_number
from nas.files import write_atomically
from nas.search_spaces.arch import Arch
from nas.search_spaces.ops import (
    Branches,
    ChannelAggregate,
    ChannelShuffle,
    Conv,
    GlobalPool,
    Layer,
    Linear,
    Pool,
    ShortcutAdd,
    SqueezeExcite,
    ZeroPad,
    op_layers,
)
from nas.search_spaces.signatures import (
    DEPLOY_CLASSES,
    DEPLOY_INPUT,
    InputShape,
    OpSignature,
    arch_signatures,
)

FORMAT_VERSION = 1
SOURCES = ("measured", "model")


@dataclass(frozen=True)
class OpLatency:
    """One operator's share of an estimate."""

    key: str
    ms: float
    source: str


@dataclass(frozen=True)
class LatencyEstimate:
    """A network's predicted latency and where each part of it came from."""

    total_ms: float
    ops: tuple[OpLatency, ...]
    n_measured: int
    n_modelled: int
    target: str

    def to_dict(self, with_ops: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = {
            "latency_ms": round(self.total_ms, 4),
            "target": self.target,
            "n_measured": self.n_measured,
            "n_modelled": self.n_modelled,
        }
        if with_ops:
            result["ops"] = [
                {"key": op.key, "ms": round(op.ms, 4), "source": op.source} for op in self.ops
            ]
        return result


@dataclass(frozen=True)
class _Network:
    """What pricing needs of an architecture, computed once: its operators and their keys."""

    sigs: tuple[OpSignature, ...]
    keys: tuple[str, ...]
    feature_map_bytes: int


@lru_cache(maxsize=4096)
def _network(arch: Arch, input_shape: InputShape, num_classes: int) -> _Network:
    """The search prices the same architecture several times (budget check, report, export)."""
    return _describe(tuple(arch_signatures(arch, input_shape, num_classes)))


def _describe(sigs: tuple[OpSignature, ...]) -> _Network:
    return _Network(
        sigs, tuple(_key(sig) for sig in sigs), sum(feature_map_bytes(sig) for sig in sigs)
    )


@lru_cache(maxsize=65536)
def _key(sig: OpSignature) -> str:
    """Formatting a key costs more than a lookup; a space has only a few thousand of them."""
    return sig.key


@lru_cache(maxsize=65536)
def feature_map_bytes(sig: OpSignature) -> int:
    """Float32 bytes of the feature maps one operator reads and writes, layer by layer.

    Each convolution reads its input and writes its output; a channel shuffle and an even
    kernel's zero padding copy a tensor; squeeze-and-excitation pools its input and rewrites it
    gated; a shortcut reads two tensors and writes one. Weights are not counted: inside a network
    they did not explain the difference from isolated runs (BENCHMARKS.md, x86_64).
    """
    return 4 * sum(_feature_map_values(layer) for layer in op_layers(sig))


def _feature_map_values(layer: Layer) -> int:
    if isinstance(layer, (Conv, ZeroPad)):
        return layer.inputs + layer.outputs
    if isinstance(layer, ChannelShuffle):
        return 2 * layer.elements
    if isinstance(layer, SqueezeExcite):
        return 3 * layer.elements  # its 1x1 convolutions see the pooled vector, not maps
    if isinstance(layer, ShortcutAdd):
        return 3 * layer.elements
    if isinstance(layer, GlobalPool):
        return layer.inputs + layer.channels
    if isinstance(layer, Linear):
        return layer.in_c + layer.out_c
    if isinstance(layer, (Pool, ChannelAggregate)):
        return layer.inputs + layer.outputs
    if isinstance(layer, Branches):
        # The paths' own maps, plus the copies a split, a concatenation and a slice make
        # (read and written once each); an ``add`` merge, and each sum of a hierarchical one,
        # reads two maps and writes one; a merge's batch norm reads and writes the output.
        values = sum(_feature_map_values(inner) for path in layer.paths for inner in path)
        values += 2 * layer.inputs if layer.split else 0
        values += 2 * layer.outputs if layer.bn else 0
        if layer.merge == "add":
            return values + 3 * layer.outputs
        values += 3 * layer.fused
        return values + 2 * layer.concatenated + (2 * layer.outputs if layer.sliced else 0)
    raise TypeError(f"no feature-map count for layer {layer!r}")


class LatencyTable:
    """A target's per-operator latencies plus how they were obtained (`metadata`).

    The metadata is an immutable record: code that learns something about the table (a build's
    date, a fitted term) replaces it, ``table.metadata = table.metadata.replace(...)``.
    """

    def __init__(
        self,
        metadata: TableMetadata | Mapping[str, Any],
        entries: dict[str, dict[str, Any]] | None = None,
        cost_model: dict[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
        if not isinstance(metadata, TableMetadata):
            metadata = TableMetadata.read(dict(metadata))
        self.metadata: TableMetadata = metadata
        self.entries: dict[str, dict[str, Any]] = dict(entries or {})
        self.cost_model = cost_model
        self.path = path
        self._model: Any = None

    # ---- identity ---------------------------------------------------------------------------

    @property
    def target(self) -> str:
        return str(self.metadata.target)

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) the table was built at; metadata holds a side or [C, H, W]."""
        return self.metadata.input_hw

    @property
    def input_size(self) -> int:
        return self.input_hw[0]

    @property
    def num_classes(self) -> int:
        return self.metadata.classes

    @property
    def per_op_overhead_ms(self) -> float:
        return self.metadata.overhead_ms

    @property
    def cold_ms_per_mb(self) -> float:
        return self.metadata.cold_ms

    def describe(self) -> str:
        """Where the table came from, for error messages."""
        return f"latency table {self.target!r}" + (f" ({self.path})" if self.path else "")

    # ---- pricing ----------------------------------------------------------------------------

    def predict(
        self, arch: Arch, input_shape: InputShape = DEPLOY_INPUT, num_classes: int = DEPLOY_CLASSES
    ) -> LatencyEstimate:
        """Latency of `arch` on this target at `input_shape` (channels, height, width).

        Any input size is priced: operators the table measured at that size from their entries
        (a key holds the operator's input shape, so entries of another size never match), the
        rest by the table's cost model, and counted as modelled. Only a table without a cost
        model that lacks some of the operators refuses, naming the build that would fill it.
        """
        network = _network(arch, tuple(input_shape), num_classes)
        _, height, width = input_shape
        if (height, width) != self.input_hw and self.cost_model is None:
            absent = [key for key in network.keys if key not in self.entries]
            if absent:
                built = "x".join(map(str, self.input_hw))
                raise InputError(
                    f"{self.describe()} was built for {built} inputs and has no cost model to "
                    f"price the {len(absent)} operators it lacks at {height}x{width}: use "
                    f"--input-size {self.input_size}, or build a table at that size with "
                    f"'nas lut build --target {self.target} --input-size {height}'"
                )
        return self._price(network)

    def price(self, sigs: tuple[OpSignature, ...] | list[OpSignature]) -> LatencyEstimate:
        """Sum the entries of `sigs`, which run one after the other as one network."""
        return self._price(_describe(tuple(sigs)))

    def _price(self, network: _Network) -> LatencyEstimate:
        ops = []
        total = 0.0
        modelled = 0
        entries = self.entries
        for sig, key in zip(network.sigs, network.keys):
            entry = entries.get(key)
            if entry is not None:
                ms, source = entry["ms"], entry["source"]
            else:
                ms, source = self._model_ms(sig), "model"
            if source == "model":
                modelled += 1
            ops.append(OpLatency(key, ms, source))
            total += ms
        total -= (len(ops) - 1) * self.per_op_overhead_ms
        total += self.cold_ms_per_mb * network.feature_map_bytes / 1e6
        return LatencyEstimate(
            total_ms=total,
            ops=tuple(ops),
            n_measured=len(ops) - modelled,
            n_modelled=modelled,
            target=self.target,
        )

    def _model_ms(self, sig: OpSignature) -> float:
        if self.cost_model is None:
            space = self.metadata.space or "<space>"
            raise InputError(
                f"{self.describe()} has no entry for operator {sig.key} and no cost model to "
                f"price it: run 'nas lut build --target {self.target} --space {space}' with the "
                f"space this architecture comes from"
            )
        if self._model is None:
            from nas.evaluators.latency.cost_model import OpCostModel

            self._model = OpCostModel.from_dict(self.cost_model)
        return float(self._model.predict_ms(sig))

    def missing(self, sigs: list[OpSignature]) -> list[OpSignature]:
        """Signatures without a measured entry (what a resumed build still has to time)."""
        return [sig for sig in sigs if self.entries.get(sig.key, {}).get("source") != "measured"]

    def set_entry(self, key: str, ms: float, std: float, source: str = "measured") -> None:
        self.entries[key] = {"ms": ms, "std": std, "source": source}

    # ---- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "metadata": self.metadata.to_dict(),
            "entries": {
                key: {
                    "ms": _round(entry["ms"]),
                    "std": _round(entry["std"]),
                    "source": entry["source"],
                }
                for key, entry in sorted(self.entries.items())
            },
        }
        if self.cost_model is not None:
            data["cost_model"] = self.cost_model
        return data

    def to_json(self) -> str:
        """Compact but diffable: one line per entry, metadata indented."""
        data = self.to_dict()
        lines = [
            "{",
            f'"format": {FORMAT_VERSION},',
            f'"metadata": {json.dumps(data["metadata"], indent=1, sort_keys=True)},',
        ]
        if "cost_model" in data:
            lines.append(f'"cost_model": {json.dumps(data["cost_model"], sort_keys=True)},')
        entries = [
            f"{json.dumps(key)}: {json.dumps(value, separators=(',', ':'))}"
            for key, value in data["entries"].items()
        ]
        lines.append(
            '"entries": {' + (("\n" + ",\n".join(entries) + "\n") if entries else "") + "}"
        )
        lines.append("}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write atomically, so an interrupted build never leaves a truncated table behind."""
        self.path = write_atomically(path, self.to_json())
        return self.path

    @classmethod
    def from_dict(
        cls, data: Any, where: str = "latency table", path: Path | None = None
    ) -> LatencyTable:
        """Validate the layout; every problem is an `InputError` naming the field."""
        hint = "rebuild it with 'nas lut build' or restore the file"
        if not isinstance(data, dict):
            raise InputError(f"{where} must be a JSON object: {hint}")
        if data.get("format") != FORMAT_VERSION:
            raise InputError(
                f"{where} has format {data.get('format')!r}, this nas reads format "
                f"{FORMAT_VERSION}: {hint}"
            )
        metadata = TableMetadata.read(data.get("metadata"), where, hint)
        entries = data.get("entries")
        if not isinstance(entries, dict):
            raise InputError(f"{where}: 'entries' must be an object: {hint}")
        for key, entry in entries.items():
            if (
                not isinstance(entry, dict)
                or not is_number(entry.get("ms"))
                or not is_number(entry.get("std"))
                or entry.get("source") not in SOURCES
            ):
                raise InputError(
                    f"{where}: entry {key!r} must be {{ms: number, std: number, "
                    f"source: measured|model}}: {hint}"
                )
            for field in ("ms", "std"):
                if not 0 <= entry[field] <= MAX_ENTRY_MS:
                    raise InputError(
                        f"{where}: entry {key!r} has {field} {entry[field]!r}, outside 0 to "
                        f"{MAX_ENTRY_MS:g} ms (no operator takes negative time, or minutes): "
                        f"{hint}"
                    )
        cost_model = data.get("cost_model")
        if cost_model is not None and not isinstance(cost_model, dict):
            raise InputError(f"{where}: 'cost_model' must be an object: {hint}")
        return cls(metadata, entries, cost_model, path)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot read latency table {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(
                f"latency table {path} is not a text file: rebuild it with "
                f"'nas lut build' or restore the file"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(
                f"latency table {path} is corrupt or truncated (invalid JSON at line "
                f"{error.lineno} column {error.colno}): rebuild it with "
                f"'nas lut build' (a rerun resumes) or restore the file"
            ) from None
        return cls.from_dict(data, where=f"latency table {path}", path=path)


def _round(value: float) -> float:
    """Four significant digits: far below the run-to-run spread, and a third of the file size."""
    return float(f"{value:.4g}")


# ---- where tables live --------------------------------------------------------------------


def user_tables_dir() -> Path:
    """Tables built by the user: ``$NAS_TABLES_DIR``, else the XDG data directory."""
    if os.environ.get("NAS_TABLES_DIR"):
        return Path(os.environ["NAS_TABLES_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "nas" / "tables"


def shipped_tables() -> dict[str, Path]:
    """Target -> file of every table shipped with the package."""
    folder = resources.files("nas.evaluators.latency") / "tables"
    if not folder.is_dir():
        return {}
    return {
        Path(str(entry)).stem: Path(str(entry))
        for entry in folder.iterdir()
        if str(entry).endswith(".json")
    }


def user_tables() -> dict[str, Path]:
    folder = user_tables_dir()
    if not folder.is_dir():
        return {}
    return {path.stem: path for path in sorted(folder.glob("*.json"))}


def available_tables() -> dict[str, Path]:
    """Target -> file; a table the user built shadows a shipped one of the same name."""
    return {**shipped_tables(), **user_tables()}


def default_table_path(target: str) -> Path:
    """Where `nas lut build --target NAME` writes unless told otherwise."""
    return user_tables_dir() / f"{target}.json"


def load_table(target_or_path: str | Path) -> LatencyTable:
    """A table by target name (user tables first, then shipped ones) or by file path."""
    text = str(target_or_path)
    tables = available_tables()
    if text in tables:
        return LatencyTable.load(tables[text])
    path = Path(text).expanduser()
    if path.suffix == ".json" or os.sep in text:
        if not path.is_file():
            raise InputError(
                f"latency table file {text} does not exist: build it with "
                f"'nas lut build --target NAME --out {text}'"
            )
        return LatencyTable.load(path)
    known = ", ".join(sorted(tables)) or "none"
    raise InputError(
        f"unknown latency target {text!r} (known: {known}): build a table for "
        f"your device with 'nas lut build --target {text}' or give a table file"
    )
