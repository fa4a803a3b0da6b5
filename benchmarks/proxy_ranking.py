"""Can a proxy rank the space? A reference that can judge, and proxies of several geometries.

The older fidelity benchmark (`proxy_fidelity.py`) compared proxies with a reference that
agreed with its own rerun at a Kendall tau of 0.52: its architectures sat within a few points
of each other and its geometry (the 224x224 skeleton at 32x32) hid most of their differences.
This one judges with a reference built to be able to:

- **Architectures spanning the space and the zoo**: the space's cheapest member, `--archs`
  random members spread evenly over MFLOPs at 224 from the smallest to the largest of a pool of
  random draws, and the zoo networks under `--zoo-mflops` (those a search compares itself with).
  Optionally the space's dearest member (`--dearest`), which costs four times a typical one.
- **A reference trained with a faithful geometry**: the recipe spec `--reference` (default
  ``e8-m2``: 8 epochs, stride plan keeping the last maps at least 2x2, as the deployed network
  keeps 7x7 at 224), trained with every seed of `--reference-seeds`. Its first figure is its
  agreement with its own rerun (seed 0 against seed 1): what any proxy scores against one
  reference run is bounded by it.
- **Proxies** given as recipe specs (`--proxies`), each trained with `--proxy-seeds`.

A recipe spec is the default recipe changed by dash-separated tokens: ``e<N>`` epochs,
``r<N>`` training resolution (every split resized), ``m<N>`` the stride plan's minimum last
map, ``b<N>`` batch size. ``e4`` is today's default proxy; ``e2-m2`` two epochs with the
stride plan; ``e3-r24-m2`` three epochs at 24x24 with the stride plan.

Every finished run is written at once to the results file (keyed by arch and recipe, the same
format as `proxy_fidelity.py`'s), so an interrupted run resumes where it stopped; runs are
ordered arch by arch (the references of one arch, then its proxies), with the architectures in
an order that spans the set early, so a partial file already gives figures over a spread of
architectures. `benchmarks/results/proxy_ranking.json` holds the runs recorded in
BENCHMARKS.md; resume from it on any machine with the CIFAR-10 JPEGs unpacked:

    mkdir -p /tmp/nas-bench/cifar10 && tar -xf ../shared/datasets/cifar10-jpeg.tar -C /tmp/nas-bench/cifar10
    nohup python benchmarks/proxy_ranking.py --data-dir /tmp/nas-bench/cifar10 \\
        > /tmp/nas-bench/ranking.log 2>&1 &
    python benchmarks/proxy_ranking.py --data-dir /tmp/nas-bench/cifar10 --report-only
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402
from proxy_fidelity import (  # noqa: E402
    Results,
    _nearest_free,
    _random_pool,
    dataset_kwargs,
    recipe_key,
    run_all,
)

from nas.evaluators.datasets import Dataset, load_dataset  # noqa: E402
from nas.evaluators.flops import estimate_cost  # noqa: E402
from nas.evaluators.recipe import Recipe  # noqa: E402
from nas.search_spaces.arch import Arch  # noqa: E402
from nas.search_spaces.space import load_space  # noqa: E402
from nas.search_spaces.zoo import ZOO  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "proxy_ranking.json"
SPEC_FIELDS = {"e": "epochs", "r": "resolution", "m": "min_final_map", "b": "batch_size"}


def parse_spec(spec: str, base: Recipe) -> Recipe:
    """The recipe a spec such as ``e3-r24-m2`` names: `base` with those fields changed."""
    changes: dict[str, int] = {}
    for token in spec.split("-"):
        field = SPEC_FIELDS.get(token[:1])
        if field is None or not token[1:].isdigit():
            raise SystemExit(
                f"bad recipe spec {spec!r}: tokens are e<epochs>, r<resolution>, "
                f"m<min final map>, b<batch size>, joined by '-'"
            )
        changes[field] = int(token[1:])
    return base.replace(**changes)


def judge_set(
    space_name: str, count: int, seed: int, zoo_mflops: float, dearest: bool
) -> list[tuple[str, Arch]]:
    """(role, arch) pairs: the space's cheapest, `count` random members, the zoo, maybe dearest.

    The random members are the pool members nearest to MFLOPs targets evenly spaced from the
    pool's smallest to its largest, so the set covers the space from end to end rather than
    where random draws are common.
    """
    space = load_space(space_name)
    pool = _random_pool(space_name, seed, 3000)
    low, high = pool[0][0], pool[-1][0]
    targets = [low + (high - low) * i / max(count - 1, 1) for i in range(count)]
    chosen = [("cheapest", space.cheapest())]
    chosen += [("random", arch) for arch in _nearest_free(pool, targets)]
    if dearest:
        chosen.append(("dearest", space.dearest()))
    for name, factory in ZOO.items():
        arch = factory()
        if estimate_cost(arch).mflops <= zoo_mflops:
            chosen.append((name, arch))
    return chosen


def spread_order(items: list[Any], key: Any) -> list[Any]:
    """`items` reordered so that any prefix spans their range: ends first, then midpoints."""
    ordered = sorted(items, key=key)
    if len(ordered) <= 2:
        return ordered
    picked = [0, len(ordered) - 1]
    while len(picked) < len(ordered):
        taken = sorted(picked)
        gaps = [(taken[i + 1] - taken[i], taken[i]) for i in range(len(taken) - 1)]
        width, start = max(gaps)
        if width < 2:
            picked += [i for i in range(len(ordered)) if i not in picked]
            break
        picked.append(start + width // 2)
    return [ordered[i] for i in picked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="imagefolder")
    parser.add_argument("--data-dir", default="/tmp/nas-bench/cifar10")
    parser.add_argument("--limit-train", type=int, default=10000)
    parser.add_argument("--val-count", type=int, default=5000)
    parser.add_argument("--space", default="mobile")
    parser.add_argument("--archs", type=int, default=7, help="random members of the space")
    parser.add_argument("--zoo-mflops", type=float, default=150.0)
    parser.add_argument("--dearest", action="store_true", help="add the space's dearest member")
    parser.add_argument("--seed", type=int, default=0, help="architecture sampling seed")
    parser.add_argument("--reference", default="e8-m2")
    parser.add_argument("--reference-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--proxies", nargs="+", default=["e4", "e2-m2", "e3-r24-m2", "e4-r16-m2", "e2-r24-m2"]
    )
    parser.add_argument("--proxy-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--section", default="proxy-ranking", help="'' to print only")
    args = parser.parse_args()

    base = Recipe(threads=args.threads, max_seconds=None)
    reference = parse_spec(args.reference, base)
    proxies = {spec: parse_spec(spec, base) for spec in args.proxies}
    data_kwargs = dataset_kwargs(args)
    data = load_dataset(**data_kwargs)
    members = judge_set(args.space, args.archs, args.seed, args.zoo_mflops, args.dearest)
    members = spread_order(members, key=lambda item: estimate_cost(item[1]).mflops)
    results = Results(args.results)
    print(f"{data!r}; {len(members)} architectures; reference {args.reference}", flush=True)
    if not args.report_only:
        jobs: list[tuple[Arch, Recipe, str]] = []
        for _, arch in members:
            jobs += [(arch, reference.replace(seed=s), f"ref s{s}") for s in args.reference_seeds]
            for spec, proxy in proxies.items():
                jobs += [(arch, proxy.replace(seed=s), f"{spec} s{s}") for s in args.proxy_seeds]
        todo = sum(results.get(a, r) is None for a, r, _ in jobs)
        print(f"{todo} of {len(jobs)} runs to train, {args.jobs} at a time", flush=True)
        run_all(jobs, data, data_kwargs, results, args.jobs)
    text = report(args, data, members, results, reference, proxies)
    print(text)
    if args.section:
        write_section(
            args.section,
            "Proxy ranking: a reference that can judge, and proxies by geometry",
            text,
            packages=("torch", "optuna", "scipy"),
        )


def _accuracy(result: dict | None) -> float | None:
    if result is None or result.get("status") != "ok":
        return None
    return float(result["accuracy"])


def _tau(a: list[float], b: list[float]) -> str:
    if len(a) < 3:
        return "n/a"
    test = stats.kendalltau(a, b)
    return f"{test.statistic:.3f} (p {test.pvalue:.2g})"


def seconds_at(mflops: list[float], seconds: list[float], at: float = 150.0) -> float | None:
    """CPU seconds of one run at `at` MFLOPs (at 224), from a least-squares line over the set.

    A run's time grows about linearly with its multiply-adds; the line reads the cost of a
    150-MFLOP candidate off every architecture trained rather than the one or two nearest.
    """
    if len(mflops) < 2:
        return None
    fit = stats.linregress(mflops, seconds)
    return float(fit.intercept + fit.slope * at)


def report(
    args: argparse.Namespace,
    data: Dataset,
    members: list[tuple[str, Arch]],
    results: Results,
    reference: Recipe,
    proxies: dict[str, Recipe],
) -> str:
    seeds = args.reference_seeds
    rows = []
    for role, arch in sorted(members, key=lambda item: estimate_cost(item[1]).mflops):
        refs = [results.get(arch, reference.replace(seed=s)) for s in seeds]
        runs = {
            spec: [results.get(arch, proxy.replace(seed=s)) for s in args.proxy_seeds]
            for spec, proxy in proxies.items()
        }
        rows.append({"role": role, "arch": arch, "refs": refs, "proxies": runs})
    c, h, w = data.input_shape
    threads = reference.threads
    lines = [
        f"Architectures from `{args.space}` (seed {args.seed}): its cheapest member, "
        f"{args.archs} random members spread over MFLOPs at 224 from the smallest to the largest "
        f"of 3,000 random draws, and the zoo networks under {args.zoo_mflops:g} MFLOPs. Data "
        f"`{data.name}` ({len(data.train_labels)} train / {len(data.val_labels)} validation "
        f"images, {c}x{h}x{w}, {data.num_classes} classes); accuracy is the validation accuracy "
        f"after the last epoch. {threads} thread per run, {args.jobs} runs at a time "
        f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}), so a run's seconds "
        f"are its CPU seconds. Recipe specs: `e` epochs, `r` training resolution, `m` the "
        f"stride plan's minimum last map (`Recipe.min_final_map`); everything else is the "
        f"default recipe. Reference: `{args.reference}`, seeds {', '.join(map(str, seeds))}.",
        "",
    ]
    specs = list(proxies)
    header = ["#", "network", "MFLOPs", *[f"ref s{s}" for s in seeds], "ref s"]
    header += [f"{spec}" for spec in specs]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in enumerate(rows):
        refs = [_accuracy(r) for r in row["refs"]]
        ref_seconds = [r["train_seconds"] for r in row["refs"] if r]
        cells = [
            str(index + 1),
            row["role"],
            f"{estimate_cost(row['arch']).mflops:.0f}",
            *[f"{a:.4f}" if a is not None else "-" for a in refs],
            f"{statistics.median(ref_seconds):.0f}" if ref_seconds else "-",
        ]
        for spec in specs:
            run = row["proxies"][spec][0]
            acc = _accuracy(run)
            cells.append(f"{acc:.4f} ({run['train_seconds']:.0f} s)" if acc is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")

    # The reference's agreement with its own rerun, over every arch both seeds finished.
    both = [r for r in rows if all(_accuracy(x) is not None for x in r["refs"][:2])]
    if len(seeds) >= 2 and len(both) >= 3:
        first = [_accuracy(r["refs"][0]) for r in both]
        second = [_accuracy(r["refs"][1]) for r in both]
        gaps = [abs(a - b) * 100 for a, b in zip(first, second)]
        span = (max(first + second) - min(first + second)) * 100
        lines.append(
            f"- **Reference against its own rerun** (seed {seeds[0]} against seed {seeds[1]}, "
            f"{len(both)} architectures): Kendall tau {_tau(first, second)}; |difference| "
            f"median {statistics.median(gaps):.1f} points, largest {max(gaps):.1f}; the "
            f"accuracies span {span:.1f} points. This is the ceiling for a proxy judged against "
            f"one reference run; against the mean of both seeds the ceiling is higher (the mean "
            f"has half the seed-to-seed variance)."
        )
    complete = [r for r in rows if all(_accuracy(x) is not None for x in r["refs"])]
    if len(complete) >= 3:
        mean_ref = [statistics.mean(_accuracy(x) for x in r["refs"]) for r in complete]
        mflops = [estimate_cost(r["arch"]).mflops for r in complete]
        lines.append(
            f"- MFLOPs alone against the reference mean ({len(complete)} architectures): "
            f"tau {_tau(mflops, mean_ref)}."
        )
        for spec in specs:
            usable = [
                (i, r)
                for i, r in enumerate(complete)
                if _accuracy(r["proxies"][spec][0]) is not None
            ]
            if len(usable) < 3:
                continue
            proxy_acc = [_accuracy(r["proxies"][spec][0]) for _, r in usable]
            target = [mean_ref[i] for i, _ in usable]
            one_seed = [_accuracy(r["refs"][0]) for _, r in usable]
            run_mflops = [estimate_cost(r["arch"]).mflops for _, r in usable]
            run_seconds = [r["proxies"][spec][0]["train_seconds"] for _, r in usable]
            at_150 = seconds_at(run_mflops, run_seconds)
            cost = f"{at_150:.0f} CPU-s at 150 MFLOPs (linear fit)" if at_150 else "n/a"
            lines.append(
                f"- Proxy `{spec}` ({len(usable)} architectures): tau against the reference "
                f"mean {_tau(proxy_acc, target)}, against reference seed {seeds[0]} "
                f"{_tau(proxy_acc, one_seed)}; against MFLOPs {_tau(run_mflops, proxy_acc)}; "
                f"cost {cost}, median {statistics.median(run_seconds):.0f} s."
            )
        ref_seconds = [statistics.mean(x["train_seconds"] for x in r["refs"]) for r in complete]
        at_150 = seconds_at(mflops, ref_seconds)
        if at_150:
            lines.append(
                f"- Reference cost: {at_150:.0f} CPU-s per run at 150 MFLOPs (linear fit)."
            )
    planned = len(rows) * (len(seeds) + len(specs) * len(args.proxy_seeds))
    done = sum(
        1
        for r in rows
        for x in [*r["refs"], *(run for runs in r["proxies"].values() for run in runs)]
        if x is not None
    )
    lines += [
        "",
        f"{done} of {planned} planned runs are in `benchmarks/results/proxy_ranking.json`; "
        f"rerunning the command trains the rest. Recipe keys: reference "
        f"{recipe_key(reference)}, "
        + ", ".join(f"`{spec}` {recipe_key(proxy)}" for spec, proxy in proxies.items())
        + ".",
        "",
        "Architectures:",
        "",
        *[f"{i + 1}. {r['role']}: `{r['arch'].to_string()}`" for i, r in enumerate(rows)],
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
