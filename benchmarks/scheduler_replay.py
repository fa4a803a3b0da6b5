"""Median rule against MO-ASHA, replayed on the measured learning curves of the ranking benchmark.

Each reference run of `proxy_ranking.py` (one architecture, one seed, every epoch's validation
accuracy) is a candidate with its armv8 latency. A replay feeds the candidates in a random
order to one scheduling rule exactly as the search's driver does with one worker: after every
epoch the rule may stop the candidate, seeing only the candidates that came before it (the
search's own rule classes from `nas.stopping`: `MedianRule`, `SuccessiveHalvingRule`, or
`SurrogateRule`, which refits a Gaussian process at every decision and so replays fewer orders,
`--surrogate-orders`, the first of the same orders). Many orders give, for each rule:

- compute: epochs trained, as a fraction of training every candidate to the end, under a cap
  (`--budgets`): at equal compute, a rule that stops more candidates reaches more of them;
- quality: the hypervolume (accuracy up, latency down) of the candidates trained to the end,
  as a fraction of the hypervolume of all candidates; and how many members of the true
  Pareto front of the final accuracies were trained to the end.

No candidate is trained here: this compares the decisions of the rules on measured curves,
without the sampler, which the end-to-end benchmark includes.

    python benchmarks/scheduler_replay.py            # prints and writes the section
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402
from proxy_fidelity import recipe_key  # noqa: E402
from proxy_ranking import RESULTS, parse_spec  # noqa: E402

from nas.evaluators.flops import count_cost  # noqa: E402
from nas.evaluators.latency import load_table  # noqa: E402
from nas.evaluators.recipe import Recipe  # noqa: E402
from nas.promotion import SurrogatePromotion  # noqa: E402
from nas.search_spaces.arch import Arch  # noqa: E402
from nas.search_spaces.signatures import DEPLOY_CLASSES, DEPLOY_INPUT  # noqa: E402
from nas.stopping import (  # noqa: E402
    EpochPoint,
    MedianRule,
    StoppingRule,
    SuccessiveHalvingRule,
    SurrogateRule,
)
from nas.successive_halving import ParetoHalving, non_dominated_fronts  # noqa: E402
from nas.surrogate import Candidate as Network  # noqa: E402

Candidate = tuple[list[float], float, Network]
"""(validation accuracy after each epoch, latency in ms, the network and its free statistics)."""


def load_candidates(results: dict, recipe_key: str, target: str) -> list[Candidate]:
    """Every finished run of the recipe `recipe_key`, with its arch's latency on `target`."""
    table = load_table(target)
    candidates = []
    for key, run in results["runs"].items():
        deployed, _, run_key = key.rpartition("|")
        if run_key != recipe_key or run.get("status") != "ok":
            continue
        arch = Arch.from_string(deployed)
        latency = table.predict(arch, DEPLOY_INPUT, DEPLOY_CLASSES).total_ms
        cost = count_cost(arch)
        curve = [float(epoch["val_accuracy"]) for epoch in run["curve"]]
        candidates.append((curve, latency, Network(arch, cost.mflops, cost.params, latency)))
    return candidates


def replay(order: list[Candidate], budget: int, rule: StoppingRule) -> tuple[int, list[int]]:
    """(epochs trained, indices trained to the end) when `rule` judges `order` epoch by epoch."""
    epochs, finished = 0, []
    for index, (curve, latency, network) in enumerate(order):
        for epoch, value in enumerate(curve, start=1):
            if epochs == budget:  # compute is spent: this candidate never finishes
                return epochs, finished
            epochs += 1
            if rule.should_stop(EpochPoint(epoch, value, latency, candidate=network)):
                break
        else:
            rule.on_finished(curve, latency, network)
            finished.append(index)
    return epochs, finished


def hypervolume(points: list[tuple[float, float]], worst_latency: float) -> float:
    """Area dominated by `points` (accuracy up, latency down) above accuracy 0."""
    area, best = 0.0, 0.0
    for accuracy, latency in sorted(points, key=lambda p: p[1]):
        if accuracy > best:
            area += (accuracy - best) * (worst_latency - latency)
            best = accuracy
    return area


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--recipe", default="e8-m2", help="the runs replayed (a recipe spec)")
    parser.add_argument("--target", default="armv8")
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument(
        "--surrogate-orders",
        type=int,
        default=100,
        help="orders the surrogate rule replays (the first of the same orders)",
    )
    parser.add_argument("--eta", type=int, nargs="+", default=[2, 3])
    parser.add_argument(
        "--budgets",
        type=float,
        nargs="+",
        default=[1.0, 0.5, 0.33],
        help="epochs each rule may train, as shares of training every candidate to the end",
    )
    parser.add_argument("--section", default="scheduler-replay", help="'' to print only")
    return parser.parse_args()


