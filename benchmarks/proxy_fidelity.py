"""Fidelity of the proxy: does short training rank architectures like longer training does?

Architectures are drawn from a search space with a seeded Optuna RandomSampler and spread over
MFLOPs at 224 (picked from a larger random pool at evenly spaced MFLOPs), so the set spans the space rather
than clustering at its typical size. Each is trained with the proxy recipe and with a reference
recipe (by default the same recipe with five times the epochs); the figure is Kendall's tau
between the two accuracy lists.

Every finished run is written at once to a JSON results file keyed by arch and recipe, so the
benchmark can be interrupted and resumed, and runs with other proxy settings reuse the cached
reference runs:

    tar xf ../shared/datasets/cifar10-jpeg.tar -C /tmp/nas-bench/cifar10
    nohup python benchmarks/proxy_fidelity.py --dataset imagefolder \\
        --data-dir /tmp/nas-bench/cifar10 --limit-train 10000 \\
        --results /tmp/nas-bench/fidelity.json > /tmp/nas-bench/fidelity.log 2>&1 &

`--replicate-seeds 1` trains every architecture again, proxy and reference, with another
training seed (initialisation, batch order, augmentation; same data and validation split). The
reference's agreement with its own rerun is the ceiling of what any proxy can score against one
reference run, so it says how much of a shortfall is the proxy's and how much is noise.

The architectures of the core set (`--archs`) lie where random samples of the space are common,
and there they differ by little more than training noise. `--tails K` adds K architectures
below and K above the core set's MFLOPs, from a larger pool of the same seed, so the set covers
the space's ends too; the report gives every figure over the whole set and over the core and
the tails alone, with MFLOPs alone as the baseline, so a wider range never hides a poor ranking
where candidates are close.

`benchmarks/results/proxy_fidelity.json` holds every run of the benchmark as recorded in
BENCHMARKS.md (one thread per run, two at a time). Copy it to `--results` and rerun to continue
it without retraining what it holds, or add `--report-only` to rebuild the figures:

    python benchmarks/proxy_fidelity.py --dataset imagefolder --data-dir /tmp/nas-bench/cifar10 \
        --limit-train 10000 --threads 1 --jobs 2 --replicate-seeds 1 --tails 4 \
        --results /tmp/nas-bench/fidelity.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import optuna
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from nas.evaluators.datasets import Dataset, load_dataset  # noqa: E402
from nas.evaluators.flops import estimate_cost  # noqa: E402
from nas.evaluators.training import Recipe, train  # noqa: E402
from nas.files import write_atomically  # noqa: E402
from nas.search_spaces.arch import Arch  # noqa: E402
from nas.search_spaces.space import load_space  # noqa: E402


def _random_pool(space_name: str, seed: int, size: int) -> list[tuple[float, Arch]]:
    """Distinct random members of the space with their MFLOPs at 224, smallest first.

    The same seed gives the same first members whatever the size, so a larger pool extends a
    smaller one rather than replacing it.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    sampled: dict[str, tuple[float, Arch]] = {}
    for _ in range(size):
        arch = space.sample(study.ask())
        sampled.setdefault(arch.to_string(), (estimate_cost(arch).mflops, arch))
    return sorted(sampled.values(), key=lambda item: item[0])


def _nearest_free(members: list[tuple[float, Arch]], targets: list[float]) -> list[Arch]:
    """For each MFLOPs target in turn, the closest member not already taken."""
    chosen: list[Arch] = []
    for target in targets:
        free = [m for m in members if all(m[1] is not c for c in chosen)]
        chosen.append(min(free, key=lambda item: abs(item[0] - target))[1])
    return chosen


def stratified_archs(space_name: str, count: int, seed: int, pool: int = 400) -> list[Arch]:
    """`count` distinct architectures spread evenly over where random samples of the space lie.

    Random samples concentrate around the space's typical size, so a pool of them is drawn and,
    for MFLOPs targets evenly spaced between the pool's 2nd and 98th percentiles, the nearest
    not-yet-taken member is picked. The choice depends only on the seed.
    """
    members = _random_pool(space_name, seed, pool)
    low = members[int(0.02 * (len(members) - 1))][0]
    high = members[int(0.98 * (len(members) - 1))][0]
    targets = [low + (high - low) * i / max(count - 1, 1) for i in range(count)]
    chosen = _nearest_free(members, targets)
    return sorted(chosen, key=lambda arch: estimate_cost(arch).mflops)


