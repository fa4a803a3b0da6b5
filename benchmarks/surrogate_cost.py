"""The surrogate's cost as a study grows: does one proposal stay cheap at 5,000 trials?

`--sampler surrogate` refits its model (`nas.surrogate.Surrogate`) on every training the study
holds before each proposal, and predicts a pool of candidates (`nas.acquisition.POOL` draws).
This fits it on n real NAS-Bench-Macro trainings (published runs of networks drawn at random,
each network at most once per run) and predicts 1,000 networks, timing the fit and the
prediction in CPU and wall seconds; the rank correlation (Kendall tau) of its predictions with
the true three-run means of the pool's networks it was not fitted on says what the time buys.

`--scheduler surrogate` fits the same model at every epoch of every running candidate
(`nas.promotion`), on every epoch of every curve so far up to `MAX_OBSERVATIONS`: the second
table times one such decision in a study of n candidates with four-epoch curves (rising to each
network's published run; NAS-Bench-Macro publishes no curves), the first decision on a candidate
(kernel tuned) and the next (kernel reused).

    python benchmarks/surrogate_cost.py                 # n = 100, 1,000 and 5,000
    python benchmarks/surrogate_cost.py --sizes 5000    # one size
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

from _report import write_section
from scipy.stats import kendalltau

from nas.evaluators.nasbench_macro import NasBenchMacro
from nas.promotion import MAX_OBSERVATIONS, SurrogatePromotion
from nas.surrogate import Candidate, Observation, Surrogate

SECTION = "surrogate-cost"
PRICES = Path(__file__).resolve().parent / "results" / "tabular_search.json"
RESULTS = Path(__file__).resolve().parent / "results" / "surrogate_cost.json"
POOL = 1000
RUNS = 3
"""Published runs per network: an observation is one network's one run."""


