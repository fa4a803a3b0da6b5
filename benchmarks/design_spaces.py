"""Design spaces compared as Radosavovic et al. (2019) compare them: error EDFs of sampled networks.

The mobile-network survey of Hozak & Paliy (2024) asks whether 2x2 depthwise kernels are worth
having, whether 1x1 pointwise convolutions can be replaced by grouped convolutions with a channel
shuffle, and whether whole blocks can be made of grouped convolutions and shuffles only. A search
answers none of this: it returns one network. A design space is judged by the distribution of
errors of networks drawn from it at random, at equal cost, so this benchmark draws networks from
four spaces that differ in one thing each (benchmarks/design_spaces/*.yaml):

- ``base``: the default `mobile` skeleton with MBConv blocks, dense pointwise, kernels 3/5/7;
- ``k2``: the same with 2x2 depthwise kernels allowed (question a);
- ``gpw``: every searched pointwise convolution grouped (2 or 4 groups) with a shuffle (b);
- ``so``: every searched block a shuffle-only block (c).

Networks are matched in latency: each is drawn at random from its space (every choice uniform,
as Optuna's random sampler draws) until its price on the matching table (`--match`, this
machine's measured x86_64 table by default) falls in the latency bin its position asks for;
positions cycle through `--bins` equal bins of `--band` ms in a seeded order shared by all
spaces, so every prefix of the sample holds the same latency mix in every space. The other
table's view (armv8) reweights the same networks so that each space puts equal mass on each of
its latency bins (the complexity normalisation of Radosavovic et al.).

Each network is trained once with one cheap recipe (`RECIPE`) on a stratified subset of the
CIFAR-10 JPEGs, one torch thread, and scored on held-out training images. The report draws each
space's error EDF with a 95% bootstrap band (resampling networks), and answers each question per
target from the data: the difference of mean error from ``base`` with its bootstrap interval and
a two-sample Kolmogorov-Smirnov test of the EDFs; "helps" or "hurts" only where the interval
excludes zero, otherwise "no difference beyond the noise".

Raw results go to benchmarks/results/design_spaces.json, merged under a lock after every
network; spaces are interleaved (network i of every space before network i+1 of any), so a run
stopped at any point is balanced, and a rerun resumes where it stopped:

    nice -n 19 python benchmarks/design_spaces.py --data-dir /tmp/nas-bench/cifar10 --minutes 600

On two cores, two processes (``--shard 0/2`` and ``--shard 1/2``) each train every other network;
the lock keeps their merges apart.
    python benchmarks/design_spaces.py --report-only
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from nas.config import SearchConfig  # noqa: E402
from nas.evaluators.latency import LatencyTable  # noqa: E402
from nas.evaluators.latency.table import load_table  # noqa: E402
from nas.pricing import estimate_price  # noqa: E402
from nas.search_spaces.arch import Arch  # noqa: E402
from nas.search_spaces.signatures import arch_signatures  # noqa: E402
from nas.search_spaces.space import SearchSpace, load_space  # noqa: E402

HERE = Path(__file__).resolve().parent
SPACES_DIR = HERE / "design_spaces"
RESULTS = HERE / "results" / "design_spaces.json"
FIGURE = HERE / "results" / "design_spaces.svg"
BASE = "base"
QUESTIONS = (
    ("k2", "(a) 2x2 depthwise kernels allowed"),
    ("gpw", "(b) pointwise replaced by grouped convolution + shuffle"),
    ("so", "(c) shuffle-only blocks"),
)
SPACES = (BASE, *(name for name, _ in QUESTIONS))
TARGETS = ("x86_64", "armv8")
TRAIN_IMAGES = 2000
VAL_COUNT = 1000
RECIPE = {"resolution": 16, "epochs": 2, "batch_size": 32}
"""The product's default CIFAR-10 search proxy (`nas.recipes.recipe_for`) with these changes:
two epochs at 16x16, batch 32, on a stratified 2,000-image subset (126 steps). The default
(2 epochs at 24x24, batch 128, on 45,000 images) costs a shared two-core machine tens of times
more per network, and a design space is judged on dozens of networks, not on one."""
BOOTSTRAP = 2000
MAX_DRAWS = 20_000
"""Draws allowed to fill one latency bin; a space that cannot reach a bin is a bad --band."""


# ---- sampling --------------------------------------------------------------------------------


class RandomSuggester:
    """Every choice uniform, as Optuna's RandomSampler draws them, from one seeded stream."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return choices[int(self.rng.integers(len(choices)))]


