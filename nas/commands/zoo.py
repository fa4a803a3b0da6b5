"""`nas zoo`: the hand-designed networks the search is compared with."""

from __future__ import annotations

import click

from nas.commands._output import echo_json, input_size_option, print_table
from nas.evaluators.flops import count_cost
from nas.search_spaces.zoo import ZOO


@click.command("zoo")
@input_size_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def command(input_size: int, as_json: bool) -> None:
    """List the zoo: name, arch string, MFLOPs (millions of multiply-adds) and parameters."""
    rows = []
    for name, factory in ZOO.items():
        arch = factory()
        cost = count_cost(arch, (3, input_size, input_size))
        rows.append(
            {
                "name": name,
                "arch": arch.to_string(),
                "mflops": round(cost.mflops, 3),
                "params": cost.params,
                "input": [3, input_size, input_size],
            }
        )
    if as_json:
        echo_json(rows)
        return
    print_table(
        f"Zoo at 3x{input_size}x{input_size}, 1000 classes (MFLOPs = M multiply-adds)",
        ["name", "MFLOPs", "params", "arch"],
        [[r["name"], f"{r['mflops']:.1f}", f"{r['params']:,}", r["arch"]] for r in rows],
    )