def tail_archs(
    space_name: str, per_side: int, seed: int, core: list[Arch], pool: int = 3000
) -> list[Arch]:
    """`per_side` architectures below the core set's MFLOPs and as many above it.

    The core set covers where random samples are common, and there accuracies differ by little
    more than training noise; a search under a tight or a loose budget ranks candidates out in
    the tails. A larger pool of the same seed reaches them: targets are evenly spaced from the
    pool's smallest member up to the core's smallest, and from the core's largest up to the
    pool's largest.
    """
    if per_side <= 0:
        return []
    members = _random_pool(space_name, seed, pool)
    core_mflops = [estimate_cost(arch).mflops for arch in core]
    low, high = members[0][0], members[-1][0]
    below = [low + (min(core_mflops) - low) * i / per_side for i in range(per_side)]
    above = [
        max(core_mflops) + (high - max(core_mflops)) * (i + 1) / per_side for i in range(per_side)
    ]
    core_strings = {arch.to_string() for arch in core}
    outside = [m for m in members if m[1].to_string() not in core_strings]
    chosen = _nearest_free(outside, below + above)
    return sorted(chosen, key=lambda arch: estimate_cost(arch).mflops)


LATER_FIELDS = {"resolution": None, "min_final_map": 0, "precision": "float32"}
"""Recipe fields added after runs were recorded; left out of the key at their default, so
those runs keep their keys."""


def dataset_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """`load_dataset` arguments from a benchmark's data flags; workers reload with the same."""
    return {
        "name": args.dataset,
        "data_dir": args.data_dir,
        "limit_train": args.limit_train,
        "val_count": args.val_count,
    }