@dataclass(frozen=True)
class Plan:
    """What fixes the sample: a change in any field is another sample."""

    band: tuple[float, float]
    bins: int
    networks: int
    seed: int
    match: str

    def edges(self) -> np.ndarray:
        return np.linspace(self.band[0], self.band[1], self.bins + 1)

    def bin_order(self) -> list[int]:
        """The latency bin of each position: every cycle of `bins` positions visits each bin
        once, in a seeded order, so any prefix is as balanced as its length allows."""
        rng = np.random.default_rng(self.seed)
        order: list[int] = []
        while len(order) < self.networks:
            order += [int(b) for b in rng.permutation(self.bins)]
        return order[: self.networks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "band_ms": list(self.band),
            "bins": self.bins,
            "networks": self.networks,
            "seed": self.seed,
            "match": self.match,
        }


def sample_space(
    space: SearchSpace,
    plan: Plan,
    price_ms: Callable[[Arch], float],
    stream: int,
) -> list[Arch]:
    """`plan.networks` distinct networks of `space`, the i-th with its price in bin i of
    `plan.bin_order()`. Draws come from one stream per space, so a space's sample does not
    depend on which other spaces are compared."""
    rng = np.random.default_rng([plan.seed, stream])
    suggester = RandomSuggester(rng)
    edges = plan.edges()
    found: list[Arch] = []
    seen: set[str] = set()
    spare: dict[int, list[Arch]] = {b: [] for b in range(plan.bins)}
    for wanted in plan.bin_order():
        draws = 0
        while not spare[wanted]:
            draws += 1
            if draws > MAX_DRAWS:
                raise ValueError(
                    f"space {space.name!r}: no network in {edges[wanted]:.3g}-"
                    f"{edges[wanted + 1]:.3g} ms after {MAX_DRAWS} draws; narrow --band"
                )
            arch = space.sample(suggester)
            key = arch.network_key()
            if key in seen:
                continue
            ms = price_ms(arch)
            b = int(np.searchsorted(edges, ms, side="right")) - 1
            if 0 <= b < plan.bins:
                seen.add(key)
                spare[b].append(arch)  # kept for a later position that asks for its bin
        found.append(spare[wanted].pop(0))
    return found


def interleave(samples: dict[str, list[Arch]]) -> list[tuple[str, int, Arch]]:
    """(space, index, arch), network i of every space before network i+1 of any."""
    count = min(len(archs) for archs in samples.values())
    return [(name, i, samples[name][i]) for i in range(count) for name in samples]


def table_price(arch: Arch, table: LatencyTable, config: SearchConfig) -> dict[str, Any]:
    """A network's price on one table, with how much of it the table measured."""
    price = estimate_price(arch, config, table)
    estimate = table.price(arch_signatures(arch, config.deploy_input, config.deploy_classes))
    modelled_ms = sum(op.ms for op in estimate.ops if op.source != "measured")
    return {
        "ms": price.latency_ms,
        "n_measured": price.latency_n_measured,
        "n_modelled": price.latency_n_modelled,
        "modelled_share": round(modelled_ms / sum(op.ms for op in estimate.ops), 4),
    }


def describe_network(arch: Arch, tables: dict[str, LatencyTable]) -> dict[str, Any]:
    config = SearchConfig()
    prices = {target: table_price(arch, table, config) for target, table in tables.items()}
    first = estimate_price(arch, config, next(iter(tables.values())))
    return {
        "arch": arch.to_string(),
        "mflops": first.mflops,
        "params": first.params,
        "latency": prices,
    }


# ---- results ---------------------------------------------------------------------------------


