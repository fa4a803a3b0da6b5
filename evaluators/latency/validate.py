"""`nas lut validate`: how far a table's sums can be trusted, against whole networks on this machine.

Random architectures of the space (and the zoo networks) are built end to end, exported and timed
with the table's own backend, threads and clock (`networks.time_networks`), then compared
with `LatencyTable.predict`. The default seed differs from the one `nas lut build` calibrates
with, so the networks that judge a table are never the ones that tuned it.

Before the networks, a sample of the table's own measured operators is timed again
(`check_operator_speed`). Machines sold under one CPU name, or one virtual machine from hour to
hour, can run the same operator at very different speeds; when they do, the sums miss for a
reason that has nothing to do with how operators compose, and the report says so instead of
leaving the reader to guess.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from nas.errors import InputError
from nas.evaluators.latency.bundle import PHONE_FORMATS
from nas.evaluators.latency.networks import NETWORK_ROUNDS, sample_archs, time_networks
from nas.evaluators.latency.table import LatencyTable
from nas.evaluators.latency.timing import (
    BACKENDS,
    Backend,
    get_backend,
    machine_info,
    measure,
    op_input_shape,
)
from nas.evaluators.latency.trust import TableTrust, kind_trust
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_op
from nas.search_spaces.signatures import arch_signatures
from nas.search_spaces.space import SearchSpace
from nas.search_spaces.zoo import ZOO

PHONE_RUNTIMES = {name: fmt.runtime for name, fmt in PHONE_FORMATS.items()}

WITHIN = 10.0
"""Percent: the tolerance of the share-within figure."""

SPEED_TOLERANCE = 0.10
"""Operators re-timed within this fraction of their entries count as the same machine speed."""


@dataclass(frozen=True)
class SpeedCheck:
    """Operators of the table timed again here, as the build timed them."""

    ratio: float
    """Median of re-timed / recorded milliseconds: 1.0 when this machine runs them as fast."""
    low: float
    """10th percentile of the per-operator ratios."""
    high: float
    """90th percentile of the per-operator ratios."""
    n: int

    @property
    def changed(self) -> bool:
        return abs(self.ratio - 1.0) > SPEED_TOLERANCE

    def describe(self) -> str:
        return (
            f"{self.n} of the table's operators timed again here run at {self.ratio:.2f}x "
            f"their recorded time (10-90%: {self.low:.2f}-{self.high:.2f})"
        )


@dataclass
class Row:
    name: str
    group: str  # "random" or "zoo"
    arch: str
    predicted_ms: float | None
    measured_ms: float | None = None
    spread_ms: float | None = None
    n_modelled: int = 0
    sum_ms: float | None = None
    """The entries' plain sum, without the overhead and cold-cache terms: what they add."""
    note: str = ""

    @property
    def error_pct(self) -> float | None:
        if self.predicted_ms is None or self.measured_ms is None:
            return None
        return (self.predicted_ms - self.measured_ms) / self.measured_ms * 100


@dataclass
class Metrics:
    n: int
    mape_pct: float
    within_pct: float
    kendall_tau: float
    max_abs_error_pct: float

    @classmethod
    def of(cls, rows: list[Row]) -> Metrics | None:
        rows = [row for row in rows if row.error_pct is not None]
        if not rows:
            return None
        errors = np.abs([row.error_pct for row in rows])
        tau = (
            kendalltau([r.predicted_ms for r in rows], [r.measured_ms for r in rows]).statistic
            if len(rows) > 1
            else float("nan")
        )
        return cls(
            n=len(rows),
            mape_pct=float(errors.mean()),
            within_pct=float((errors <= WITHIN).mean() * 100),
            kendall_tau=float(tau),
            max_abs_error_pct=float(errors.max()),
        )