def rules_for(epochs: int, etas: list[int]) -> dict[str, Callable[[], StoppingRule]]:
    """A fresh rule of each kind compared, by the name the table gives it."""
    rules: dict[str, Callable[[], StoppingRule]] = {
        "median (default)": lambda: MedianRule(last_epoch=epochs)
    }
    rules |= {
        f"asha, eta {eta}": (
            lambda e=eta: SuccessiveHalvingRule(ParetoHalving.for_epochs(epochs, e))
        )
        for eta in etas
    }
    rules["surrogate"] = lambda: SurrogateRule(SurrogatePromotion(last_epoch=epochs))
    return rules


def table_rows(candidates: list[Candidate], args: argparse.Namespace) -> list[str]:
    """One row per (compute allowed, rule): its means over `args.orders` arrival orders."""
    worst = max(latency for _, latency, _ in candidates) * 1.1
    finals = [(curve[-1], latency) for curve, latency, _ in candidates]
    front = set(non_dominated_fronts(finals)[0])
    full_volume = hypervolume(finals, worst)
    total_epochs = sum(len(curve) for curve, _, _ in candidates)
    rules = rules_for(len(candidates[0][0]), args.eta)
    rng = random.Random(0)
    orders = [rng.sample(range(len(candidates)), len(candidates)) for _ in range(args.orders)]
    rows = []
    for share, (name, rule) in ((b, r) for b in args.budgets for r in rules.items()):
        budget = round(share * total_epochs)
        spent, volume, kept = [], [], []
        replayed = orders[: args.surrogate_orders] if name == "surrogate" else orders
        for order in replayed:
            spent_epochs, finished = replay([candidates[i] for i in order], budget, rule())
            trained = [order[i] for i in finished]
            spent.append(spent_epochs / total_epochs)
            volume.append(hypervolume([finals[i] for i in trained], worst) / full_volume)
            kept.append(len(front & set(trained)))
        rows.append(
            f"| {share:.2f} | {name} ({len(replayed)} orders) | {statistics.mean(spent):.2f} "
            f"| {statistics.mean(volume):.3f} "
            f"(5th percentile {sorted(volume)[len(volume) // 20]:.3f}) | "
            f"{statistics.mean(kept):.1f} of {len(front)} |"
        )
    return rows


def main() -> None:
    args = parse_args()
    recipe = parse_spec(args.recipe, Recipe(threads=1, max_seconds=None))
    results = json.loads(args.results.read_text())
    keys = {recipe_key(recipe.replace(seed=seed)) for seed in range(10)}
    # Sorted: a set's order changes with the hash seed, and the orders replayed would with it.
    candidates = [c for key in sorted(keys) for c in load_candidates(results, key, args.target)]
    if len(candidates) < 6:
        raise SystemExit(f"only {len(candidates)} runs of {args.recipe} in {args.results}")
    epochs = len(candidates[0][0])
    text = "\n".join(
        [
            f"{len(candidates)} measured curves ({args.recipe}: {epochs} epochs, every seed as its "
            f"own candidate) from `{args.results.name}`, latency on {args.target}, "
            f"{args.orders} random arrival orders, one worker. Rungs for {epochs} epochs: "
            + ", ".join(
                f"eta {eta}: {ParetoHalving.for_epochs(epochs, eta).rungs}" for eta in args.eta
            )
            + ".",
            "",
            "| compute allowed (share of all epochs) | rule | epochs trained (share) "
            "| hypervolume of the finished set (share of all) | true-front members finished |",
            "| --- | --- | --- | --- | --- |",
            *table_rows(candidates, args),
        ]
    )
    print(text)
    if args.section:
        write_section(
            args.section,
            "Scheduler replay: median rule against MO-ASHA on measured curves",
            text,
            packages=("optuna",),
        )


if __name__ == "__main__":
    main()
