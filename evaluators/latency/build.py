"""`nas lut build`: measure every operator of a search space on this machine, one at a time.

Each signature's module is built alone (random weights, eval mode), exported to ONNX and timed
in onnxruntime (or run eagerly in torch) with warm-up and repeats. The table is written
atomically every few operators, so an interrupted build loses at most those, and a rerun loads
the file and times only what is still missing: on a Raspberry Pi a full table takes hours, and
nobody should have to start it twice.

Once every operator is in, the build fits a cost model to the entries (so the table can price
operators outside the space) and times a few whole networks to calibrate what isolated
operators miss (`calibrate`); a rerun does whichever of these is still missing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from nas.errors import InputError
from nas.evaluators.latency.calibrate import CalibrationTimings, calibrate
from nas.evaluators.latency.metadata import Calibration, TableMetadata
from nas.evaluators.latency.table import LatencyTable, default_table_path
from nas.evaluators.latency.timing import (
    Backend,
    clock_name,
    get_backend,
    machine_info,
    measure,
    op_input_shape,
)
from nas.search_spaces.builder import build_op
from nas.search_spaces.signatures import DEPLOY_CLASSES, OpSignature
from nas.search_spaces.space import DEFAULT_SPACE, load_space

# Metadata that must match for a rerun to add entries to an existing table: mixing threads,
# runtimes, input sizes or machines in one table would make its sums meaningless.
_MUST_MATCH = ("runtime", "threads", "input_size", "num_classes", "precision", "cpu_model", "clock")


@dataclass(frozen=True)
class BuildOptions:
    target: str
    space: str = DEFAULT_SPACE
    input_size: int = 224
    backend: str = "onnxruntime"
    threads: int = 1
    out: Path | None = None
    repeats: int = 50
    warmup: int = 10
    min_seconds: float = 0.2
    save_every: int = 20
    num_classes: int = DEPLOY_CLASSES
    calibrate: int = 30
    """Random networks timed end to end after the operators to fit ``cold_ms_per_mb``; 0: none."""

    @property
    def path(self) -> Path:
        return Path(self.out) if self.out else default_table_path(self.target)


@dataclass
class BuildReport:
    path: Path
    total: int
    skipped: int
    measured: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    calibration: Calibration | None = None
    """The networks this run timed to fit the cold-cache term; None when it fitted none."""
    calibration_timings: CalibrationTimings | None = None
    table: LatencyTable | None = field(default=None, repr=False)


# Long: timing, the periodic saves and the resume bookkeeping share one table and one clock.
def build_table(
    options: BuildOptions,
    show_progress: bool = True,
    on_measured: Callable[[OpSignature], None] | None = None,
) -> BuildReport:
    """Measure the space's signatures that `options.path` lacks; returns what was done.

    `on_measured` is called after each new entry (tests interrupt a build through it).
    """
    if options.threads < 1:
        raise InputError(f"--threads must be at least 1, got {options.threads}")
    space = load_space(options.space)
    backend = get_backend(options.backend, options.threads)
    sigs = space.signatures((3, options.input_size, options.input_size), options.num_classes)
    table = _open_table(options, backend, space.name)
    todo = table.missing(sigs)
    # Measure in a shuffled order: load from other processes drifts over a build, and in key
    # order it would inflate one resolution's operators together, a bias no sum averages out.
    random.Random(0).shuffle(todo)
    report = BuildReport(
        path=options.path, total=len(sigs), skipped=len(sigs) - len(todo), table=table
    )
    if todo and table.metadata.per_op_overhead_ms is None:
        overhead = round(call_overhead_ms(backend, options), 5)
        table.metadata = table.metadata.replace(per_op_overhead_ms=overhead)
    started = time.perf_counter()
    previous_seconds = float(table.metadata.build_seconds or 0.0)
    torch.manual_seed(0)

    def save() -> None:
        table.metadata = table.metadata.replace(
            build_seconds=round(previous_seconds + time.perf_counter() - started, 1),
            date=date.today().isoformat(),
        )
        table.save(options.path)

    console = Console(stderr=True)
    try:
        with progress_bar(console, show_progress and bool(todo)) as progress:
            task = progress.add_task(
                f"{options.target}: {space.name} at {options.input_size}",
                total=len(sigs),
                completed=report.skipped,
            )
            for index, sig in enumerate(todo, 1):
                timing = measure_op(sig, backend, options)
                table.set_entry(sig.key, timing.ms, timing.std, "measured")
                report.measured += 1
                progress.advance(task)
                if not console.is_terminal and show_progress and index % 100 == 0:
                    console.print(_log_line(index, len(todo), started))
                if index % options.save_every == 0:
                    save()
                if on_measured is not None:
                    on_measured(sig)
        if not table.missing(sigs):
            if table.cost_model is None:
                attach_cost_model(table, sigs)
                save()
            if options.calibrate and table.metadata.cold_ms_per_mb is None:
                report.calibration, report.calibration_timings = calibrate(
                    table, space, backend, networks=options.calibrate, show_progress=show_progress
                )
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        save()
        report.seconds = time.perf_counter() - started
    return report


def attach_cost_model(table: LatencyTable, sigs: list[OpSignature], folds: int = 5) -> None:
    """Fit a per-operator cost model to the measured entries and keep it in the table.

    With it the table can price operators it never measured (another space, a zoo network,
    an odd expansion ratio), marked ``model`` in every estimate. Its error is measured the only
    honest way, on entries it was not fitted to (k-fold by signature), and recorded next to it.
    """
    from nas.evaluators.latency.cost_model import (
        DEFAULT_CACHE_BYTES,
        cross_validate,
        fit_cost_model,
        pooled_mape,
    )

    samples = [
        (sig, table.entries[sig.key]["ms"])
        for sig in sigs
        if table.entries.get(sig.key, {}).get("source") == "measured"
    ]
    if len(samples) < 4 * folds:  # too few to hold any out
        return
    cache = int(table.metadata.l2_cache_bytes or DEFAULT_CACHE_BYTES)
    groups = [index % folds for index in range(len(samples))]
    held_out = pooled_mape(cross_validate(samples, groups, cache_bytes=cache))
    model = fit_cost_model(
        samples,
        device=str(table.metadata.device or table.target),
        cache_bytes=cache,
        describe={
            f"held_out_mape_percent_{folds}_fold": round(held_out, 2),
            "fitted_to": f"the {len(samples)} measured entries",
        },
    )
    table.cost_model = model.to_dict()


def measure_op(sig: OpSignature, backend: Backend, options: BuildOptions):
    """Build, export and time one signature's module."""
    shape = op_input_shape(sig)
    run = backend.prepare(build_op(sig).eval(), shape)
    return measure(
        run,
        options.threads,
        repeats=options.repeats,
        warmup=options.warmup,
        min_seconds=options.min_seconds,
    )


