"""Proxies against NAS-Bench-Macro: does any cheap signal rank networks as published training does?

The other proxy benchmarks judge against a reference the project trained itself. This one judges
against accuracies nobody here measured: NAS-Bench-Macro's three-run means (50 epochs on all of
CIFAR-10, three runs per network). A seeded, stratified sample of distinct networks (keys that
differ only in where a plain skip sits are one network, `Arch.network_key`) is spread over the
table's FLOPs, with half of it inside one FLOP band (`--band`, 40-60 MFLOPs by default), where
FLOPs alone rank poorly and a proxy would earn its cost.

Each network is judged by:

- its FLOPs and parameters (the table's own counts);
- the zero-cost scores of `nas.evaluators.zero_cost` on one minibatch of training images at
  the table's 32x32 geometry;
- each proxy recipe of `--recipes`: the product's default search proxy for CIFAR-10
  (`nas.recipes.recipe_for`) with the changes its name gives, trained on a stratified subset of
  the CIFAR-10 JPEGs and scored on 1,000 held-out training images; its validation accuracy and
  the mean training loss of its first epoch (the "first-epoch loss" signal).

For each signal: Kendall tau against the three-run mean over the whole sample and inside the
band, each with a bootstrap-over-networks 95% interval, the paired bootstrap of its difference
from FLOPs' tau inside the band, and the precision of its top 10%; the table's own run 1
against run 2 on the same sample is the ceiling. Costs are process CPU seconds (one torch
thread), which a shared machine inflates less than wall time.

Raw results go to benchmarks/results/proxy_truth.json, merged under a lock after every network,
so a killed run loses at most one network's training and a rerun skips what is done:

    mkdir -p /tmp/nas-bench/cifar10 && tar -xf ../shared/datasets/cifar10-jpeg.tar -C /tmp/nas-bench/cifar10
    nice -n 15 python benchmarks/proxy_truth.py --data-dir /tmp/nas-bench/cifar10 --minutes 120
    python benchmarks/proxy_truth.py --report-only
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from nas.config import SearchConfig  # noqa: E402
from nas.errors import InputError  # noqa: E402
from nas.evaluators.datasets import Dataset, load_dataset, to_float  # noqa: E402
from nas.evaluators.nasbench_macro import NasBenchMacro  # noqa: E402
from nas.evaluators.recipe import Recipe  # noqa: E402
from nas.evaluators.training import build_proxy_model, train  # noqa: E402
from nas.evaluators.zero_cost import SCORES, zero_cost_scores  # noqa: E402
from nas.recipes import recipe_for  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "proxy_truth.json"
VAL_COUNT = 1000
MINIBATCH = 64
BOOTSTRAP = 2000
MIN_NETWORKS = 8
"""Fewest networks inside the band a signal must have reached to get a row in the report."""


@dataclass(frozen=True)
class ProxySpec:
    """A proxy: the default search recipe with `changes`, trained on `train_images` images."""

    name: str
    train_images: int
    changes: tuple[tuple[str, Any], ...]
    what: str

    def recipe(self, seed: int) -> Recipe:
        base = recipe_for(SearchConfig(dataset="cifar10", cpus_per_trial=1, seed=seed))
        return base.replace(max_seconds=None).replace(**dict(self.changes))


PROXIES = {
    spec.name: spec
    for spec in (
        ProxySpec(
            "r16-e1",
            2000,
            (("resolution", 16), ("epochs", 1), ("batch_size", 32)),
            "one epoch at 16x16, batch 32, on 2,000 images (62 steps)",
        ),
        ProxySpec(
            "r16-e2",
            2000,
            (("resolution", 16), ("batch_size", 32)),
            "two epochs at 16x16, batch 32, on 2,000 images (124 steps)",
        ),
        ProxySpec(
            "r24-e1",
            2000,
            (("epochs", 1), ("batch_size", 32)),
            "one epoch at the default 24x24, batch 32, on 2,000 images (62 steps)",
        ),
        ProxySpec(
            "default-2k",
            2000,
            (),
            "the default search proxy unchanged (2 epochs, 24x24, batch 128) on 2,000 images",
        ),
    )
}
"""Recipes by name. The default search proxy trains 2 epochs on 45,000 images (about 700 steps
of 128); a shared two-core machine affords a few percent of that per network, so these are the
default cut to a 2,000-image subset, with batch 32 to keep the step count in the tens
(batch 128 on so few images leaves every network at chance). r16-e1 against r16-e2: epochs;
r16-e1 against r24-e1: resolution."""
ZERO_COST = "zero-cost"
DEFAULT_PLAN = (
    "zero-cost:60",
    "r16-e1:60",
    "zero-cost:120",
    "r24-e1:60",
    "r16-e2:60",
    "r16-e1:120",
)
"""Passes over the sample, in order: NAME:COUNT runs NAME on the first COUNT networks of the
sample order. Cheap signals cover the sample first, so a run stopped at any point leaves every
finished signal on a balanced prefix of the sample."""


def canonical_sample(
    table: NasBenchMacro, band: tuple[float, float], count: int, seed: int
) -> list[str]:
    """Keys of `count` distinct networks, in an order whose every prefix is balanced.

    Half come from inside the FLOP band (uniformly at random), half from outside it, one from
    each of ten FLOP bins in turn, so the sample spans the table's range; the two halves
    alternate. One key stands for each network (the smallest of its keys).
    """
    networks: dict[tuple[str, ...], str] = {}
    depths = [stage.depth[0] for stage in table.space.stages]
    for key in sorted(table.rows):
        networks.setdefault(network_of(key, depths), key)
    keys = sorted(networks.values())
    mflops = {key: table.rows[key]["flops"] / 1e6 for key in keys}
    rng = np.random.default_rng(seed)
    inside = [k for k in keys if band[0] <= mflops[k] <= band[1]]
    outside = sorted((k for k in keys if not band[0] <= mflops[k] <= band[1]), key=mflops.get)
    inside = [inside[i] for i in rng.permutation(len(inside))]
    bins = [list(b) for b in np.array_split(np.array(outside), 10)]
    for b in bins:
        rng.shuffle(b)
    spread: list[str] = []
    while any(bins):
        for index in rng.permutation(len(bins)):
            if bins[index]:
                spread.append(str(bins[index].pop()))
    order: list[str] = []
    for a, b in zip(inside, spread):
        order += [a, b]
    return order[:count]


def network_of(key: str, depths: list[int]) -> tuple[str, ...]:
    """Per stage, the first layer's digit and the digits of its other layers with the skips
    left out: a skip after a stage's first layer changes no shape, so it is no operator, and
    keys that differ only in where such skips sit are one network (`Arch.network_key`, which
    this reads off the digits without building thousands of architectures)."""
    parts, start = [], 0
    for depth in depths:
        stage = key[start : start + depth]
        parts.append(stage[0] + stage[1:].replace("0", ""))
        start += depth
    return tuple(parts)


class Results:
    """benchmarks/results/proxy_truth.json: zero-cost scores per network, runs per key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"zero_cost": {}, "runs": {}}
        data = json.loads(self.path.read_text())
        data.setdefault("zero_cost", {})
        data.setdefault("runs", {})
        return data

    def merge(self, zero_cost: dict[str, Any], runs: dict[str, Any], meta: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(Path(tempfile.gettempdir()) / f"{self.path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.load()
            data["zero_cost"].update(zero_cost)
            data["runs"].update(runs)
            data["meta"] = meta
            data["zero_cost"] = dict(sorted(data["zero_cost"].items()))
            data["runs"] = dict(sorted(data["runs"].items()))
            temporary = self.path.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            os.replace(temporary, self.path)


def run_key(key: str, proxy: str, seed: int) -> str:
    return f"{key}|{proxy}|s{seed}"


def score_network(arch: Any, data: Dataset) -> dict[str, Any]:
    """Zero-cost scores at the table's geometry on the first `MINIBATCH` training images."""
    started = time.process_time()
    model = build_proxy_model(arch, data, Recipe(seed=0, threads=1))
    images = to_float(data.train_images[:MINIBATCH], data.mean, data.std)
    labels = data.train_labels[:MINIBATCH]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        scores = zero_cost_scores(model, images, labels)
    return {
        "scores": scores,
        "cpu_s": round(time.process_time() - started, 3),
        "load": round(os.getloadavg()[0], 1),
    }


def train_once(arch: Any, data: Dataset, spec: ProxySpec, seed: int) -> dict[str, Any]:
    recipe = spec.recipe(seed)
    started, wall = time.process_time(), time.perf_counter()
    result = train(arch, data, recipe)
    fields = ("epoch", "val_accuracy", "val_loss", "train_loss")
    return {
        "status": result.status.value,
        "accuracy": result.accuracy,
        "val_loss": result.curve[-1].val_loss if result.curve else None,
        "first_epoch_loss": result.curve[0].train_loss if result.curve else None,
        "curve": [{k: r.to_dict()[k] for k in fields} for r in result.curve],
        "error": result.error,
        "cpu_s": round(time.process_time() - started, 3),
        "wall_s": round(time.perf_counter() - wall, 3),
        "load": round(os.getloadavg()[0], 1),
        "train_images": spec.train_images,
        "val_images": len(data.val_labels),
        "recipe": recipe.to_dict(),
    }


def parse_plan(plan: list[str], networks: int) -> list[tuple[str, int]]:
    """[(signal, count)] from NAME:COUNT tokens; a bad token is a clear error (exit 2)."""
    passes = []
    for token in plan:
        name, _, count = token.partition(":")
        if name != ZERO_COST and name not in PROXIES or not count.isdigit() or int(count) < 1:
            raise InputError(
                f"bad pass {token!r}: use NAME:COUNT with NAME {ZERO_COST} or one of "
                f"{', '.join(PROXIES)}"
            )
        passes.append((name, min(int(count), networks)))
    return passes


def run(args: argparse.Namespace, table: NasBenchMacro, keys: list[str]) -> None:
    results = Results(args.results)
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    passes = parse_plan(args.plan, len(keys))
    sizes = sorted({PROXIES[name].train_images for name, _ in passes if name in PROXIES} | {2000})
    data = {
        n: load_dataset("imagefolder", args.data_dir, val_count=VAL_COUNT, limit_train=n)
        for n in sizes
    }
    meta = {
        "band_mflops": list(args.band),
        "sample_seed": args.sample_seed,
        "val_count": VAL_COUNT,
        "minibatch": MINIBATCH,
        "threads": 1,
        "torch": torch.__version__,
    }
    for name, count in passes:
        for index, key in enumerate(keys[:count], 1):
            done = results.load()
            arch = table.arch_of(key)
            zero: dict[str, Any] = {}
            runs: dict[str, Any] = {}
            if name == ZERO_COST:
                if key in done["zero_cost"] and set(done["zero_cost"][key]["scores"]) == set(
                    SCORES
                ):
                    continue
            elif all(
                run_key(key, name, seed) in done["runs"]
                and done["runs"][run_key(key, name, seed)]["recipe"]
                == PROXIES[name].recipe(seed).to_dict()
                for seed in args.seeds
            ):
                continue
            if deadline is not None and time.time() > deadline:
                print(f"time is up, in pass {name}:{count} at network {index}", flush=True)
                return
            if name == ZERO_COST:
                zero[key] = score_network(arch, data[2000])
                note = f"cpu {zero[key]['cpu_s']:.1f}s"
            else:
                spec = PROXIES[name]
                for seed in args.seeds:
                    runs[run_key(key, name, seed)] = train_once(
                        arch, data[spec.train_images], spec, seed
                    )
                last = runs[run_key(key, name, args.seeds[-1])]
                note = f"acc {last['accuracy']} cpu {last['cpu_s']:.1f}s wall {last['wall_s']:.1f}s"
            results.merge(zero, runs, meta)
            print(f"{name}:{count} [{index}] {key}: {note}", flush=True)


# ---- the report ---------------------------------------------------------------------------------


def _tau(score: np.ndarray, truth: np.ndarray) -> float:
    return float(kendalltau(score, truth).statistic)


def _top_precision(score: np.ndarray, truth: np.ndarray, share: float = 0.1) -> float:
    k = max(1, round(share * len(score)))
    return len(set(np.argsort(-score)[:k]) & set(np.argsort(-truth)[:k])) / k


def signals(
    table: NasBenchMacro, keys: list[str], data: dict[str, Any]
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    """{signal: {key: value, higher ranking higher}} over `keys`, and CPU seconds per network.

    FLOPs and parameters are given for every network that has any measured signal.
    """
    values: dict[str, dict[str, float]] = {"FLOPs": {}, "params": {}}
    cost: dict[str, list[float]] = {}
    for key in keys:
        zero = data["zero_cost"].get(key)
        if zero:
            for name, value in zero["scores"].items():
                values.setdefault(name, {})[key] = value
            cost.setdefault(ZERO_COST, []).append(zero["cpu_s"])
        measured = bool(zero)
        for proxy in PROXIES:
            record = data["runs"].get(run_key(key, proxy, 0))
            if record is None or record["status"] != "ok":
                continue
            measured = True
            values.setdefault(f"{proxy} accuracy", {})[key] = record["accuracy"]
            values.setdefault(f"{proxy} val loss", {})[key] = -record["val_loss"]
            values.setdefault(f"{proxy} first-epoch loss", {})[key] = -record["first_epoch_loss"]
            cost.setdefault(proxy, []).append(record["cpu_s"])
        if measured:
            values["FLOPs"][key] = table.rows[key]["flops"]
            values["params"][key] = table.rows[key]["params"]
    return values, cost


def taus_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair of `x` and `y` (shape: rows, networks), as scipy's
    `kendalltau` computes it (pairs tied in either are left out of that side's count), all rows
    at once: the bootstrap needs thousands of taus, and scipy's one call per tau is too slow on
    a busy machine."""
    dx = np.sign(x[:, :, None] - x[:, None, :])
    dy = np.sign(y[:, :, None] - y[:, None, :])
    n = x.shape[1]
    pairs = n * (n - 1)
    untied_x = pairs - (np.count_nonzero(dx == 0, axis=(1, 2)) - n)
    untied_y = pairs - (np.count_nonzero(dy == 0, axis=(1, 2)) - n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dy).sum(axis=(1, 2)) / np.sqrt(untied_x * untied_y.astype(float))


def _bootstrap(
    score: np.ndarray, truth: np.ndarray, base: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates of tau and of tau minus `base`'s tau, resampling networks (paired)."""
    n = len(score)
    taus, diffs = [], []
    for _ in range(0, BOOTSTRAP, 250):
        pick = rng.integers(0, n, (250, n))
        t = taus_b(score[pick], truth[pick])
        taus.append(t)
        diffs.append(t - taus_b(base[pick], truth[pick]))
    return np.concatenate(taus), np.concatenate(diffs)


def _bounds(replicates: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    return np.nanpercentile(replicates, [100 * alpha / 2, 100 * (1 - alpha / 2)])


def _interval(value: float, bounds: np.ndarray, signed: bool = False) -> str:
    form = "+.2f" if signed else ".2f"
    head = f"{value:+.3f}" if signed else f"{value:.3f}"
    return f"{head} [{bounds[0]:{form}}, {bounds[1]:{form}}]"


def report(
    table: NasBenchMacro, keys: list[str], data: dict[str, Any], args: argparse.Namespace
) -> str:
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message=".*too small.*")
    values, cost = signals(table, keys, data)
    if len(values["FLOPs"]) < 8:
        return f"{len(values['FLOPs'])} networks measured; too few to judge."
    rows = table.rows

    def in_band(key: str) -> bool:
        return args.band[0] <= rows[key]["flops"] / 1e6 <= args.band[1]

    rng = np.random.default_rng(0)
    measured = list(values["FLOPs"])
    lines = [
        f"Sample: {len(measured)} distinct networks measured, {sum(map(in_band, measured))} of "
        f"them inside the {args.band[0]:g}-{args.band[1]:g} MFLOP band (sample seed "
        f"{args.sample_seed}); each signal is judged on the networks it reached (n: all / band), "
        f"always a prefix of one balanced sample order. Truth: the table's three-run mean test "
        f"accuracy. Intervals: 95%, bootstrap over networks ({BOOTSTRAP} resamples). "
        f"\"band minus FLOPs\": the signal's band tau minus FLOPs' band tau on the same networks, "
        f"with its paired bootstrap interval; an interval above zero is a win beyond the noise. "
        f"Top 10%: the share of the signal's top tenth that is in the truth's top tenth (all "
        f"networks it reached). CPU s: median process CPU seconds per network, one torch thread, "
        f"at nice 15 on a machine shared with other heavy work ({_loads(data)}), so they are "
        f"upper bounds.",
        "",
        "| signal | n | tau, all | tau, band | band minus FLOPs | top 10% | CPU s / network |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, subset in (("all", measured), ("band", [k for k in measured if in_band(k)])):
        r1 = np.array([rows[k]["test_acc"][0] for k in subset])
        r2 = np.array([rows[k]["test_acc"][1] for k in subset])
        bounds = _bounds(_bootstrap(r1, r2, r1, rng)[0])
        lines.append(
            f"| table run 1 vs run 2 ({label}: the ceiling) | {len(subset)} | "
            + (
                f"{_interval(_tau(r1, r2), bounds)} | |"
                if label == "all"
                else f"| {_interval(_tau(r1, r2), bounds)} |"
            )
            + " | | 50 epochs, all images |"
        )
    wins, losses = [], []
    replicates: dict[str, np.ndarray] = {}
    for name, by_key in values.items():
        reached = [k for k in measured if k in by_key]
        band = [k for k in reached if in_band(k)]
        if len(band) < MIN_NETWORKS:
            continue
        truth_all = np.array([rows[k]["mean_acc"] for k in reached])
        truth_band = np.array([rows[k]["mean_acc"] for k in band])
        score_all = np.array([by_key[k] for k in reached], dtype=float)
        score_band = np.array([by_key[k] for k in band], dtype=float)
        flops_band = np.array([rows[k]["flops"] for k in band], dtype=float)
        tau_all, tau_band = _tau(score_all, truth_all), _tau(score_band, truth_band)
        bounds_all = _bounds(_bootstrap(score_all, truth_all, score_all, rng)[0])
        taus_band, diffs_band = _bootstrap(score_band, truth_band, flops_band, rng)
        bounds_band, bounds_diff = _bounds(taus_band), _bounds(diffs_band)
        replicates[name] = diffs_band
        diff = tau_band - _tau(flops_band, truth_band)
        lines.append(
            f"| {name} | {len(reached)} / {len(band)} | {_interval(tau_all, bounds_all)} | "
            f"{_interval(tau_band, bounds_band)} | "
            f"{'' if name == 'FLOPs' else _interval(diff, bounds_diff, signed=True)} | "
            f"{_top_precision(score_all, truth_all):.2f} | {_cpu(name, cost)} |"
        )
        if name != "FLOPs" and bounds_diff[0] > 0:
            wins.append(name)
        if name != "FLOPs" and bounds_diff[1] < 0:
            losses.append(name)
    verdict = (
        f"beyond the noise, {', '.join(wins)} rank{'s' if len(wins) == 1 else ''} networks "
        f"inside the band better than FLOPs"
        if wins
        else "no signal ranks networks inside the band better than FLOPs beyond the noise "
        "(every interval of the difference from FLOPs reaches zero or below)"
    )
    strict = 0.05 / max(len(replicates) - 1, 1)
    held = [name for name in wins if _bounds(replicates[name], strict)[0] > 0]
    if wins:
        verdict += (
            f"; with {len(replicates) - 1} signals compared with FLOPs, "
            + (
                f"{', '.join(held)} still win{'s' if len(held) == 1 else ''}"
                if held
                else "none still wins"
            )
            + f" at the Bonferroni-corrected level (a {100 * (1 - strict):.1f}% interval)"
        )
    if losses:
        verdict += f"; {', '.join(losses)} rank{'s' if len(losses) == 1 else ''} worse than FLOPs beyond the noise"
    lines += [
        "",
        f"Verdict, computed from the intervals above: {verdict}.",
        "",
        "Proxies: the product's default CIFAR-10 search recipe (`nas.recipes.recipe_for`: "
        "onecycle, label smoothing 0.1, stride plan m2), with the changes named, scored on 1,000 "
        "held-out training images, seed 0: "
        + "; ".join(f"`{name}` {spec.what}" for name, spec in PROXIES.items() if name in cost)
        + '. "val loss" and "first-epoch loss" (the mean training loss of the run\'s first '
        "epoch) rank lower losses higher. Zero-cost scores: one minibatch of 64 training images "
        "at 32x32, seed-0 initialisation (`nas.evaluators.zero_cost`). FLOPs and parameters: the "
        "table's own counts.",
        "",
        "Reached, of the plan (`--plan`): " + _progress(args, keys, data) + ". Not run: the "
        "default proxy on all 45,000 training images (90,000 image passes at 24x24 per network, "
        "against 2,000 at 16x16 for r16-e1) and the project's reference recipe of "
        "`proxy_ranking.py` (8 epochs on 10,000 images); neither fits a shared two-core machine "
        "for tens of networks.",
    ]
    return "\n".join(lines)


def _progress(args: argparse.Namespace, keys: list[str], data: dict[str, Any]) -> str:
    """'NAME reached/planned networks' per signal of the plan, zero-cost scores included."""
    planned: dict[str, int] = {}
    for name, count in parse_plan(args.plan, len(keys)):
        planned[name] = max(planned.get(name, 0), count)
    parts = []
    for name, count in planned.items():
        if name == ZERO_COST:
            reached = sum(key in data["zero_cost"] for key in keys[:count])
        else:
            reached = sum(run_key(key, name, 0) in data["runs"] for key in keys[:count])
        parts.append(f"{name} {reached} of {count} networks")
    return ", ".join(parts)


def _loads(data: dict[str, Any]) -> str:
    loads = [
        r["load"] for r in [*data["zero_cost"].values(), *data["runs"].values()] if "load" in r
    ]
    if not loads:
        return "load not recorded"
    return f"1-minute load average {min(loads):.0f}-{max(loads):.0f} on 2 cores, median {np.median(loads):.0f}"


def _cpu(name: str, cost: dict[str, list[float]]) -> str:
    if name in SCORES:
        times = cost.get(ZERO_COST, [])
        return f"{np.median(times):.1f} (all four)" if times else ""
    for proxy, times in cost.items():
        if name.startswith(f"{proxy} "):
            return f"{np.median(times):.1f}" + ("" if name.endswith("accuracy") else " (same run)")
    return "0 (table)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/nas-bench/cifar10")
    parser.add_argument("--networks", type=int, default=120, help="sample size to work through")
    parser.add_argument("--band", type=float, nargs=2, default=(40.0, 60.0), metavar=("LO", "HI"))
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument(
        "--plan", nargs="+", default=list(DEFAULT_PLAN), help="passes NAME:COUNT, in order"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--minutes", type=float, default=None, help="stop starting runs after")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--section", default="proxy-truth", help="'' to print only")
    args = parser.parse_args()
    if args.band[0] >= args.band[1] or args.networks < 2:
        print("--band needs LO < HI and --networks at least 2", file=sys.stderr)
        raise SystemExit(2)
    try:
        parse_plan(args.plan, args.networks)
    except InputError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    if not args.report_only and not Path(args.data_dir).is_dir():
        print(
            f"--data-dir {args.data_dir} is not a folder; unpack the CIFAR-10 JPEGs there",
            file=sys.stderr,
        )
        raise SystemExit(2)
    torch.set_num_threads(1)
    table = NasBenchMacro.load()
    keys = canonical_sample(table, tuple(args.band), args.networks, args.sample_seed)
    if not args.report_only:
        run(args, table, keys)
    text = report(table, keys, Results(args.results).load(), args)
    print(text)
    if args.section:
        write_section(
            args.section, "Proxies against NAS-Bench-Macro", text, packages=("torch", "scipy")
        )


if __name__ == "__main__":
    main()