class Results:
    """benchmarks/results/design_spaces.json: the sample (per plan) and one run per network."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"sample": None, "runs": {}}
        data = json.loads(self.path.read_text())
        data.setdefault("sample", None)
        data.setdefault("runs", {})
        return data

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply `change` to the stored data under a lock, written atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(Path(tempfile.gettempdir()) / f"{self.path.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.load()
            change(data)
            data["runs"] = dict(sorted(data["runs"].items()))
            temporary = self.path.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            os.replace(temporary, self.path)


def run_key(space: str, index: int, seed: int) -> str:
    return f"{space}|{index:03d}|s{seed}"


def get_sample(
    plan: Plan, results: Results, tables: dict[str, LatencyTable]
) -> dict[str, list[dict[str, Any]]]:
    """The stored sample when it was drawn with `plan`, else a fresh one (stored)."""
    stored = results.load()["sample"]
    if stored and stored.get("plan") == plan.to_dict():
        return stored["networks"]
    config = SearchConfig()
    match = tables[plan.match]
    networks: dict[str, list[dict[str, Any]]] = {}
    for stream, name in enumerate(SPACES):
        space = load_space(SPACES_DIR / f"{name}.yaml")
        started = time.process_time()
        archs = sample_space(
            space, plan, lambda arch: estimate_price(arch, config, match).latency_ms, stream
        )
        networks[name] = [describe_network(arch, tables) for arch in archs]
        print(f"sampled {name}: {len(archs)} networks, {time.process_time() - started:.0f} CPU s")

    def store(data: dict[str, Any]) -> None:
        data["sample"] = {"plan": plan.to_dict(), "networks": networks}

    results.update(store)
    return networks


def recipe(seed: int) -> Any:
    from nas.recipes import recipe_for

    base = recipe_for(SearchConfig(dataset="cifar10", cpus_per_trial=1, seed=seed))
    return base.replace(max_seconds=None).replace(**RECIPE)


def train_network(arch: Arch, data: Any, seed: int) -> dict[str, Any]:
    from nas.evaluators.training import train

    chosen = recipe(seed)
    started, wall = time.process_time(), time.perf_counter()
    result = train(arch, data, chosen)
    return {
        "status": result.status.value,
        "accuracy": result.accuracy,
        "error": None if result.accuracy is None else round(1 - result.accuracy, 6),
        "curve": [
            {k: r.to_dict()[k] for k in ("epoch", "val_accuracy", "train_loss")}
            for r in result.curve
        ],
        "message": result.error,
        "cpu_s": round(time.process_time() - started, 3),
        "wall_s": round(time.perf_counter() - wall, 3),
        "load": round(os.getloadavg()[0], 1),
        "recipe": chosen.to_dict(),
        "train_images": TRAIN_IMAGES,
        "val_images": len(data.val_labels),
    }


def run(args: argparse.Namespace, plan: Plan) -> None:
    import torch

    from nas.evaluators.datasets import load_dataset

    torch.set_num_threads(1)
    results = Results(args.results)
    tables = {target: load_table(target) for target in TARGETS}
    try:
        networks = get_sample(plan, results, tables)
    except ValueError as error:  # a --band a space cannot reach
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    deadline = time.time() + args.minutes * 60 if args.minutes else None
    data = load_dataset("imagefolder", args.data_dir, val_count=VAL_COUNT, limit_train=TRAIN_IMAGES)
    order = interleave(
        {name: [Arch.from_string(n["arch"]) for n in networks[name]] for name in SPACES}
    )
    wanted = recipe(args.seed).to_dict()
    shard, shards = args.shard
    for position, (name, index, arch) in enumerate(order):
        if position % shards != shard:
            continue
        key = run_key(name, index, args.seed)
        done = results.load()["runs"].get(key)
        if done and done["recipe"] == wanted and done["arch"] == arch.to_string():
            continue
        if deadline is not None and time.time() > deadline:
            print(f"time is up at {key}", flush=True)
            return
        record = {"space": name, "index": index, "arch": arch.to_string(), "seed": args.seed}
        record.update(train_network(arch, data, args.seed))

        def merge(stored: dict[str, Any], key: str = key, record: dict = record) -> None:
            stored["runs"][key] = record

        results.update(merge)
        print(
            f"{key}: error {record['error']} cpu {record['cpu_s']:.0f}s "
            f"wall {record['wall_s']:.0f}s load {record['load']}",
            flush=True,
        )


# ---- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Space:
    """One space's finished networks: error and price per target, in sample order."""

    name: str
    error: np.ndarray
    ms: dict[str, np.ndarray]


