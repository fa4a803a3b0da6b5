"""Reach: how fast candidates are priced from signatures, where uniform draws of `mobile` lie in
latency, and which latencies the first proposals of `--sampler nsga2` and `--sampler bands` reach
at 150 MFLOPs on armv8, priced only (nothing trains).

Uniform draws are what NSGA-II's first generations propose; the price-only proposals are the
product's `nas.proposals.Proposer` on an in-memory study, each proposal left in flight, as a
search's first proposals are while they train. Raw results go to benchmarks/results/reach.json
(each part is kept once done; --rerun repeats them).

    python benchmarks/reach.py                 # draws, throughput, proposals
    python benchmarks/reach.py --report-only   # the section from the results file
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from _report import write_section
from rich.console import Console

from nas.config import SearchConfig
from nas.coverage import LatencyBands
from nas.evaluators.latency import load_table
from nas.evaluators.nasbench_macro import described_dataset
from nas.monitor import SearchMonitor
from nas.pricing import Pricer, estimate_price, price
from nas.proposals import Proposer
from nas.reach import fastest_choices, zoo_within
from nas.recipes import recipe_for
from nas.recorder import Recorder
from nas.search_spaces.space import load_space
from nas.study import open_study

SECTION = "reach"
RESULTS = Path(__file__).resolve().parent / "results" / "reach.json"
SETTINGS = dict(space="mobile", target="armv8", budget_mflops=150.0)
DRAWS = 20_000
FVCORE_SAMPLE = 10
PROPOSALS = 24
SAMPLERS = ("nsga2", "bands")


class _Uniform:
    """Every choice uniformly at random: what a random sampler, and NSGA-II's first generation,
    propose."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.rng.choice(list(choices))


def draws(n: int) -> dict[str, Any]:
    """`n` uniform draws priced from signatures: throughput, and their latencies."""
    config = SearchConfig(**SETTINGS)
    space, table = load_space(config.space), load_table(config.target)
    rng = random.Random(0)
    started, cpu_started = time.perf_counter(), time.process_time()
    archs = [space.sample(_Uniform(rng)) for _ in range(n)]
    sampled, cpu_sampled = time.perf_counter(), time.process_time()
    pricer = Pricer(config, table)
    costs = [pricer.estimate(arch) for arch in archs]  # network key, signatures, table
    priced, cpu_priced = time.perf_counter(), time.process_time()
    distinct = len(pricer.estimated)
    counted = []
    for arch in archs[:FVCORE_SAMPLE]:
        begun = time.perf_counter()
        assert price(arch, config, table) == estimate_price(arch, config, table)
        counted.append(time.perf_counter() - begun)
    _, fastest_ms = fastest_choices(space, lambda arch: pricer.estimate(arch).latency_ms)
    return {
        "load_average": round(os.getloadavg()[0], 1),
        "n": n,
        "sample_s": round(sampled - started, 3),
        "estimate_s": round(priced - sampled, 3),
        "sample_cpu_s": round(cpu_sampled - cpu_started, 3),
        "estimate_cpu_s": round(cpu_priced - cpu_sampled, 3),
        "fvcore_s": [round(s, 4) for s in counted],
        "latency_ms": [c.latency_ms for c in costs],
        "feasible": [c.feasible for c in costs],
        "distinct": distinct,
        "fastest_ms": fastest_ms,
    }


def proposals(sampler: str, n: int) -> dict[str, Any]:
    """The first `n` proposals of `--sampler sampler`, priced, none trained."""
    config = SearchConfig(**SETTINGS, sampler=sampler, trials=n, seed=0)
    space, table = load_space(config.space), load_table(config.target)
    recipe = recipe_for(config)
    study = open_study(config, optuna.storages.InMemoryStorage(), recipe)
    recorder = Recorder(
        study, config, space=space, table=table, recipe=recipe, data=described_dataset()
    )
    monitor = SearchMonitor(n, console=Console(quiet=True), live=False)
    started = time.perf_counter()
    proposer = Proposer(study, config, space=space, table=table, recorder=recorder, monitor=monitor)
    in_flight: dict[str, int] = {}
    latencies = []
    for _ in range(n):
        job = proposer.next(in_flight)
        in_flight[job.arch.network_key()] = job.trial.number
        latencies.append(job.price.latency_ms)
    return {
        "latency_ms": latencies,
        "asks": len(study.get_trials(deepcopy=False)),
        "seconds": round(time.perf_counter() - started, 1),
    }


# ---- the report -----------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    config = SearchConfig(**SETTINGS)
    pricer = Pricer(config, load_table(config.target))
    zoo = sorted((cost.latency_ms, name) for name, cost in zoo_within(config, pricer))
    lines = []
    drawn = results.get("draws")
    if drawn:
        lines += _draws_lines(drawn, zoo)
    runs = results.get("proposals", {})
    if runs and drawn:
        lines += _proposal_lines(runs, drawn, zoo)
    return "\n".join(lines)