def recipe_key(recipe: Recipe) -> str:
    fields = recipe.to_dict()
    for name, default in LATER_FIELDS.items():
        if fields.get(name) == default:
            fields.pop(name, None)
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Results:
    """The resumable results file: ``{"runs": {"<arch>|<recipe key>": TrialResult dict}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"runs": {}}
        if path.exists():
            self.data = json.loads(path.read_text())

    def get(self, arch: Arch, recipe: Recipe) -> dict[str, Any] | None:
        return self.data["runs"].get(f"{arch.to_string()}|{recipe_key(recipe)}")

    def put(self, arch: Arch, recipe: Recipe, result: dict[str, Any]) -> None:
        self.data["runs"][f"{arch.to_string()}|{recipe_key(recipe)}"] = result
        write_atomically(self.path, json.dumps(self.data, indent=1))


_WORKER_DATA: Dataset | None = None


def _load_worker_data(kwargs: dict[str, Any]) -> None:
    global _WORKER_DATA
    _WORKER_DATA = load_dataset(**kwargs)


def _train_in_worker(arch_text: str, recipe: dict[str, Any]) -> dict[str, Any]:
    assert _WORKER_DATA is not None
    return train(Arch.from_string(arch_text), _WORKER_DATA, Recipe.from_dict(recipe)).to_dict()


def run_all(
    jobs: list[tuple[Arch, Recipe, str]],
    data: Dataset,
    data_kwargs: dict[str, Any],
    results: Results,
    parallel: int,
) -> None:
    """Train every (arch, recipe) the results file lacks, in the order given.

    With ``parallel`` > 1 the runs go to that many worker processes, each loading the data once
    and training with the recipe's own thread count, the way the search runs two one-thread
    trials at a time on two cores; this process alone writes the results file.
    """
    todo = [(a, r, label) for a, r, label in jobs if results.get(a, r) is None]

    def record(arch: Arch, recipe: Recipe, label: str, result: dict) -> None:
        results.put(arch, recipe, result)
        print(
            f"  {label:9s} acc {result['accuracy']} status {result['status']} "
            f"{result['train_seconds']:6.1f} s {result['images_per_second']:7.1f} img/s "
            f"{arch.to_string()[:60]}...",
            flush=True,
        )

    if parallel <= 1:
        for arch, recipe, label in todo:
            record(arch, recipe, label, train(arch, data, recipe).to_dict())
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        parallel, mp_context=context, initializer=_load_worker_data, initargs=(data_kwargs,)
    ) as pool:
        futures = {
            pool.submit(_train_in_worker, arch.to_string(), recipe.to_dict()): (arch, recipe, label)
            for arch, recipe, label in todo
        }
        for future in as_completed(futures):
            arch, recipe, label = futures[future]
            record(arch, recipe, label, future.result())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist-mini")
    parser.add_argument("--data-dir")
    parser.add_argument("--limit-train", type=int, help="stratified training subset")
    parser.add_argument("--val-count", type=int, default=2000)
    parser.add_argument("--space", default="mobile")
    parser.add_argument("--archs", type=int, default=12)
    parser.add_argument(
        "--tails",
        type=int,
        default=0,
        help="architectures added below and as many above the core set's MFLOPs, "
        "to cover the space's ends",
    )
    parser.add_argument("--seed", type=int, default=0, help="architecture sampling seed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument(
        "--jobs", type=int, default=1, help="runs trained at once, each in its own process"
    )
    parser.add_argument("--factor", type=int, default=5, help="reference epochs = factor x proxy")
    parser.add_argument("--proxy", default="{}", help="JSON overrides of the default recipe")
    parser.add_argument(
        "--reference",
        default="{}",
        help="JSON overrides of the reference recipe (after the epoch factor)",
    )
    parser.add_argument(
        "--replicate-seeds",
        type=int,
        nargs="*",
        default=[],
        help="training seeds to repeat proxy and reference with, for the noise "
        "ceiling (the recipe's own seed is always trained)",
    )
    parser.add_argument("--results", type=Path, default=Path("/tmp/nas-bench/fidelity.json"))
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing; report the pairs already in the results file",
    )
    parser.add_argument(
        "--section", default="proxy-fidelity", help="BENCHMARKS.md section name ('' to print only)"
    )
    args = parser.parse_args()

    proxy = Recipe(threads=args.threads, max_seconds=None).replace(**json.loads(args.proxy))
    reference = proxy.replace(epochs=proxy.epochs * args.factor).replace(
        **json.loads(args.reference)
    )
    data_kwargs = dataset_kwargs(args)
    data = load_dataset(**data_kwargs)
    core = stratified_archs(args.space, args.archs, args.seed)
    archs = sorted(
        core + tail_archs(args.space, args.tails, args.seed, core),
        key=lambda arch: estimate_cost(arch).mflops,
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    results = Results(args.results)
    print(
        f"{data!r}; {len(archs)} architectures; proxy {recipe_key(proxy)} "
        f"({proxy.epochs} epochs), reference {recipe_key(reference)} "
        f"({reference.epochs} epochs)",
        flush=True,
    )

    replicates = [
        (seed, proxy.replace(seed=seed), reference.replace(seed=seed))
        for seed in args.replicate_seeds
        if seed != proxy.seed
    ]
    if not args.report_only:
        # Cheap runs first (every proxy, of every seed), then the references of the recipe's
        # seed, then the replicate references: a run stopped early still has the main figure.
        jobs: list[tuple[Arch, Recipe, str]] = []
        for arch in archs:
            jobs.append((arch, proxy, "proxy"))
            jobs += [(arch, seed_proxy, f"proxy s{seed}") for seed, seed_proxy, _ in replicates]
        jobs += [(arch, reference, "reference") for arch in archs]
        for seed, _, seed_reference in replicates:
            jobs += [(arch, seed_reference, f"ref s{seed}") for arch in archs]
        print(
            f"{sum(results.get(a, r) is None for a, r, _ in jobs)} of {len(jobs)} runs to "
            f"train, {args.jobs} at a time",
            flush=True,
        )
        run_all(jobs, data, data_kwargs, results, args.jobs)
    notes = _proxy_rerun_lines(archs, results, proxy, replicates)
    rows = [
        {"arch": arch, "proxy": results.get(arch, proxy), "reference": results.get(arch, reference)}
        for arch in archs
    ]
    rows = [row for row in rows if row["proxy"] and row["reference"]]
    if not rows:
        print("\n".join(notes + ["no architecture has both a proxy and a reference run yet"]))
        return
    report(
        args,
        data,
        proxy,
        reference,
        rows,
        core={arch.to_string() for arch in core},
        planned=len(archs),
        replicas=_replica_rows(archs, results, replicates),
        notes=notes,
    )


def _proxy_rerun_lines(
    archs: list[Arch], results: Results, proxy: Recipe, replicates: list[tuple[int, Recipe, Recipe]]
) -> list[str]:
    """The proxy against its own rerun, available long before the references finish.

    Two proxy runs that differ only in the training seed bound how well one proxy run can rank
    anything: whatever they disagree on is chance.
    """
    lines = []
    for seed, seed_proxy, _ in replicates:
        pairs = [
            (a["accuracy"], b["accuracy"])
            for a, b in (
                (results.get(arch, proxy), results.get(arch, seed_proxy)) for arch in archs
            )
            if a and b and a["status"] == b["status"] == "ok"
        ]
        if len(pairs) < 3:
            continue
        first, second = [p[0] for p in pairs], [p[1] for p in pairs]
        diffs = [abs(a - b) for a, b in pairs]
        lines.append(
            f"Proxy seed {proxy.seed} against proxy seed {seed} over {len(pairs)} architectures: "
            f"Kendall tau {stats.kendalltau(first, second).statistic:.3f}; |difference| median "
            f"{statistics.median(diffs) * 100:.1f} points, largest {max(diffs) * 100:.1f}; "
            f"proxy accuracies span {(max(first) - min(first)) * 100:.1f} points (seed "
            f"{proxy.seed})."
        )
    return lines


def _replica_rows(
    archs: list[Arch], results: Results, replicates: list[tuple[int, Recipe, Recipe]]
) -> list[dict]:
    """Per replicate seed, the architectures whose proxy and reference both finished."""
    out = []
    for seed, seed_proxy, seed_reference in replicates:
        pairs = {}
        for arch in archs:
            p, r = results.get(arch, seed_proxy), results.get(arch, seed_reference)
            if p and r and p["status"] == "ok" and r["status"] == "ok":
                pairs[arch.to_string()] = (p["accuracy"], r["accuracy"])
        out.append({"seed": seed, "pairs": pairs})
    return out


def report(
    args: argparse.Namespace,
    data: Dataset,
    proxy: Recipe,
    reference: Recipe,
    rows: list[dict],
    core: set[str],
    planned: int,
    replicas: list[dict] | None = None,
    notes: list[str] | None = None,
) -> None:
    usable = [r for r in rows if r["proxy"]["status"] == "ok" and r["reference"]["status"] == "ok"]
    proxy_acc = [r["proxy"]["accuracy"] for r in usable]
    reference_acc = [r["reference"]["accuracy"] for r in usable]
    tau = stats.kendalltau(proxy_acc, reference_acc).statistic
    rho = stats.spearmanr(proxy_acc, reference_acc).statistic
    mflops = [estimate_cost(r["arch"]).mflops for r in usable]
    mflops_tau = stats.kendalltau(mflops, reference_acc).statistic
    # Short training favours networks that converge fast, which are mostly the small ones; the
    # proxy's own rank correlation with size shows that bias next to the reference's.
    size_bias = stats.kendalltau(mflops, proxy_acc).statistic
    # How much of the reference ranking is signal: one accuracy on n validation images has a
    # binomial standard error, and candidates closer than that are ordered by chance.
    n_val = len(data.val_labels)
    mean_ref = statistics.mean(reference_acc)
    standard_error = (mean_ref * (1 - mean_ref) / n_val) ** 0.5
    ref_span = max(reference_acc) - min(reference_acc)
    proxy_seconds = statistics.median(r["proxy"]["train_seconds"] for r in rows)
    reference_seconds = statistics.median(r["reference"]["train_seconds"] for r in rows)
    c, h, w = data.input_shape
    tails = planned - len(core)
    spread = (
        f"{len(core)} spread evenly over the MFLOPs at 224 where random samples lie, plus "
        f"{tails // 2} below and {tails // 2} above them"
        if tails
        else "spread evenly over MFLOPs at 224"
    )
    lines = [
        f"{len(rows)} of {planned} planned architectures from `{args.space}` (seed {args.seed}, "
        f"{spread}), trained on `{data.name}` ({len(data.train_labels)} train / "
        f"{len(data.val_labels)} validation images, {c}x{h}x{w}, {data.num_classes} classes), "
        f"{proxy.threads} threads per run, {args.jobs} run(s) at a time "
        f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}). "
        f"Proxy: the default recipe ({proxy.epochs} epochs"
        f"{_overrides(proxy)}); reference: {reference.epochs} epochs. Accuracy is final "
        f"validation accuracy.",
        "",
        "| # | MFLOPs at 224 | set | proxy acc | reference acc | proxy s | reference s |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for index, row in enumerate(rows):
        p, r = row["proxy"], row["reference"]
        where = "core" if row["arch"].to_string() in core else "tail"
        lines.append(
            f"| {index + 1} | {estimate_cost(row['arch']).mflops:.0f} | {where} | "
            f"{_acc(p)} | {_acc(r)} | {p['train_seconds']:.0f} | "
            f"{r['train_seconds']:.0f} |"
        )
    goal = "met" if tau >= 0.6 else "not met"
    lines += [
        "",
        f"Kendall tau (proxy vs reference) = **{tau:.3f}** over {len(usable)} architectures "
        f"(goal >= 0.6: {goal}); Spearman rho = {rho:.3f}. For comparison, ranking by MFLOPs "
        f"alone gives tau = {mflops_tau:.3f} against the reference; the proxy's own tau "
        f"against MFLOPs is {size_bias:.3f}. Median seconds per run: "
        f"proxy {proxy_seconds:.0f}, reference {reference_seconds:.0f}.",
        "",
        *_subset_lines(usable, core),
        f"How much ranking there is to find: the reference accuracies span "
        f"{ref_span * 100:.1f} points ({min(reference_acc):.4f}-{max(reference_acc):.4f}), while "
        f"one accuracy measured on {n_val} validation images has a binomial standard error of "
        f"{standard_error * 100:.1f} points, before any seed-to-seed variation of training. "
        f"Pairs of candidates closer than about two standard errors are ordered by chance in "
        f"the reference itself, so its own tau against a rerun would be below 1.",
        "",
        *[line for note in notes or [] for line in (note, "")],
        *_replica_lines(usable, proxy.seed, replicas or []),
        "Architectures (proxy input strings are in the results JSON):",
        "",
        *[f"{i + 1}. `{row['arch'].to_string()}`" for i, row in enumerate(rows)],
    ]
    text = "\n".join(lines)
    print(text)
    if args.section:
        title = "Proxy fidelity: proxy vs 5x-longer training"
        if args.section != "proxy-fidelity":
            title += f" ({args.section})"
        write_section(args.section, title, text, packages=("torch", "optuna", "scipy"))


def _subset_lines(usable: list[dict], core: set[str]) -> list[str]:
    """The same figures over the core set alone and the tails alone.

    Added tails widen the accuracy range, which makes any ranking easier; these lines keep the
    figure where candidates are hardest to tell apart in view.
    """
    lines = []
    for name, keep in (("core", True), ("tail", False)):
        subset = [r for r in usable if (r["arch"].to_string() in core) == keep]
        if len(subset) < 3 or len(subset) == len(usable):
            continue
        proxy_acc = [r["proxy"]["accuracy"] for r in subset]
        reference_acc = [r["reference"]["accuracy"] for r in subset]
        mflops = [estimate_cost(r["arch"]).mflops for r in subset]
        lines += [
            f"Over the {len(subset)} {name} architectures alone: proxy vs reference tau = "
            f"{stats.kendalltau(proxy_acc, reference_acc).statistic:.3f}, MFLOPs alone "
            f"{stats.kendalltau(mflops, reference_acc).statistic:.3f}; reference accuracies span "
            f"{(max(reference_acc) - min(reference_acc)) * 100:.1f} points.",
            "",
        ]
    return lines


def _replica_lines(usable: list[dict], seed: int, replicas: list[dict]) -> list[str]:
    """The noise ceiling: how well each measurement agrees with its own rerun.

    Kendall tau between two runs of the reference that differ only in the training seed is
    the best a proxy can expect against one reference run; the proxy's own rerun tau says how
    much of its ranking is chance. Averaging seeds shows what a costlier proxy would gain.
    """
    lines: list[str] = []
    base = {
        r["arch"].to_string(): (r["proxy"]["accuracy"], r["reference"]["accuracy"]) for r in usable
    }
    for replica in replicas:
        keys = [k for k in base if k in replica["pairs"]]
        if len(keys) < 3:
            lines += [
                f"Replicate with training seed {replica['seed']}: {len(keys)} "
                f"architectures finished, too few to rank.",
                "",
            ]
            continue
        p0 = [base[k][0] for k in keys]
        r0 = [base[k][1] for k in keys]
        p1 = [replica["pairs"][k][0] for k in keys]
        r1 = [replica["pairs"][k][1] for k in keys]

        def tau(a: list[float], b: list[float]) -> float:
            return stats.kendalltau(a, b).statistic

        mean_p = [(a + b) / 2 for a, b in zip(p0, p1)]
        mean_r = [(a + b) / 2 for a, b in zip(r0, r1)]
        ref_diffs = [abs(a - b) for a, b in zip(r0, r1)]
        lines += [
            f"Replicate with training seed {replica['seed']} (same data and validation split; "
            f"{len(keys)} architectures):",
            "",
            "| # | proxy s{0} | proxy s{1} | reference s{0} | reference s{1} |".format(
                seed, replica["seed"]
            ),
            "| --- | --- | --- | --- | --- |",
            *[
                f"| {i + 1} | {a:.4f} | {b:.4f} | {c:.4f} | {d:.4f} |"
                for i, (a, b, c, d) in enumerate(zip(p0, p1, r0, r1))
            ],
            "",
            f"- Reference against its own rerun (the ceiling for one reference run): "
            f"tau = **{tau(r0, r1):.3f}**; median |difference| "
            f"{statistics.median(ref_diffs) * 100:.1f} points, largest "
            f"{max(ref_diffs) * 100:.1f}.",
            f"- Proxy against its own rerun: tau = {tau(p0, p1):.3f}.",
            f"- Proxy seed {replica['seed']} against reference seed {replica['seed']}: "
            f"tau = {tau(p1, r1):.3f}; crossed (proxy s{seed} vs reference "
            f"s{replica['seed']}): tau = {tau(p0, r1):.3f}.",
            f"- Mean of both proxy seeds against mean of both reference seeds: "
            f"tau = {tau(mean_p, mean_r):.3f}; one proxy seed against the reference mean: "
            f"tau = {tau(p0, mean_r):.3f}; MFLOPs alone against the reference mean: "
            f"tau = {tau([estimate_cost(Arch.from_string(k)).mflops for k in keys], mean_r):.3f}.",
            "",
        ]
    return lines


def _acc(result: dict) -> str:
    return f"{result['accuracy']:.4f}" if result["status"] == "ok" else result["status"]


def _overrides(recipe: Recipe) -> str:
    default = Recipe().to_dict()
    changed = {
        k: v
        for k, v in recipe.to_dict().items()
        if v != default[k] and k not in ("threads", "max_seconds", "epochs")
    }
    return f", with {json.dumps(changed)}" if changed else ""


if __name__ == "__main__":
    main()
