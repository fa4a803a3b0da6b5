"""`nas space`: inspect the built-in and user-defined search spaces."""

from __future__ import annotations

import click

from nas.commands._output import console, echo_json, input_size_option, print_table
from nas.evaluators.flops import estimate_cost
from nas.search_spaces.kinds import DEFAULT_KIND
from nas.search_spaces.space import DEFAULT_SPACE, builtin_spaces, load_space


@click.group("space")
def command() -> None:
    """Search spaces: what architectures a search may propose."""


@command.command("list")
def list_spaces() -> None:
    """List the built-in spaces."""
    rows = []
    for name in sorted(builtin_spaces()):
        space = load_space(name)
        rows.append([name, f"{space.size():.3g}", len(space.signatures())])
    print_table("Built-in search spaces", ["name", "architectures", "operators at 224"], rows)


@command.command("show")
@click.argument("space", default=DEFAULT_SPACE, metavar="[NAME|FILE]")
@input_size_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(space: str, input_size: int, as_json: bool) -> None:
    """Show a space's choices, size, operator count and MFLOPs range."""
    loaded = load_space(space)
    shape = (3, input_size, input_size)
    summary = {
        "name": loaded.name,
        "description": loaded.description,
        "size": loaded.size(),
        "signatures": len(loaded.signatures(shape)),
        "mflops_min": round(estimate_cost(loaded.cheapest(), shape).mflops, 3),
        "mflops_max": round(estimate_cost(loaded.dearest(), shape).mflops, 3),
        "input": list(shape),
        **loaded.to_dict(),
    }
    if as_json:
        summary["size"] = str(summary["size"]) if summary["size"] > 2**53 else summary["size"]
        echo_json(summary)
        return
    console.print(f"[bold]{loaded.name}[/bold]: {loaded.description}")
    console.print(
        f"{loaded.size():.3e} architectures, {summary['signatures']} distinct operators, "
        f"{summary['mflops_min']:.1f} to {summary['mflops_max']:.1f} MFLOPs at "
        f"3x{input_size}x{input_size}"
    )
    console.print(f"stem {loaded.stem.to_string()}   head {loaded.head.to_string()}")
    choices = list(dict.fromkeys(name for s in loaded.stages for name in s.choices.names))
    kinds = any(s.choices.kind != DEFAULT_KIND for s in loaded.stages)
    rows = [
        [
            i,
            *([s.choices.kind] if kinds else []),
            f"{s.depth[0]}-{s.depth[1]}",
            s.stride,
            "/".join(map(str, s.widths)),
            *(
                "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in s.choices[name])
                if name in s.choices.names
                else "-"
                for name in choices
            ),
        ]
        for i, s in enumerate(loaded.stages)
    ]
    columns = ["stage", *(["kind"] if kinds else []), "depth", "stride", "width", *choices]
    print_table("Stages", columns, rows)
