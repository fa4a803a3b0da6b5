"""`nas lut`: build, validate and inspect latency lookup tables."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nas.commands._output import console, echo_json, input_size_option, print_table
from nas.evaluators.latency import (
    BACKENDS,
    BUNDLE_FORMATS,
    NETWORK_ROUNDS,
    available_tables,
    load_table,
    shipped_tables,
)
from nas.search_spaces.space import DEFAULT_SPACE


@click.group("lut")
def command() -> None:
    """Latency lookup tables: milliseconds per operator on a target device."""


@command.command("build")
@click.option("--target", required=True, help="Name of the table (your device), e.g. rpi4.")
@click.option(
    "--space",
    default=DEFAULT_SPACE,
    show_default=True,
    help="Built-in space name or YAML file whose operators are measured.",
)
@input_size_option
@click.option("--backend", type=click.Choice(BACKENDS), default="onnxruntime", show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Intra-op threads, as the deployed model will run.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=3),
    default=50,
    show_default=True,
    help="Timed runs per operator (at least; short operators get more).",
)
@click.option(
    "--calibrate",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Random networks timed end to end at the end to calibrate the cold-cache term (0: skip).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Table file [default: the user table directory, <target>.json].",
)
def build(
    target: str,
    space: str,
    input_size: int,
    backend: str,
    threads: int,
    repeats: int,
    calibrate: int,
    out: Path | None,
) -> None:
    """Measure every operator of SPACE on this machine; a rerun resumes where it stopped."""
    from nas.evaluators.latency import BuildOptions, build_table

    options = BuildOptions(
        target=target,
        space=space,
        input_size=input_size,
        backend=backend,
        threads=threads,
        out=out,
        repeats=repeats,
        calibrate=calibrate,
    )
    report = build_table(options)
    console.print(
        f"{report.path}: {report.measured} operators measured, {report.skipped} "
        f"already there, {report.total} in the space ({report.seconds / 60:.1f} min)"
    )
    if report.calibration:
        c = report.calibration
        console.print(
            f"calibrated on {c['networks']} networks: cold feature maps cost "
            f"{report.table.cold_ms_per_mb:.4f} ms/MB; table error on them "
            f"{c['mape_without_pct']:.1f}% -> {c['mape_fitted_pct']:.1f}%"
        )
    if report.interrupted:
        console.print("interrupted: rerun the same command to resume")
        sys.exit(130)


@command.command("adapt")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="NAME|FILE",
    help="Table to adapt: a target name (see `nas lut list`) or a table file.",
)
@click.option("--target", required=True, help="Name of the new table (this machine).")
@click.option(
    "--space", default=None, help="Space whose operators are sampled [default: the source's]."
)
@click.option(
    "--operators",
    type=click.IntRange(min=12),
    default=100,
    show_default=True,
    help="Operators timed here, spread over the space's operator variants.",
)
@click.option(
    "--networks",
    type=click.IntRange(min=2),
    default=10,
    show_default=True,
    help="Whole networks timed here to fit the cold-cache term.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Interleaved timing rounds for the networks.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="Runtime to time with [default: the source's, else onnxruntime].",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="Intra-op threads [default: the source's, else 1].",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Table file [default: the user table directory, <target>.json].",
)
def adapt(
    source: str,
    target: str,
    space: str | None,
    operators: int,
    networks: int,
    rounds: int,
    backend: str | None,
    threads: int | None,
    seed: int,
    out: Path | None,
) -> None:
    """Make a table for this machine from another table and a few minutes of timing.

    A sample of operators and a few networks are timed here; every other entry of the source
    is rescaled by speed factors fitted to them. A rerun resumes. Judge the result with
    `nas lut validate --target NAME`.
    """
    from nas.evaluators.latency import AdaptOptions, adapt_table
    from nas.preflight import require_writable_file

    options = AdaptOptions(
        source=source,
        target=target,
        space=space,
        operators=operators,
        networks=networks,
        rounds=rounds,
        backend=backend,
        threads=threads,
        out=out,
        seed=seed,
    )
    require_writable_file(options.path)
    report = adapt_table(options)
    if report.interrupted:
        console.print(
            f"{report.path}: interrupted after {report.operators_measured} operators: rerun "
            f"the same command to resume"
        )
        sys.exit(130)
    done = report.adaptation
    table = report.table
    origin = table.metadata["adapted_from"]
    console.print(
        f"{report.path}: {len(table.entries)} entries adapted from {origin['target']!r} "
        f"({done['operators']} operators over {done['variants']} variants and "
        f"{len(done['networks'])} networks timed here, {done['measurement_seconds']:.0f} s)"
    )
    console.print(
        f"operators here take {done['speed_ratio_median']:.2f}x the source's time (10-90%: "
        f"{done['speed_ratio_p10_p90'][0]:.2f}-{done['speed_ratio_p10_p90'][1]:.2f}); "
        f"per-term factors with ridge {done['ridge']}: "
        f"{done['cv_operator_mape_pct_by_ridge'][done['ridge']]:.1f}% error on held-out "
        f"operators ({done['cv_operator_mape_pct_by_ridge']['overall ratio only']:.1f}% with "
        f"the overall ratio alone)"
    )
    calibration = table.metadata["calibration"]
    console.print(
        f"cold feature maps cost {table.cold_ms_per_mb:.4f} ms/MB; error on the timed networks "
        f"{calibration['mape_without_pct']:.1f}% -> {calibration['mape_fitted_pct']:.1f}%"
    )
    console.print(f"judge it on other networks: nas lut validate --target {report.path}")


@command.command("bundle")
@click.option("--target", required=True, help="Name of the table the bundle is for (the phone).")
@click.option(
    "--space",
    default=DEFAULT_SPACE,
    show_default=True,
    help="Built-in space name or YAML file whose operators are bundled.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(BUNDLE_FORMATS),
    required=True,
    help="Model format, timed on the phone by its runtime's tool: executor_runner (executorch), "
    "benchncnn (ncnn), onnxruntime_perf_test (onnx).",
)
@input_size_option
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Threads the tool runs each model with, as the deployed model will run.",
)
@click.option(
    "--loops",
    type=click.IntRange(min=3),
    default=50,
    show_default=True,
    help="Timed runs per operator (networks: 20 per round).",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Interleaved rounds over the networks; each network's fastest run is kept.",
)
@click.option(
    "--calibrate",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Calibration networks (the ones 'nas lut build' times, same seed).",
)
@click.option(
    "--validate",
    "judge",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Networks of another seed that 'nas lut validate --timings' judges the table on.",
)
@click.option("--zoo/--no-zoo", default=True, show_default=True, help="Also time the zoo networks.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of the bundle; a rerun finishes the models still missing.",
)
def bundle(
    target: str,
    space: str,
    fmt: str,
    input_size: int,
    threads: int,
    loops: int,
    rounds: int,
    calibrate: int,
    judge: int,
    zoo: bool,
    out: Path,
) -> None:
    """Write every operator of SPACE as a model file for a phone, and a runner that times them.

    Then: 'python OUT/run.py --bench PATH' with the phone on adb (or '--local' on this
    machine), and 'nas lut import OUT --target NAME'.
    """
    from nas.evaluators.latency import BundleOptions, write_bundle
    from nas.phone import bundle_writer
    from nas.preflight import require_writable_dir

    writer, exporter = bundle_writer(fmt)
    require_writable_dir(out)
    options = BundleOptions(
        target=target,
        out=out,
        format=fmt,
        space=space,
        input_size=input_size,
        threads=threads,
        operator_loops=loops,
        network_rounds=rounds,
        calibrate=calibrate,
        validate=judge,
        zoo=zoo,
    )
    manifest = write_bundle(options, writer, exporter)
    models = manifest["models"]
    operators = sum(m["role"] == "operator" for m in models)
    console.print(
        f"{out}: {operators} operators and {len(models) - operators - 1} networks as "
        f"{fmt} ({exporter}), {len(manifest['runs'])} runs for {manifest['tool']} "
        f"({manifest['export_seconds'] / 60:.1f} min of export)"
    )
    console.print(
        f"next: python {out / 'run.py'} --bench PATH/TO/{manifest['tool']} (phone on adb) "
        f"or --local (this machine); then nas lut import {out} --target {target}"
    )


@command.command("import")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", required=True, help="Name of the new table (the phone).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Table file [default: the user table directory, <target>.json].",
)
def import_(folder: Path, target: str, out: Path | None) -> None:
    """Make a table from a bundle the runner has timed (FOLDER as 'nas lut bundle' wrote it)."""
    from nas.evaluators.latency import default_table_path, import_bundle
    from nas.preflight import require_writable_file

    require_writable_file(out or default_table_path(target))
    report = import_bundle(folder, target, out)
    table = report.table
    console.print(
        f"{report.path}: {report.operators} operators measured on {table.metadata['device']} "
        f"with {table.metadata['benchmark_tool']}, {table.metadata['threads']} thread(s)"
    )
    probe = table.metadata.get("per_op_overhead_probe_ms", table.per_op_overhead_ms)
    console.print(
        f"call overhead {table.per_op_overhead_ms:.4f} ms per operator (the probe's "
        f"{probe:.4f} ms, the rest fitted on the calibration networks)"
    )
    if report.held_out_mape_pct is not None:
        console.print(
            f"cost model for operators outside the space: {report.held_out_mape_pct:.1f}% "
            f"error on held-out entries (5-fold)"
        )
    if report.calibration:
        c = report.calibration
        console.print(
            f"calibrated on {c['networks']} networks: cold feature maps cost "
            f"{table.cold_ms_per_mb:.4f} ms/MB; table error on them "
            f"{c['mape_without_pct']:.1f}% -> {c['mape_fitted_pct']:.1f}%"
        )
    console.print(f"judge it: nas lut validate --target {report.path} --timings {folder}")


@command.command("validate")
@click.option("--target", required=True, help="Target name or table file.")
@click.option(
    "--archs",
    type=click.IntRange(min=2),
    default=50,
    show_default=True,
    help="Random architectures to sample from the space.",
)
@click.option(
    "--space", default=None, help="Space to sample [default: the one the table was built for]."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--zoo/--no-zoo",
    default=True,
    show_default=True,
    help="Also measure the zoo networks the table can price.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=NETWORK_ROUNDS,
    show_default=True,
    help="Interleaved timing rounds; each network's fastest run over them is kept.",
)
@click.option(
    "--input-size",
    type=click.IntRange(min=8),
    default=None,
    help="Judge the table at this input side [default: the one it was built at].",
)
@click.option(
    "--timings",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A timed bundle ('nas lut bundle'): judge the table on the networks it timed on its "
    "device instead of timing networks here.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory for validate_<target>.json and .png.",
)
def validate(
    target: str,
    archs: int,
    space: str | None,
    seed: int,
    zoo: bool,
    rounds: int,
    input_size: int | None,
    timings: Path | None,
    out: Path,
) -> None:
    """Measure whole networks end to end and compare them with the table's sums."""
    from nas.evaluators.latency import validate_table, validate_with_timings, write_report
    from nas.preflight import require_writable_dir
    from nas.search_spaces.limits import check_input_size
    from nas.search_spaces.space import load_space

    if input_size is not None:
        check_input_size(input_size)
    table = load_table(target)
    require_writable_dir(out)
    if timings is not None:
        report = validate_with_timings(table, timings)
    else:
        space_name = space or str(table.metadata.get("space", DEFAULT_SPACE)).split(",")[0]
        report = validate_table(
            table,
            load_space(space_name),
            n_archs=archs,
            seed=seed,
            include_zoo=zoo,
            rounds=rounds,
            input_size=input_size,
        )
    json_path, png_path = write_report(report, out)
    rows = []
    for group in ("random", "zoo"):
        for label, metrics in (
            ("table", report.metrics(group)),
            ("table x speed ratio", report.speed_scaled_metrics(group)),
            ("plain sum", report.plain_sum_metrics(group)),
        ):
            if metrics:
                rows.append(
                    [
                        group,
                        label,
                        metrics.n,
                        f"{metrics.mape_pct:.1f}%",
                        f"{metrics.within_pct:.0f}%",
                        f"{metrics.kendall_tau:.3f}",
                        f"{metrics.max_abs_error_pct:.1f}%",
                    ]
                )
    print_table(
        f"{report.target}: table sum against end-to-end time "
        f"({report.settings['runtime']}, {report.settings['threads']} thread(s))",
        ["networks", "prediction", "n", "MAPE", "within ±10%", "Kendall tau", "worst"],
        rows,
    )
    console.print(
        "table = entries - call overhead + cold feature maps (what the search uses); "
        "x speed ratio = the table scaled by the operator speed measured below; "
        "plain sum = entries alone"
    )
    speed = report.speed
    if speed is not None:
        console.print(speed.describe())
        if speed.changed:
            console.print(
                f"[yellow]this machine takes {speed.ratio:.2f}x the time the "
                f"table recorded for its operators, so the sums above miss for that "
                f"reason first: adapt the table to this machine in a minute ('nas lut "
                f"adapt --from {target} --target NAME') or rebuild it here ('nas lut build "
                f"--target {report.target} --out FILE')[/yellow]"
            )
    unpriced = [row.name for row in report.rows if row.predicted_ms is None]
    if unpriced:
        console.print(f"not priced by the table (no entry, no cost model): {', '.join(unpriced)}")
    console.print(f"wrote {json_path} and {png_path}")


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_tables(as_json: bool) -> None:
    """List the targets that have a table, with how each was made."""
    shipped = shipped_tables()
    rows = []
    for target, path in sorted(available_tables().items()):
        meta = load_table(str(path)).metadata
        rows.append(
            {
                "target": target,
                "origin": "shipped" if shipped.get(target) == path else "user",
                "path": str(path),
                "device": meta.get("device", ""),
                "runtime": _runtime(meta),
                "threads": meta.get("threads"),
                "input_size": meta.get("input_size"),
                "space": meta.get("space"),
                "date": meta.get("date"),
            }
        )
    if as_json:
        echo_json(rows)
        return
    print_table(
        "Latency tables",
        ["target", "origin", "device", "runtime", "threads", "input", "space", "date"],
        [
            [
                r["target"],
                r["origin"],
                r["device"],
                r["runtime"],
                r["threads"],
                r["input_size"],
                r["space"],
                r["date"],
            ]
            for r in rows
        ],
    )


