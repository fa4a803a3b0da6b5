"""`nas zoo`: the hand-designed networks the search is compared with."""

from __future__ import annotations

import click

from nas.commands._output import echo_json, input_size_option, print_table
from nas.errors import InputError
from nas.evaluators.flops import estimate_cost
from nas.evaluators.latency import load_table, shipped_tables
from nas.search_spaces.zoo import ZOO

SHIPPED_TARGETS = tuple(sorted(shipped_tables()))
"""The latency tables the package ships: a zoo network's price on each is what a search with
that --target compares its candidates with."""


@click.command("zoo")
@input_size_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def command(input_size: int, as_json: bool) -> None:
    """List the zoo: name, arch string, MFLOPs (millions of multiply-adds), parameters and
    latency on each shipped target's table. A network that cannot take an input as small as
    --input-size is left out, with a line on stderr saying why."""
    shape = (3, input_size, input_size)
    tables = {target: load_table(target) for target in SHIPPED_TARGETS}
    rows = []
    for name, factory in ZOO.items():
        arch = factory()
        try:
            cost = estimate_cost(arch, shape)
        except InputError as error:  # an input smaller than this network can take
            click.echo(f"{name} left out: {error}", err=True)
            continue
        latency: dict[str, float | None] = {}
        for target, table in tables.items():
            try:
                latency[target] = round(table.predict(arch, shape).total_ms, 3)
            except InputError:  # a table without a cost model that lacks an operator
                latency[target] = None
        rows.append(
            {
                "name": name,
                "arch": arch.to_string(),
                "mflops": round(cost.mflops, 3),
                "params": cost.params,
                "latency_ms": latency,
                "input": [3, input_size, input_size],
            }
        )
    if as_json:
        echo_json(rows)
        return

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    print_table(
        f"Zoo at 3x{input_size}x{input_size}, 1000 classes (MFLOPs, params: millions; ms: "
        "each table)",
        ["name", "MFLOPs", "params", *SHIPPED_TARGETS, "arch"],
        [
            [
                r["name"],
                f"{r['mflops']:.1f}",
                f"{r['params'] / 1e6:.2f}M",
                *(ms(r["latency_ms"][target]) for target in SHIPPED_TARGETS),
                r["arch"],
            ]
            for r in rows
        ],
    )
