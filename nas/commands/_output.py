"""Shared output helpers: machine-readable JSON for scripts, rich tables for people.

A terminal gets tables that fit its width. A pipe or a log file (where cluster users read
results) has no width to fit: there a table is printed as wide as its cells, so no number or
name is ever folded over two lines.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

console = Console()


def echo_json(data: Any) -> None:
    """One JSON document on stdout: the contract for `--json`."""
    click.echo(json.dumps(data, indent=2, sort_keys=False))


LONG_COLUMNS = ("arch",)
"""Columns whose values (one-line arch strings of 200+ characters) a table cell can only show
folded into a tall strip of a few characters: they are printed below the table instead."""


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """A table, with any long column printed below it, one unwrapped line per row, so it can
    be read (and copied) at any terminal width, and in a pipe."""
    long = [i for i, column in enumerate(columns) if column in LONG_COLUMNS and i > 0]
    piped = not console.is_terminal
    table = Table(title=None if piped else title, title_justify="left")
    for i, column in enumerate(columns):
        if i not in long:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(cell) for i, cell in enumerate(row) if i not in long))
    if piped:
        console.print(title, soft_wrap=True, markup=False, highlight=False)
        wide = Console(file=console.file, width=natural_width(table), force_terminal=False)
        wide.print(table)
    else:
        console.print(table)
    for i in long:
        for row in rows:
            console.print(
                f"{_row_label(columns[0], row[0])}: {row[i]}",
                soft_wrap=True,
                markup=False,
                highlight=False,
            )


def natural_width(table: Table) -> int:
    """The columns a table takes when nothing has to fold."""
    unbounded = console.options.update_width(1_000_000)
    return Measurement.get(console, unbounded, table).maximum


def _row_label(column: str, cell: Any) -> str:
    """'trial 7' for a number, the cell itself for a name."""
    return f"{column} {cell}" if str(cell).isdigit() else str(cell)


def study_option(function):
    """`--study` of the commands that read a finished search."""
    return click.option(
        "--study", default=None, help="Study name [default: the storage's only study]."
    )(function)


def storage_option(function):
    """`--storage` of the commands that read a finished search."""
    from nas.storage import DEFAULT_STORAGE_URL

    return click.option(
        "--storage",
        default=DEFAULT_STORAGE_URL,
        show_default=True,
        help="SQLAlchemy URL of the study database.",
    )(function)


def input_size_option(function):
    return click.option(
        "--input-size",
        type=click.IntRange(min=8),
        default=224,
        show_default=True,
        help="Side of the square deployment input the cost is priced at.",
    )(function)
