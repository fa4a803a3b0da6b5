"""`nas arch show`: price one architecture."""

from __future__ import annotations

import click

from nas.commands._output import console, echo_json, input_size_option, print_table
from nas.evaluators.flops import count_cost, op_macs
from nas.evaluators.latency import load_table
from nas.search_spaces.footprint import check_arch_fits
from nas.search_spaces.limits import check_input_size
from nas.search_spaces.resolve import resolve_arch
from nas.search_spaces.signatures import arch_signatures


@click.group("arch")
def command() -> None:
    """Architectures: price and inspect one."""


@command.command("show")
@click.argument("arch")
@input_size_option
@click.option("--num-classes", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--target",
    default=None,
    metavar="NAME|FILE",
    help="Also price latency with this target's lookup table (see `nas lut list`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(arch: str, input_size: int, num_classes: int, target: str | None, as_json: bool) -> None:
    """Show MFLOPs (millions of multiply-adds), parameters and operators of ARCH.

    ARCH is an arch string, a zoo name (see `nas zoo`) or a JSON file.
    """
    check_input_size(input_size)
    resolved = resolve_arch(arch)
    shape = (3, input_size, input_size)
    check_arch_fits(resolved, shape, num_classes)  # before any count builds a model
    estimate = load_table(target).predict(resolved, shape, num_classes) if target else None
    cost = count_cost(resolved, shape, num_classes)
    sigs = arch_signatures(resolved, shape, num_classes)
    result = {
        "arch": resolved.to_string(),
        "mflops": round(cost.mflops, 3),
        **(
            {
                "latency_ms": round(estimate.total_ms, 3),
                "target": estimate.target,
                "n_measured": estimate.n_measured,
                "n_modelled": estimate.n_modelled,
            }
            if estimate
            else {}
        ),
        "params": cost.params,
        "input": list(shape),
        "num_classes": num_classes,
        "blocks": [{"op": sig.key, "mflops": round(op_macs(sig) / 1e6, 3)} for sig in sigs],
    }
    if estimate:
        for block, op in zip(result["blocks"], estimate.ops):
            block.update(latency_ms=round(op.ms, 4), source=op.source)
    if as_json:
        echo_json(result)
        return
    console.print(f"[bold]{result['arch']}[/bold]")
    console.print(
        f"{cost.mflops:.1f} MFLOPs, {cost.params:,} parameters at "
        f"3x{input_size}x{input_size}, {num_classes} classes"
    )
    if estimate:
        console.print(
            f"{estimate.total_ms:.2f} ms on {estimate.target} ({estimate.n_measured} "
            f"operators measured, {estimate.n_modelled} modelled)"
        )
        print_table(
            "Operators",
            ["op", "MFLOPs", "ms", "source"],
            [
                [b["op"], f"{b['mflops']:.2f}", f"{b['latency_ms']:.3f}", b["source"]]
                for b in result["blocks"]
            ],
        )
        return
    print_table(
        "Operators", ["op", "MFLOPs"], [[b["op"], f"{b['mflops']:.2f}"] for b in result["blocks"]]
    )
