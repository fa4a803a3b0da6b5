"""`nas lut`: build, validate and inspect latency lookup tables."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nas.commands._output import console, echo_json, input_size_option, print_table
from nas.evaluators.latency import (
    BACKENDS,
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
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory for validate_<target>.json and .png.",
)
def validate(
    target: str, archs: int, space: str | None, seed: int, zoo: bool, rounds: int, out: Path
) -> None:
    """Measure whole networks end to end and compare them with the table's sums."""
    from nas.evaluators.latency import validate_table, write_report
    from nas.search_spaces.space import load_space

    table = load_table(target)
    space_name = space or str(table.metadata.get("space", DEFAULT_SPACE)).split(",")[0]
    report = validate_table(
        table, load_space(space_name), n_archs=archs, seed=seed, include_zoo=zoo, rounds=rounds
    )
    json_path, png_path = write_report(report, out)
    rows = []
    for group in ("random", "zoo"):
        for label, metrics in (
            ("table", report.metrics(group)),
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
        "plain sum = entries alone"
    )
    speed = report.speed
    if speed is not None:
        console.print(speed.describe())
        if speed.changed:
            console.print(
                f"[yellow]this machine takes {speed.ratio:.2f}x the time the "
                f"table recorded for its operators, so the sums above miss for that "
                f"reason first: rebuild the table here ('nas lut build --target "
                f"{report.target} --out FILE') to judge how operators compose[/yellow]"
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