def measure(size: int, macro: NasBenchMacro, candidates: dict[str, Candidate]) -> dict[str, Any]:
    rng = random.Random(size)
    pairs = rng.sample([(key, run) for key in sorted(candidates) for run in range(RUNS)], size)
    observed = [
        Observation(candidates[key], 50, macro.lookup(candidates[key].arch).accuracy(run))
        for key, run in pairs
    ]
    pool_keys = rng.sample(sorted(candidates), POOL)
    pool = [candidates[key] for key in pool_keys]
    cpu, wall = time.process_time(), time.perf_counter()
    surrogate = Surrogate().fit(observed, pool)
    fit_cpu, fit_wall = time.process_time() - cpu, time.perf_counter() - wall
    cpu, wall = time.process_time(), time.perf_counter()
    mean, _ = surrogate.predict(pool)
    predict_cpu, predict_wall = time.process_time() - cpu, time.perf_counter() - wall
    seen = {key for key, _ in pairs}
    unseen = [i for i, key in enumerate(pool_keys) if key not in seen]
    truth = [macro.lookup(pool[i].arch).mean for i in unseen]
    tau = kendalltau([mean[i] for i in unseen], truth)[0] if len(unseen) > 10 else None
    return {
        "observations": size,
        "networks": len(seen),
        "pool": POOL,
        "fit_cpu_s": round(fit_cpu, 2),
        "fit_wall_s": round(fit_wall, 2),
        "predict_cpu_s": round(predict_cpu, 2),
        "predict_wall_s": round(predict_wall, 2),
        "held_out": len(unseen),
        "tau_held_out": None if tau is None else round(float(tau), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


CURVE_EPOCHS = 4


def measure_promotion(
    size: int, macro: NasBenchMacro, candidates: dict[str, Candidate]
) -> dict[str, Any]:
    """One candidate judged twice (epochs 2 and 3) among `size` finished four-epoch curves."""
    rng = random.Random(size)
    keys = sorted(candidates)
    promotion = SurrogatePromotion(last_epoch=CURVE_EPOCHS)
    for _ in range(size):
        key = rng.choice(keys)
        final = macro.lookup(candidates[key].arch).accuracy(rng.randrange(RUNS))
        curve = [final * (1 - 0.5 * math.exp(-epoch)) for epoch in range(1, CURVE_EPOCHS + 1)]
        promotion.add(candidates[key], curve, finished=True)
    candidate = candidates[rng.choice(keys)]
    seconds = []
    for curve in ([0.5, 0.6], [0.5, 0.6, 0.65]):
        cpu, wall = time.process_time(), time.perf_counter()
        promotion.optimistic_final(candidate, curve)
        seconds.append((round(time.process_time() - cpu, 2), round(time.perf_counter() - wall, 2)))
    return {
        "candidates": size,
        "observations": len(promotion.evidence(candidate, [0.5, 0.6])),
        "tuned_cpu_s": seconds[0][0],
        "tuned_wall_s": seconds[0][1],
        "reused_cpu_s": seconds[1][0],
        "reused_wall_s": seconds[1][1],
    }


def report(rows: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> str:
    lines = [
        f"Load: measured on the shared two-core machine beside other work (load average "
        f"{os.getloadavg()[0]:.1f} at the end), one process, OMP_NUM_THREADS=1; one measurement "
        f"per size, so the times are orders of magnitude, not figures to compare closely.",
        "",
        "Fit: the linear trend on the free statistics, kernel hyperparameters by marginal "
        "likelihood on at most 300 observations, then the exact Gaussian process on all of them. "
        f"Predict: mean and deviation for {POOL:,} networks, as before each proposal.",
        "",
        "| observations | networks | fit CPU s (wall) | predict CPU s (wall) | Kendall tau, "
        "held-out networks of the pool | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        tau = "-" if row["tau_held_out"] is None else f"{row['tau_held_out']:.3f}"
        lines.append(
            f"| {row['observations']:,} | {row['networks']:,} | {row['fit_cpu_s']:.2f} "
            f"({row['fit_wall_s']:.2f}) | {row['predict_cpu_s']:.2f} ({row['predict_wall_s']:.2f})"
            f" | {tau} ({row['held_out']}) | {row['peak_rss_mib']} |"
        )
    lines += [
        "",
        f"One decision of `--scheduler surrogate` (at most {MAX_OBSERVATIONS:,} observations: "
        f"the candidate's own epochs and the curves nearest it in latency):",
        "",
        "| finished candidates (4-epoch curves) | observations fitted | first decision CPU s "
        "(wall), kernel tuned | next decision CPU s (wall), kernel reused |",
        "|---|---|---|---|",
    ]
    for row in decisions:
        lines.append(
            f"| {row['candidates']:,} | {row['observations']:,} | {row['tuned_cpu_s']:.2f} "
            f"({row['tuned_wall_s']:.2f}) | {row['reused_cpu_s']:.2f} ({row['reused_wall_s']:.2f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 5000])
    parser.add_argument("--no-write", action="store_true", help="print, leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    macro = NasBenchMacro.load()
    prices = json.loads(PRICES.read_text())["prices"]
    candidates = {
        key: Candidate(macro.arch_of(key), fields[0], fields[1], fields[2])
        for key, fields in prices.items()
    }
    largest = len(candidates) * RUNS
    if any(size < 1 or size > largest for size in args.sizes):
        print(f"--sizes: each from 1 to {largest:,} (networks x runs)", file=sys.stderr)
        return 2
    rows = []
    for size in args.sizes:
        rows.append(measure(size, macro, candidates))
        print(json.dumps(rows[-1]), flush=True)
    decisions = []
    for size in args.sizes:
        decisions.append(measure_promotion(size, macro, candidates))
        print(json.dumps(decisions[-1]), flush=True)
    RESULTS.write_text(json.dumps({"rows": rows, "decisions": decisions}, indent=1) + "\n")
    body = report(rows, decisions)
    print(body)
    if not args.no_write:
        write_section(SECTION, "The surrogate's cost as a study grows", body, ("scikit-learn",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
