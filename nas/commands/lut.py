"""`nas lut`: build, validate and inspect latency lookup tables.

Each command parses its flags, calls the latency library and prints the lines and tables the
library makes of the result (`build_summary`, `TableSummary`, ...).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from nas.commands._output import console, echo_json, input_size_option, print_table
from nas.evaluators.latency import (
    BACKENDS,
    BUNDLE_FORMATS,
    NETWORK_ROUNDS,
    TableSummary,
    TableView,
    adapt_summary,
    build_summary,
    bundle_summary,
    import_summary,
    list_tables,
    listing_view,
    load_table,
    validation_summary,
)
from nas.search_spaces.space import DEFAULT_SPACE


def _table_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A new table's name, which is also its file's in the user table folder: a separator or
    a leading dot (``../../x``) would write outside that folder."""
    from nas.errors import InputError
    from nas.files import name_problem

    problem = name_problem(value)
    if problem:
        raise InputError(
            f"--target {value!r} {problem}: a table's name is a plain name such as rpi4 "
            f"(pass --out to write the table file somewhere else)"
        )
    return value


def target_name_option(help: str):  # noqa: A002 (click's own word)
    """`--target` of a command that makes a table (`_table_name`)."""
    return click.option("--target", required=True, callback=_table_name, help=help)


def _print(parts: list[str | TableView]) -> None:
    for part in parts:
        if isinstance(part, TableView):
            print_table(part.title, part.columns, part.rows)
        else:
            console.print(part)


@click.group("lut")
def command() -> None:
    """Latency lookup tables: milliseconds per operator on a target device."""


# Long only by its options: the body parses them, calls the library and prints.
@command.command("build")
@target_name_option("Name of the table (your device), e.g. rpi4.")
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
    _print(build_summary(report))
    if report.interrupted:
        sys.exit(130)


# Long only by its options: the body parses them, calls the library and prints.
@command.command("adapt")
@click.option(
    "--from",
    "source",
    required=True,
    metavar="NAME|FILE",
    help="Table to adapt: a target name (see `nas lut list`) or a table file.",
)
@target_name_option("Name of the new table (this machine).")
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
    _print(adapt_summary(report))
    if report.interrupted:
        sys.exit(130)


# Long only by its options: the body parses them, calls the library and prints.
@command.command("bundle")
@target_name_option("Name of the table the bundle is for (the phone).")
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
    _print(bundle_summary(manifest, out, target))


@command.command("import")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@target_name_option("Name of the new table (the phone).")
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
    _print(import_summary(report, folder))


# Long only by its options: the body parses them, calls the library and prints.
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
        report = validate_with_timings(table, timings, input_size)
    else:
        space_name = space or table.metadata.first_space or DEFAULT_SPACE
        report = validate_table(
            table,
            load_space(space_name),
            n_archs=archs,
            seed=seed,
            include_zoo=zoo,
            rounds=rounds,
            input_size=input_size,
        )
    _print(validation_summary(report, target, write_report(report, out)))


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_(as_json: bool) -> None:
    """List the targets that have a table, with how each was made."""
    listings = list_tables()
    if as_json:
        echo_json([listing.to_dict() for listing in listings])
        return
    _print([listing_view(listings)])


@command.command("show")
@click.argument("target", metavar="TARGET|FILE")
@click.option(
    "--space",
    default=None,
    help="Count operator kinds over this space's operators (and the zoo's) [default: the "
    "spaces the table was built for].",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print metadata, entry counts and trust as JSON."
)
def show(target: str, space: str | None, as_json: bool) -> None:
    """Show what a table is, what its entries are made of, and per operator kind whether its
    prices rest on measurements or are extrapolated."""
    summary = TableSummary.of(load_table(target), space)
    if as_json:
        echo_json(summary.to_dict())
        return
    _print(summary.parts())