@command.command("show")
@click.argument("target", metavar="TARGET|FILE")
@click.option("--json", "as_json", is_flag=True, help="Print metadata and entry counts as JSON.")
def show(target: str, as_json: bool) -> None:
    """Show a table's metadata and what its entries are made of."""
    table = load_table(target)
    counts = {
        source: sum(1 for e in table.entries.values() if e["source"] == source)
        for source in ("measured", "model")
    }
    kinds: dict[str, list[float]] = {}
    for key, entry in table.entries.items():
        kinds.setdefault(key.split(":")[0], []).append(entry["ms"])
    summary = {
        "target": table.target,
        "path": str(table.path),
        "metadata": table.metadata,
        "entries": len(table.entries),
        **{f"n_{k}": v for k, v in counts.items()},
        "has_cost_model": table.cost_model is not None,
        "kinds": {
            kind: {"n": len(v), "min_ms": round(min(v), 4), "max_ms": round(max(v), 4)}
            for kind, v in sorted(kinds.items())
        },
    }
    if as_json:
        echo_json(summary)
        return
    console.print(f"[bold]{table.target}[/bold] ({table.path})")
    for name, value in sorted(table.metadata.items()):
        console.print(f"  {name}: {value}")
    console.print(
        f"{len(table.entries)} entries ({counts['measured']} measured, "
        f"{counts['model']} model), cost model: "
        f"{'yes' if table.cost_model is not None else 'no'}"
    )
    print_table(
        "Entries by operator kind",
        ["kind", "n", "min ms", "max ms"],
        [[k, v["n"], v["min_ms"], v["max_ms"]] for k, v in summary["kinds"].items()],
    )


def _runtime(meta: dict) -> str:
    runtime = meta.get("runtime", "")
    return f"{runtime} {meta.get('runtime_version', '')}".strip()