def collect(data: dict[str, Any], seed: int = 0) -> dict[str, Space]:
    """Each space's networks that trained, paired with their sampled prices."""
    sample = (data.get("sample") or {}).get("networks", {})
    spaces: dict[str, Space] = {}
    for name in SPACES:
        errors, ms = [], {t: [] for t in TARGETS}
        for index, network in enumerate(sample.get(name, [])):
            record = data["runs"].get(run_key(name, index, seed))
            if not record or record["status"] != "ok" or record["error"] is None:
                continue
            errors.append(record["error"])
            for target in TARGETS:
                ms[target].append(network["latency"][target]["ms"])
        spaces[name] = Space(name, np.array(errors), {t: np.array(v) for t, v in ms.items()})
    return spaces


def bin_weights(ms: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Weights that give each latency bin equal mass (zero outside `edges`, and for bins the
    space did not reach), normalised to sum to one: Radosavovic et al.'s complexity
    normalisation, with the bins shared by the spaces compared."""
    bins = np.searchsorted(edges, ms, side="right") - 1
    inside = (bins >= 0) & (bins < len(edges) - 1)
    weights = np.zeros(len(ms))
    if not inside.any():
        return weights
    counts = np.bincount(bins[inside], minlength=len(edges) - 1)
    weights[inside] = 1.0 / counts[bins[inside]]
    return weights / weights.sum()


def shared_edges(spaces: Sequence[Space], target: str, bins: int) -> np.ndarray:
    """`bins` equal bins over the latency range all of `spaces` cover on `target` (between the
    largest of the spaces' 5th percentiles and the smallest of their 95th)."""
    low = max(float(np.percentile(s.ms[target], 5)) for s in spaces)
    high = min(float(np.percentile(s.ms[target], 95)) for s in spaces)
    if high <= low:
        return np.array([])
    return np.linspace(low, high, bins + 1)


def weighted_edf(errors: np.ndarray, weights: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Share of the (weighted) networks with error at most each grid value."""
    return (weights[None, :] * (errors[None, :] <= grid[:, None])).sum(axis=1)


def bootstrap_indices(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, n, (BOOTSTRAP, n))


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    total = weights.sum()
    return float((values * weights).sum() / total) if total > 0 else float("nan")


@dataclass(frozen=True)
class Comparison:
    """One question on one target: a space against ``base``."""

    question: str
    space: str
    target: str
    n_base: int
    n_space: int
    mean_base: float
    mean_space: float
    diff: float
    low: float
    high: float
    ks_p: float

    @property
    def verdict(self) -> str:
        """Lower error is better; a difference counts only where its interval excludes zero."""
        if np.isnan(self.low):
            return "too few networks to tell"
        if self.high < 0:
            return "helps"
        if self.low > 0:
            return "hurts"
        return "no difference beyond the noise"


def compare(
    base: Space,
    other: Space,
    edges: np.ndarray,
    target: str,
    question: str,
    rng: np.random.Generator,
) -> Comparison:
    """Difference of the latency-normalised mean error (other minus base), with a 95%
    bootstrap interval resampling each space's networks (weights recomputed per resample), and
    the two-sample Kolmogorov-Smirnov p-value of the unweighted errors of networks inside the
    shared bins."""
    from scipy.stats import ks_2samp

    def normalised(space: Space) -> tuple[np.ndarray, np.ndarray]:
        return space.error, bin_weights(space.ms[target], edges)

    (eb, wb), (eo, wo) = normalised(base), normalised(other)
    mean_b, mean_o = weighted_mean(eb, wb), weighted_mean(eo, wo)
    inside_b, inside_o = wb > 0, wo > 0
    if inside_b.sum() < 3 or inside_o.sum() < 3:
        nan = float("nan")
        return Comparison(
            question, other.name, target, int(inside_b.sum()), int(inside_o.sum()),
            mean_b, mean_o, mean_o - mean_b, nan, nan, nan,
        )  # fmt: skip
    diffs = []
    for pick_b, pick_o in zip(
        bootstrap_indices(len(eb), rng), bootstrap_indices(len(eo), rng), strict=True
    ):
        wb_star = bin_weights(base.ms[target][pick_b], edges)
        wo_star = bin_weights(other.ms[target][pick_o], edges)
        diffs.append(weighted_mean(eo[pick_o], wo_star) - weighted_mean(eb[pick_b], wb_star))
    low, high = np.nanpercentile(diffs, [2.5, 97.5])
    p = float(ks_2samp(eb[inside_b], eo[inside_o]).pvalue)
    return Comparison(
        question, other.name, target, int(inside_b.sum()), int(inside_o.sum()),
        mean_b, mean_o, mean_o - mean_b, float(low), float(high), p,
    )  # fmt: skip


def edf_bands(
    space: Space, edges: np.ndarray, target: str, grid: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The normalised EDF on `grid` and its pointwise 95% bootstrap band."""
    weights = bin_weights(space.ms[target], edges)
    edf = weighted_edf(space.error, weights, grid)
    replicates = []
    for pick in bootstrap_indices(len(space.error), rng):
        w = bin_weights(space.ms[target][pick], edges)
        if w.sum() > 0:
            replicates.append(weighted_edf(space.error[pick], w, grid))
    low, high = np.percentile(np.array(replicates), [2.5, 97.5], axis=0)
    return edf, low, high


def plot(
    spaces: dict[str, Space], edges: np.ndarray, target: str, path: Path, seed: int = 0
) -> bool:
    """The EDFs on the matched target's bins; False (nothing written) with too few networks.

    One panel: the other target's view compares each space with base on a range of its own,
    so its EDFs would not share an axis; its numbers are in the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if min(len(s.error) for s in spaces.values()) < 2:
        return False
    everything = np.concatenate([s.error for s in spaces.values()])
    grid = np.linspace(everything.min() - 0.01, everything.max() + 0.01, 200)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    rng = np.random.default_rng(seed)
    labels = {BASE: "base (MBConv, dense 1x1, k 3/5/7)"} | {
        name: f"{name}: {what}" for name, what in QUESTIONS
    }
    for name, space in spaces.items():
        edf, low, high = edf_bands(space, edges, target, grid, rng)
        n = int((bin_weights(space.ms[target], edges) > 0).sum())
        (line,) = axis.step(grid, edf, where="post", label=f"{labels[name]} (n={n})")
        axis.fill_between(grid, low, high, step="post", alpha=0.2, color=line.get_color())
    axis.set_title(
        f"error EDFs, latency-matched on {target} ({edges[0]:.3g}-{edges[-1]:.3g} ms), "
        "95% bootstrap bands",
        fontsize=9,
    )
    axis.set_xlabel("error (1,000 held-out CIFAR-10 training images)")
    axis.set_ylabel("share of networks with error <= x")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return True


def report(data: dict[str, Any], plan: Plan, figure: Path | None, seed: int = 0) -> str:
    spaces = collect(data, seed)
    counts = {name: len(s.error) for name, s in spaces.items()}
    if min(counts.values()) < 2:
        return f"Networks trained per space: {counts}; too few to compare."
    # On the matched target, the bins the sample was drawn into; on the other, per question,
    # the range the two spaces compared both cover there (a sample matched on one table can
    # be far apart on another, and then that view has nothing to compare).
    edges = {
        (t, name): plan.edges()
        if t == plan.match
        else shared_edges([spaces[BASE], spaces[name]], t, plan.bins)
        for t in TARGETS
        for name, _ in QUESTIONS
    }
    rng = np.random.default_rng(seed)
    rows: list[Comparison] = []
    for target in TARGETS:
        for name, question in QUESTIONS:
            rows.append(
                compare(spaces[BASE], spaces[name], edges[target, name], target, question, rng)
            )
    drawn = figure is not None and plot(spaces, plan.edges(), plan.match, figure, seed)
    runs = [r for r in data["runs"].values() if r.get("status") == "ok"]
    shares = {
        name: {
            t: float(np.mean([n["latency"][t]["modelled_share"] for n in networks]))
            for t in TARGETS
        }
        for name, networks in data["sample"]["networks"].items()
    }
    lines = [
        f"Networks trained per space: {', '.join(f'{k} {v}' for k, v in counts.items())} of "
        f"{plan.networks} sampled per space (seed {plan.seed}), matched on {plan.match} in "
        f"{plan.bins} equal bins of {plan.band[0]:g}-{plan.band[1]:g} ms. Error: 1 - accuracy on "
        f"{VAL_COUNT:,} held-out training images after the recipe below. Each target's view "
        f"weights networks so that every space puts equal mass on {plan.bins} bins of a "
        f"latency range (shown per row): on {plan.match} the bins the sample was drawn into, on "
        f"the other the range both spaces compared cover (the larger 5th and the smaller 95th "
        f"percentile of their networks' prices there); n counts the "
        f"networks inside it; a comparison needs 3 on each side. Mean error difference: space "
        f"minus base, 95% bootstrap interval resampling networks ({BOOTSTRAP} resamples); "
        f"KS p: two-sample Kolmogorov-Smirnov test of the "
        f"errors inside the range. The verdict is read off the interval: helps (below zero), "
        f"hurts (above zero), else no difference beyond the noise.",
        "",
        "| question | target (range, ms) | n base / space | mean error base | mean error space "
        "| difference [95%] | KS p | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        e = edges[row.target, row.space]
        if not len(e):
            lines.append(
                f"| {row.question} | {row.target} (none) | | | | | | not comparable: the two "
                f"spaces' networks are priced apart on {row.target}, their ranges do not overlap |"
            )
            continue
        interval = "" if np.isnan(row.low) else f" [{row.low:+.3f}, {row.high:+.3f}]"
        p = "" if np.isnan(row.ks_p) else f"{row.ks_p:.2f}"
        lines.append(
            f"| {row.question} | {row.target} ({e[0]:.3g}-{e[-1]:.3g}) | {row.n_base} / "
            f"{row.n_space} | {row.mean_base:.3f} | {row.mean_space:.3f} | "
            f"{row.diff:+.3f}{interval} | {p} | {row.verdict} |"
        )
    spread = float(np.sqrt(np.mean([np.var(s.error, ddof=1) for s in spaces.values()])))
    floor = float(
        np.sqrt(np.mean([e * (1 - e) for s in spaces.values() for e in s.error]) / VAL_COUNT)
    )
    lines += [
        "",
        f"Spread: the error of networks within one space has a standard deviation of "
        f"{spread:.3f} (pooled over the spaces), of which {floor:.3f} is the scoring noise of "
        f"{VAL_COUNT:,} validation images alone. A difference of mean error that a 95% interval "
        f"separates from zero 4 times in 5 is about 2.8 x sd x sqrt(2/n): "
        f"{_detectable(spread, min(counts.values()))} with the networks trained so far, "
        f"{_detectable(spread, plan.networks)} with the {plan.networks} per space planned.",
    ]
    cpu = [r["cpu_s"] for r in runs]
    loads = [r["load"] for r in runs]
    lines += [
        "",
        "Share of each network's latency that its table modelled rather than measured when it "
        "was drawn (mean over the sample): "
        + "; ".join(
            f"{name} x86_64 {s['x86_64']:.0%}, armv8 {s['armv8']:.0%}" for name, s in shares.items()
        )
        + ".",
        "",
        f"Recipe: the default CIFAR-10 search proxy with {RECIPE} on a stratified "
        f"{TRAIN_IMAGES:,}-image subset, seed {seed}, one torch thread. Cost: median "
        f"{np.median(cpu):.0f} process CPU s per network (1-minute load average "
        f"{min(loads):.0f}-{max(loads):.0f} on {os.cpu_count()} cores while training, at "
        f"nice 19, so wall time was many times that).",
    ]
    if drawn:
        where = figure.relative_to(HERE.parent) if figure.is_relative_to(HERE.parent) else figure
        lines += ["", f"Figure: `{where}`"]
    return "\n".join(lines)


def rematch_lines(networks: dict[str, list[dict[str, Any]]], plan: Plan) -> list[str]:
    """How well the sample is still matched on the matching table as it is now: each network
    priced again, against the price it was drawn at. The sample keeps its draw-time prices (the
    report's bins), so a table that has since measured what it modelled shows here how far the
    match held, rather than moving networks between bins after they were trained."""
    table = load_table(plan.match)
    config = SearchConfig()
    lo, hi = plan.band
    rows = [
        f"The sample against the {plan.match} table as it is now (every network priced again; "
        f"the comparison above keeps the prices it was drawn at):",
        "",
        f"| space | modelled share now | price now / at draw, median [10-90%] "
        f"| inside {lo:g}-{hi:g} ms now | in its drawn bin now |",
        "|---|---|---|---|---|",
    ]
    edges = plan.edges()
    for name, sample in networks.items():
        then = np.array([n["latency"][plan.match]["ms"] for n in sample])
        priced = [table_price(Arch.from_string(n["arch"]), table, config) for n in sample]
        now = np.array([p["ms"] for p in priced])
        ratio = now / then
        same_bin = np.searchsorted(edges, now, side="right") == np.searchsorted(
            edges, then, side="right"
        )
        rows.append(
            f"| {name} | {np.mean([p['modelled_share'] for p in priced]):.0%} "
            f"| {np.median(ratio):.3f} [{np.quantile(ratio, 0.1):.3f}-"
            f"{np.quantile(ratio, 0.9):.3f}] | {np.mean((now >= lo) & (now < hi)):.0%} "
            f"| {np.mean(same_bin):.0%} |"
        )
    return rows


def _detectable(spread: float, n: int) -> str:
    """The mean difference an n-per-space comparison resolves (two-sided 5%, power 80%)."""
    return f"{(1.96 + 0.84) * spread * np.sqrt(2 / n):.3f} at n = {n}"


def _shard(text: str) -> tuple[int, int]:
    try:
        shard, shards = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N") from None
    if not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be 0 to N-1")
    return shard, shards


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/tmp/nas-bench/cifar10")
    parser.add_argument("--networks", type=int, default=64, help="networks sampled per space")
    parser.add_argument("--band", type=float, nargs=2, default=(4.5, 6.5), metavar=("LO", "HI"))
    parser.add_argument("--bins", type=int, default=4)
    parser.add_argument("--match", choices=TARGETS, default="x86_64")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--minutes", type=float, default=None, help="stop starting runs after")
    parser.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="K/N",
        help="train only every N-th network from the K-th (0-based): N processes, one core each",
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--section", default="design-spaces", help="'' to print only")
    args = parser.parse_args(argv)
    if args.band[0] >= args.band[1] or args.band[0] < 0:
        parser.exit(2, "--band needs 0 <= LO < HI (ms on the --match table)\n")
    if args.bins < 1 or args.networks < 1:
        parser.exit(2, "--bins and --networks must be at least 1\n")
    if not args.report_only and not Path(args.data_dir).is_dir():
        parser.exit(
            2, f"--data-dir {args.data_dir} is not a folder; unpack the CIFAR-10 JPEGs there\n"
        )
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    plan = Plan(tuple(args.band), args.bins, args.networks, args.sample_seed, args.match)
    if not args.report_only:
        run(args, plan)
    data = Results(args.results).load()
    if not data["sample"]:
        print("no sample yet: run without --report-only first")
        return
    stored = data["sample"]["plan"]
    plan = Plan(
        tuple(stored["band_ms"]),
        stored["bins"],
        stored["networks"],
        stored["seed"],
        stored["match"],
    )  # the report describes the sample the results hold, whatever the flags say
    text = report(data, plan, args.figure, args.seed)
    text += "\n\n" + "\n".join(rematch_lines(data["sample"]["networks"], plan))
    print(text)
    if args.section:
        body = (
            f"What is compared and how, and the answers in words: docs/design-spaces.md.\n\n{text}"
        )
        write_section(args.section, "Design spaces: 2x2 kernels and shuffles", body, ("torch",))


if __name__ == "__main__":
    main()
