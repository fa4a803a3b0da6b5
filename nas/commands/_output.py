"""Shared output helpers: machine-readable JSON for scripts, rich tables for people."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

console = Console()


def echo_json(data: Any) -> None:
    """One JSON document on stdout: the contract for `--json`."""
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def input_size_option(function):
    return click.option(
        "--input-size",
        type=click.IntRange(min=8),
        default=224,
        show_default=True,
        help="Side of the square deployment input the cost is priced at.",
    )(function)
