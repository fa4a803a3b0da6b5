"""Measure into a latency table the operators of zoo networks that it holds no measurement for.

`nas lut build` measures what a search space can produce; a zoo network made of block kinds no
space of the table offers (MobileNetV1, ShuffleNetV1/V2, GhostNet, SqueezeNet) is then priced by
the table's cost model alone. This script times exactly those networks' operators, the way `nas lut build`
times an operator (same runtime, threads, warm-up, repeats and clock, refused where the table's
setup differs from this machine's), adds them as ``measured`` entries and saves the table after
each few, so an interrupted run resumes. Operators that other zoo networks share are left as
they were, so that no other network's price moves. With ``--validate`` it then times each network end to
end and compares it with the table's sum, the check `nas lut validate` makes for a space, and
writes the figures to benchmarks/results/.

    python scripts/measure_zoo_operators.py --table evaluators/latency/tables/x86_64.json \\
        --validate mobilenet_v1 shufflenet_v2_x1_0 ghostnet_100
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import date
from pathlib import Path

import torch

from nas.evaluators.latency.build import (
    BuildOptions,
    measure_op,
    measured_here,
    require_same_setup,
)
from nas.evaluators.latency.networks import time_networks
from nas.evaluators.latency.table import LatencyTable
from nas.evaluators.latency.timing import Backend, get_backend
from nas.search_spaces.signatures import InputShape, arch_signatures
from nas.search_spaces.zoo import ZOO

FAMILIES = [
    name
    for name in ZOO
    if name.startswith(("mobilenet_v1", "shufflenet_v", "ghostnet", "squeezenet"))
]
"""The zoo networks built of the MobileNetV1, ShuffleNetV1/V2, GhostNet and Fire block kinds."""
_MUST_MATCH = ("runtime", "threads", "input_size", "num_classes", "precision", "cpu_model", "clock")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, required=True, help="table file to add entries to")
    parser.add_argument("--validate", action="store_true", help="then time each network whole")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of whole-network timing")
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("benchmarks/results/families_x86_64.json"),
        help="where --validate writes its figures",
    )
    parser.add_argument("networks", nargs="*", default=FAMILIES, help="zoo names (default: all)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.networks if name not in ZOO]
    if unknown:
        print(f"unknown zoo network(s) {', '.join(unknown)}; known: {', '.join(ZOO)}")
        return 2
    table = LatencyTable.load(args.table)
    options = BuildOptions(
        target=table.target,
        input_size=table.input_size,
        num_classes=table.num_classes,
        threads=int(table.metadata.threads or 1),
        out=args.table,
    )
    backend = get_backend(options.backend, options.threads)
    here = measured_here(
        table.target,
        backend,
        threads=options.threads,
        input_size=options.input_size,
        num_classes=options.num_classes,
        method="",
    )
    require_same_setup(table, here, _MUST_MATCH, args.table, "built")
    shape = (3, options.input_size, options.input_size)
    sigs = {
        sig.key: sig
        for name in args.networks
        for sig in arch_signatures(ZOO[name](), shape, options.num_classes)
    }
    # An operator another zoo network shares (a stem, a classifier) keeps the price it had, so
    # that measuring these networks changes no other network's estimate.
    others = {
        sig.key
        for name in ZOO
        if name not in args.networks
        for sig in arch_signatures(ZOO[name](), shape, options.num_classes)
    }
    todo = [sig for sig in table.missing(list(sigs.values())) if sig.key not in others]
    random.Random(0).shuffle(todo)  # as `nas lut build` does: load drift spreads over kinds
    print(f"{len(sigs)} operators, {len(todo)} to measure", file=sys.stderr)
    torch.manual_seed(0)
    started = time.perf_counter()
    for index, sig in enumerate(todo, 1):
        timing = measure_op(sig, backend, options)
        table.set_entry(sig.key, timing.ms, timing.std, "measured")
        if index % 10 == 0 or index == len(todo):
            table.metadata = table.metadata.replace(date=date.today().isoformat())
            table.save(args.table)
            elapsed = time.perf_counter() - started
            print(f"measured {index}/{len(todo)} in {elapsed:.0f} s", file=sys.stderr)
    if args.validate:
        validate(table, args.networks, backend, shape, options.num_classes, args)
    return 0


def validate(
    table: LatencyTable,
    names: list[str],
    backend: Backend,
    shape: InputShape,
    num_classes: int,
    args: argparse.Namespace,
) -> None:
    """Each network timed whole against the table's sum for it; written to `args.results`."""
    archs = [ZOO[name]() for name in names]
    timings = time_networks(
        archs, backend, shape, num_classes, rounds=args.rounds, show_progress=False
    )
    rows = []
    for name, arch, timing in zip(names, archs, timings):
        estimate = table.predict(arch, shape, num_classes)
        rows.append(
            {
                "network": name,
                "measured_ms": round(timing.ms, 4),
                "round_spread_ms": round(timing.spread_ms, 4),
                "table_ms": round(estimate.total_ms, 4),
                "error_pct": round((estimate.total_ms / timing.ms - 1) * 100, 2),
                "operators_measured": estimate.n_measured,
                "operators_modelled": estimate.n_modelled,
            }
        )
        print(
            f"{name:22s} measured {timing.ms:8.3f} ms (spread {timing.spread_ms:.3f})  "
            f"table {estimate.total_ms:8.3f} ms  error {rows[-1]['error_pct']:+6.1f}%"
        )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps(
            {
                "table": str(args.table),
                "date": date.today().isoformat(),
                "machine": table.metadata.device,
                "runtime": f"{backend.name} {backend.version}",
                "threads": backend.threads,
                "rounds": args.rounds,
                "command": "python " + " ".join(sys.argv),
                "networks": rows,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    sys.exit(main())