def _draws_lines(drawn: dict[str, Any], zoo: list[tuple[float, str]]) -> list[str]:
    n = drawn["n"]
    feasible = [ms for ms, ok in zip(drawn["latency_ms"], drawn["feasible"]) if ok]
    per_minute = n / drawn["estimate_s"] * 60
    both = n / (drawn["estimate_s"] + drawn["sample_s"]) * 60
    per_cpu_minute = n / drawn["estimate_cpu_s"] * 60
    both_cpu = n / (drawn["estimate_cpu_s"] + drawn["sample_cpu_s"]) * 60
    fvcore = statistics.median(drawn["fvcore_s"])
    under = {z: sum(ms <= z for ms in feasible) for z, _ in zoo}
    lines = [
        f"{n:,} uniform draws of `mobile` ({drawn['distinct']:,} distinct networks), priced at "
        f"224x224 with 1000 classes on armv8 from their operator signatures "
        f"(`nas.pricing.estimate_price`, as `Pricer.estimate` caches it): {per_minute:,.0f} "
        f"candidates a minute priced ({drawn['estimate_s'] / n * 1e3:.2f} ms each), "
        f"{both:,.0f} a minute drawn and priced; per minute of the process's own CPU time, "
        f"{per_cpu_minute:,.0f} priced and {both_cpu:,.0f} drawn and priced (the figure "
        f"the load above disturbs least). fvcore's count of the built model "
        f"(`nas.pricing.price`, what a trained candidate is recorded with) took "
        f"{fvcore:.2f} s median over {len(drawn['fvcore_s'])} of them, with identical figures. "
        f"Timed on the shared two cores at a load average of {drawn.get('load_average', '?')} "
        f"(other people's work), so these are lower bounds.",
        "",
        f"Where the draws lie: {len(feasible):,} within 150 MFLOPs; fastest feasible draw "
        f"{min(feasible):.2f} ms, median {statistics.median(feasible):.2f} ms; the space's "
        f"fastest network (coordinate descent over the choices, `nas.reach.fastest_choices`) "
        f"{drawn['fastest_ms']:.2f} ms.",
        "",
        "| zoo network within 150 MFLOPs | armv8 ms | feasible uniform draws at no more ms |",
        "|---|---:|---:|",
    ]
    for ms, name in zoo:
        share = under[ms] / len(feasible)
        lines.append(f"| {name} | {ms:.2f} | {under[ms]} ({share:.2%}) |")
    return lines + [""]


def _proposal_lines(
    runs: dict[str, Any], drawn: dict[str, Any], zoo: list[tuple[float, str]]
) -> list[str]:
    limit = max(max(run["latency_ms"]) for run in runs.values())
    bands = LatencyBands.between(drawn["fastest_ms"], limit, (ms for ms, _ in zoo))
    lines = [
        f"The first {PROPOSALS} proposals of each sampler (seed 0), priced only, none trained: "
        "proposals per latency band (bands as a search cuts them, the top edge the slowest "
        "proposal), then the fastest proposal at no more latency than each zoo network.",
        "",
        "| sampler | asks | seconds | "
        + " | ".join(bands.label(i) for i in range(len(bands)))
        + " |",
        "|---|---:|---:|" + "---:|" * len(bands),
    ]
    for sampler, run in runs.items():
        counts = bands.counts(run["latency_ms"])
        cells = " | ".join(map(str, counts))
        lines.append(f"| {sampler} | {run['asks']} | {run['seconds']} | {cells} |")
    lines += [
        "",
        "| zoo network | ms | "
        + " | ".join(f"fastest `{s}` proposal at no more ms" for s in runs)
        + " |",
        "|---|---:|" + "---|" * len(runs),
    ]
    for ms, name in zoo:
        cells = []
        for run in runs.values():
            within = [x for x in run["latency_ms"] if x <= ms]
            cells.append(f"{min(within):.2f} ({len(within)})" if within else "none")
        lines.append(f"| {name} | {ms:.2f} | " + " | ".join(cells) + " |")
    return lines + ["", "(In brackets: how many proposals at no more latency.)"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--rerun",
        nargs="*",
        choices=("draws", "proposals"),
        default=None,
        help="repeat these parts (all when none is named) though they are done",
    )
    parser.add_argument("--no-write", action="store_true", help="print, leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.report_only:
        rerun = set() if args.rerun is None else set(args.rerun or ("draws", "proposals"))
        if "draws" in rerun or "draws" not in results:
            results["draws"] = draws(DRAWS)
            _save(results)
        for sampler in SAMPLERS:
            done = results.setdefault("proposals", {})
            if "proposals" in rerun or sampler not in done:
                done[sampler] = proposals(sampler, PROPOSALS)
                _save(results)
    body = report(results)
    print(body)
    if not args.no_write:
        write_section(SECTION, "Reach: pricing from signatures, and where proposals land", body)
    return 0


def _save(results: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results) + "\n")


if __name__ == "__main__":
    sys.exit(main())