@dataclass
class ValidationReport:
    target: str
    table_path: str
    rows: list[Row]
    settings: dict[str, Any] = field(default_factory=dict)
    speed: SpeedCheck | None = None
    trust: TableTrust | None = None
    """The table's identity, stated error and per-kind trust over the networks judged."""

    def metrics(self, group: str) -> Metrics | None:
        return Metrics.of([row for row in self.rows if row.group == group])

    def plain_sum_metrics(self, group: str) -> Metrics | None:
        """The same figures for the entries' plain sum, to show what the context terms buy."""
        return Metrics.of(
            [replace(row, predicted_ms=row.sum_ms) for row in self.rows if row.group == group]
        )

    def speed_scaled_metrics(self, group: str) -> Metrics | None:
        """The table's figures after scaling by the operators' measured speed ratio.

        Close to the plain figures when the machine runs the table's operators at their
        recorded speed; far better than them when the table is merely slower or faster here,
        which `nas lut adapt` corrects in a minute; no better when the table is wrongly shaped
        for this machine, which only a fuller adaptation or a rebuild corrects.
        """
        if self.speed is None:
            return None
        ratio = self.speed.ratio
        return Metrics.of(
            [
                replace(row, predicted_ms=row.predicted_ms * ratio)
                for row in self.rows
                if row.group == group and row.predicted_ms is not None
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "table": self.table_path,
            **self.settings,
            "operator_speed": asdict(self.speed) if self.speed else None,
            "metrics": {
                group: (asdict(m) if (m := self.metrics(group)) else None)
                for group in ("random", "zoo")
            },
            "plain_sum_metrics": {
                group: (asdict(m) if (m := self.plain_sum_metrics(group)) else None)
                for group in ("random", "zoo")
            },
            "speed_scaled_metrics": {
                group: (asdict(m) if (m := self.speed_scaled_metrics(group)) else None)
                for group in ("random", "zoo")
            },
            "rows": [{**asdict(row), "error_pct": row.error_pct} for row in self.rows],
            "trust": self.trust.to_dict() if self.trust else None,
        }

    def with_trust(self, table: LatencyTable) -> ValidationReport:
        """This report with the per-kind trust over its networks' operators, each kind with
        the error of the judged networks that contain it (`trust.kind_trust`)."""
        shape = tuple(self.settings["input"])
        classes = int(self.settings["num_classes"])
        networks = [
            (arch_signatures(Arch.from_string(row.arch), shape, classes), row.error_pct)
            for row in self.rows
            if row.predicted_ms is not None
        ]
        errors = [(sigs, error) for sigs, error in networks if error is not None]
        what = f"operators of the {len(networks)} networks judged at {shape[1]}x{shape[2]}"
        self.trust = kind_trust(table, (sig for sigs, _ in networks for sig in sigs), what, errors)
        return self


def priced_row(
    table: LatencyTable,
    name: str,
    group: str,
    arch: Arch,
    shape: tuple[int, int, int],
    num_classes: int,
) -> Row:
    """A network's row with the table's prediction, or the reason it has none."""
    try:
        estimate = table.predict(arch, shape, num_classes)
    except InputError as error:
        return Row(name, group, arch.to_string(), None, note=str(error))
    return Row(
        name,
        group,
        arch.to_string(),
        estimate.total_ms,
        n_modelled=estimate.n_modelled,
        sum_ms=sum(op.ms for op in estimate.ops),
    )


def check_same_machine(table: LatencyTable) -> None:
    """A table can only be validated where it was measured: same CPU, an installed runtime."""
    meta = table.metadata
    here = machine_info()["cpu_model"]
    if meta.runtime not in BACKENDS or meta.cpu_model != here:
        made = meta.cpu_model or meta.device or "another device"
        raise InputError(
            f"{table.describe()} was made for {made}, not this machine ({here}): "
            f"validate it on that device, or build a table here with "
            f"'nas lut build --target NAME'"
        )


def check_operator_speed(
    table: LatencyTable, space: SearchSpace, backend: Backend, count: int = 24, seed: int = 0
) -> SpeedCheck | None:
    """Time `count` of the table's measured operators again, with the build's settings.

    Operators are drawn from the space's signatures that the table measured (not modelled), with
    a seeded generator, so a rerun checks the same ones. None when the table measured none of
    them (a table of published or modelled values cannot be re-timed here).
    """
    shape = (3, *table.input_hw)
    num_classes = table.num_classes
    measured = [
        sig
        for sig in space.signatures(shape, num_classes)
        if table.entries.get(sig.key, {}).get("source") == "measured"
    ]
    if not measured:
        return None
    chosen = random.Random(seed).sample(measured, min(count, len(measured)))
    ratios = []
    for sig in chosen:
        run = backend.prepare(build_op(sig).eval(), op_input_shape(sig))
        ratios.append(measure(run, backend.threads).ms / table.entries[sig.key]["ms"])
    low, high = np.percentile(ratios, [10, 90])
    return SpeedCheck(
        ratio=float(statistics.median(ratios)), low=float(low), high=float(high), n=len(ratios)
    )


# Long: pricing, the speed check and the timing fill one set of rows and one settings record.
def validate_table(
    table: LatencyTable,
    space: SearchSpace,
    n_archs: int = 50,
    seed: int = 0,
    include_zoo: bool = True,
    rounds: int = NETWORK_ROUNDS,
    repeats: int = 20,
    max_seconds: float = 3.0,
    show_progress: bool = True,
    speed_check: int = 24,
    input_size: int | None = None,
) -> ValidationReport:
    """Measure sampled and zoo networks end to end and pair each with the table's prediction.

    `speed_check` operators of the table are timed again first (0: skip). `input_size` judges
    the table at another input side than it was built at, where its cost model prices what
    its entries do not hold.
    """
    check_same_machine(table)
    meta = table.metadata
    threads = int(meta.threads or 1)
    backend = get_backend(str(meta.runtime), threads)
    shape = (3, input_size, input_size) if input_size else (3, *table.input_hw)
    num_classes = table.num_classes
    candidates = [
        (f"random_{i:03d}", "random", arch)
        for i, arch in enumerate(sample_archs(space, n_archs, seed))
    ]
    if include_zoo:
        candidates += [(name, "zoo", factory()) for name, factory in ZOO.items()]
    rows = [
        priced_row(table, name, group, arch, shape, num_classes) for name, group, arch in candidates
    ]
    torch.manual_seed(seed)
    started = time.perf_counter()
    speed = (
        check_operator_speed(table, space, backend, count=speed_check, seed=seed)
        if speed_check
        else None
    )
    timed = [row for row in rows if row.predicted_ms is not None]
    timings = time_networks(
        [Arch.from_string(row.arch) for row in timed],
        backend,
        shape,
        num_classes,
        rounds=rounds,
        repeats=repeats,
        max_seconds=max_seconds,
        description=f"validate {table.target}",
        show_progress=show_progress,
    )
    for row, timing in zip(timed, timings):
        row.measured_ms = timing.ms
        row.spread_ms = timing.spread_ms
    report = ValidationReport(
        target=table.target,
        table_path=str(table.path),
        rows=rows,
        speed=speed,
        settings={
            "space": space.name,
            "seed": seed,
            "n_archs": n_archs,
            "rounds": rounds,
            "repeats": repeats,
            "runtime": meta.runtime,
            "runtime_version": backend.version,
            "threads": threads,
            "clock": meta.clock,
            "input": list(shape),
            "num_classes": num_classes,
            "machine": machine_info(),
            "date": date.today().isoformat(),
            "seconds": round(time.perf_counter() - started, 1),
            "per_op_overhead_ms": table.per_op_overhead_ms,
            "cold_ms_per_mb": table.cold_ms_per_mb,
        },
    )
    return report.with_trust(table)


def validate_with_timings(
    table: LatencyTable, folder: Path, input_size: int | None = None
) -> ValidationReport:
    """Judge `table` on the networks a bundle timed on its device (`nas lut bundle`).

    A phone cannot run the timing loop here, so its whole-network timings come from the
    bundle's validation networks (another seed than its calibration networks, and the zoo),
    read back as `nas lut import` reads the operators. The bundle must be one the table can
    be judged by (`check_bundle_fits`); `input_size`, when given, must be the bundle's.
    """
    from nas.evaluators.latency.device_import import read_bundle

    bundle = read_bundle(folder)
    manifest = bundle.manifest
    check_bundle_fits(table, folder, manifest, bundle.device, input_size)
    judged = [m for m in manifest["models"] if m["role"] == "validation"]
    if not judged:
        raise InputError(
            f"{folder} timed no networks to judge a table with (--validate 0, --no-zoo)"
        )
    shape = (3, int(manifest["input_size"]), int(manifest["input_size"]))
    num_classes = int(manifest["num_classes"])
    rows = []
    for model in judged:
        arch = Arch.from_string(model["arch"])
        row = priced_row(table, model["name"], model["group"], arch, shape, num_classes)
        row.measured_ms = bundle.fastest_ms(model["id"])
        row.spread_ms = bundle.spread_ms(model["id"])
        rows.append(row)
    device = bundle.device
    report = ValidationReport(
        target=table.target,
        table_path=str(table.path),
        rows=rows,
        settings={
            "space": manifest["space"],
            "seed": manifest["validation_seed"],
            "n_archs": sum(m["group"] == "random" for m in judged),
            "rounds": manifest["network_rounds"],
            "repeats": manifest["network_loops"],
            "runtime": PHONE_RUNTIMES.get(manifest["format"], manifest["format"]),
            "runtime_version": device.get("runtime_version"),
            "threads": manifest["threads"],
            "clock": table.metadata.clock,
            "input": list(shape),
            "num_classes": num_classes,
            "machine": {k: v for k, v in device.items() if k.startswith("ro.") or k == "serial"},
            "timings_from": str(folder),
            "date": date.today().isoformat(),
            "per_op_overhead_ms": table.per_op_overhead_ms,
            "cold_ms_per_mb": table.cold_ms_per_mb,
        },
    )
    return report.with_trust(table)


def check_bundle_fits(
    table: LatencyTable,
    folder: Path,
    manifest: dict[str, Any],
    device: dict[str, Any],
    input_size: int | None = None,
) -> None:
    """An `InputError` when the bundle's networks cannot judge `table`.

    Networks timed at another input, or of a space the table does not cover, are priced from
    entries the table does not have; networks timed on another device than the one a table
    was measured on say nothing about that table. A table that names no device (the shipped
    cost-model tables) may be judged by any device's timings: that is how its error on a
    phone is found.
    """
    side = int(manifest["input_size"])
    if input_size is not None and input_size != side:
        raise InputError(
            f"--input-size {input_size} does not apply with --timings: {folder} timed its "
            f"networks at {side}x{side}; drop --input-size, or bundle again with "
            f"--input-size {input_size}"
        )
    built = table.metadata.input_hw
    if built != (side, side):
        raise InputError(
            f"{folder} timed its networks at {side}x{side}, but table {table.target!r} was "
            f"built at {built[0]}x{built[1]}: judge it with a bundle made with --input-size "
            f"{built[0]}"
        )
    spaces = table.metadata.space_names
    if spaces and manifest["space"] not in spaces:
        raise InputError(
            f"{folder} timed networks of space {manifest['space']!r}, which table "
            f"{table.target!r} does not cover (it covers {', '.join(spaces)}): bundle one of "
            f"those spaces"
        )
    mine, theirs = (
        _device_identity(table.metadata.serial, table.metadata.device_properties),
        (_device_identity(device.get("serial"), device)),
    )
    if mine and theirs and mine != theirs:
        raise InputError(
            f"{folder} was timed on another device ({theirs}) than table {table.target!r} was "
            f"measured on ({mine}): judge a table with timings from its own device"
        )


def _device_identity(serial: Any, properties: Any) -> str | None:
    """A device as a bundle records it: its serial, else its maker and model; None if unknown."""
    if serial:
        return f"serial {serial}"
    properties = properties or {}
    model = " ".join(
        str(properties[key])
        for key in ("ro.product.manufacturer", "ro.product.model")
        if properties.get(key)
    )
    return model or None


def write_report(report: ValidationReport, out_dir: Path) -> tuple[Path, Path]:
    """Save the report as JSON and a predicted-against-measured scatter plot as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"validate_{report.target}.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=1) + "\n")
    png_path = out_dir / f"validate_{report.target}.png"
    figure, axis = plt.subplots(figsize=(5.5, 5.5), dpi=120)
    values = []
    for group, marker, colour in (("random", "o", "tab:blue"), ("zoo", "s", "tab:orange")):
        rows = [r for r in report.rows if r.group == group and r.error_pct is not None]
        if not rows:
            continue
        measured = [r.measured_ms for r in rows]
        predicted = [r.predicted_ms for r in rows]
        values += measured + predicted
        metrics = report.metrics(group)
        axis.scatter(
            measured,
            predicted,
            marker=marker,
            s=18,
            color=colour,
            label=f"{group} (n={metrics.n}, MAPE {metrics.mape_pct:.1f}%, "
            f"tau {metrics.kendall_tau:.2f})",
        )
    if values:
        low, high = min(values) * 0.9, max(values) * 1.1
        line = np.array([low, high])
        axis.plot(line, line, color="black", linewidth=1, label="y = x")
        axis.fill_between(
            line,
            line * (1 - WITHIN / 100),
            line * (1 + WITHIN / 100),
            color="grey",
            alpha=0.15,
            label=f"±{WITHIN:g}%",
        )
        axis.set_xlim(low, high)
        axis.set_ylim(low, high)
    axis.set_xlabel("measured end to end (ms)")
    axis.set_ylabel("predicted by the table (ms)")
    axis.set_title(
        f"{report.target}: {report.settings.get('runtime')}, "
        f"{report.settings.get('threads')} thread(s), "
        f"{'x'.join(map(str, report.settings.get('input', [])))}",
        fontsize=10,
    )
    axis.legend(fontsize=8, loc="upper left")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(png_path)
    plt.close(figure)
    return json_path, png_path