def require_same_setup(
    table: LatencyTable, metadata: TableMetadata, names: tuple[str, ...], path: Path, made: str
) -> None:
    """A rerun may only add to a table timed with the same settings on the same machine."""
    for name in names:
        recorded, now = _shown(getattr(table.metadata, name)), _shown(getattr(metadata, name))
        if recorded != now:
            raise InputError(
                f"{path} was {made} with {name}={recorded!r}, this run has "
                f"{name}={now!r}: give another --out or delete the file to start over"
            )


def _shown(value: object) -> object:
    """A setting as its file writes it ([3, 224, 224], not the record's tuple)."""
    return list(value) if isinstance(value, tuple) else value


def call_overhead_ms(backend: Backend, options: BuildOptions) -> float:
    """What one call of the runtime costs when it computes next to nothing.

    Every isolated operator pays it; a network pays it once for all its operators, so
    `LatencyTable.predict` subtracts it for all but one.
    """
    run = backend.prepare(torch.nn.ReLU(), (1, 1))
    return measure(
        run,
        options.threads,
        repeats=max(options.repeats, 200),
        warmup=50,
        min_seconds=options.min_seconds,
    ).ms


def measured_here(target: str, backend: Backend, **fields: Any) -> TableMetadata:
    """The metadata of a table timed on this machine by `backend`: the machine, the runtime and
    its clock, plus `fields` (threads, input size, classes, space, method, ...)."""
    machine = machine_info()
    return TableMetadata.create(
        target=target,
        device=f"{machine['cpu_model']} ({machine['cores']} cores, {machine['machine']})",
        **machine,
        runtime=backend.name,
        runtime_version=backend.version,
        torch_version=torch.__version__,
        precision="float32",
        clock=clock_name(fields["threads"]),
        **fields,
    )


def _open_table(options: BuildOptions, backend: Backend, space_name: str) -> LatencyTable:
    """The existing table at the output path (to resume), or a new one."""
    metadata = measured_here(
        options.target,
        backend,
        threads=options.threads,
        input_size=options.input_size,
        num_classes=options.num_classes,
        space=space_name,
        method=_method(options),
    )
    path = options.path
    if not path.exists():
        return LatencyTable(metadata)
    table = LatencyTable.load(path)
    if table.metadata.adapted_from is not None or table.metadata.is_unknown("adapted_from"):
        raise InputError(
            f"{path} was made by 'nas lut adapt', not measured operator by operator: build "
            f"into another --out"
        )
    require_same_setup(table, metadata, _MUST_MATCH, path, "built")
    # Fields a newer nas records that the file lacks are filled in; the file's own stay.
    resumed = table.metadata.with_defaults(metadata)
    spaces = resumed.space_names
    if space_name not in spaces:
        resumed = resumed.replace(space=",".join([*spaces, space_name]))
    table.metadata = resumed.replace(target=options.target)
    return table


def _method(options: BuildOptions) -> str:
    runner = (
        "exported to ONNX (opset 17, batch norm folded) and run in onnxruntime with all "
        "graph optimisations"
        if options.backend == "onnxruntime"
        else "run eagerly in torch (inference mode)"
    )
    clock = "thread CPU time" if options.threads == 1 else "wall time"
    return (
        f"nas lut build: each operator built alone with random weights at batch 1, {runner}, "
        f"{options.threads} intra-op thread(s); fastest of at least {options.repeats} runs "
        f"and {options.min_seconds:g} s after {options.warmup} warm-up runs, {clock}, "
        f"runs the scheduler interrupted left out"
    )


def progress_bar(console: Console, enabled: bool) -> Progress:
    """The bar `nas lut build` and `nas lut adapt` show while they time operators."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled or not console.is_terminal,
        transient=False,
    )


def _log_line(done: int, todo: int, started: float) -> str:
    elapsed = time.perf_counter() - started
    eta = elapsed / done * (todo - done)
    return f"measured {done}/{todo} operators in {elapsed / 60:.1f} min, eta {eta / 60:.1f} min"
