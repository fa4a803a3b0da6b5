"""`nas report`: the Pareto front as a table, plots as PNG and HTML, a Markdown summary."""

from __future__ import annotations

from pathlib import Path

import click

from nas.commands._output import console, print_table, storage_option, study_option


@click.command("report")
@study_option
@storage_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for report.md, report.html and the PNGs [default: results/<study>].",
)
def command(study: str | None, storage: str, out: Path | None) -> None:
    """Report a search: its feasible Pareto front of validation accuracy against latency on
    the study's target, plots (accuracy vs latency and vs MFLOPs, with the zoo networks
    marked, and the optimisation history) as PNG and interactive HTML, and report.md linking
    them. MFLOPs are millions of multiply-adds at the deployment input.
    """
    from nas.outputs import FRONT_HEADERS, front_cells, study_folder
    from nas.preflight import require_writable_dir
    from nas.reporting import write_report
    from nas.select import open_existing_storage, pick_study

    if out is not None:
        require_writable_dir(out)
    rdb = open_existing_storage(storage)
    try:
        found = pick_study(rdb, study)
        folder = out or require_writable_dir(study_folder(found.study_name))
        report = write_report(found, storage, folder)
    finally:
        rdb.engine.dispose()
    data = report.data
    rows = [[*front_cells(row, data.zoo_name(row)), row.arch] for row in data.front]
    print_table(
        f"Pareto front of {data.study_name}: {data.counts.front_title()} (latency on "
        f"{data.target}, MFLOPs = M multiply-adds)",
        [*FRONT_HEADERS, "arch"],
        rows,
    )
    console.print(f"trials: {data.counts.sentence()}", highlight=False, soft_wrap=True)
    for note in data.notes:
        console.print(f"note: {note}")
    console.print(
        f"report: {report.markdown} (interactive: {report.html}; plots: "
        f"{', '.join(path.name for path in report.figures.values())})"
    )
