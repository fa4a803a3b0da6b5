"""Cost of the default proxy: wall seconds per trial for ~150-MFLOP candidates.

Candidates come from the default space with a seeded Optuna RandomSampler, keeping the first
`--count` whose MFLOPs at 224 fall within 150 +/- 10. Each is trained once with the default
recipe on the shipped default dataset with `--threads` torch threads, exactly as a search worker
would; the figure is the median of `TrialResult.train_seconds` (model build, training, and the
validation pass after every epoch). Process CPU seconds are shown beside it: on a shared machine
wall time is inflated by other load, while CPU time is not (though idle OpenMP threads spinning
count as CPU time).

    python benchmarks/proxy_cost.py [--count 5] [--threads 2] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from nas.evaluators.datasets import DEFAULT_DATASET, load_dataset  # noqa: E402
from nas.evaluators.flops import estimate_cost  # noqa: E402
from nas.evaluators.training import Recipe, train  # noqa: E402
from nas.search_spaces.arch import Arch  # noqa: E402
from nas.search_spaces.space import load_space  # noqa: E402


def candidates(count: int, target: float, tolerance: float, seed: int) -> list[Arch]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("mobile")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    found: list[Arch] = []
    while len(found) < count:
        arch = space.sample(study.ask())
        if abs(estimate_cost(arch).mflops - target) <= tolerance and arch not in found:
            found.append(arch)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mflops", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    recipe = Recipe(threads=args.threads, max_seconds=None)
    data = load_dataset(DEFAULT_DATASET)
    rows = []
    load_before = os.getloadavg()[0]
    for arch in candidates(args.count, args.mflops, 10.0, args.seed):
        proxy = recipe.proxy_arch(arch, data.input_shape)
        cpu = time.process_time()
        result = train(arch, data, recipe)
        cpu = time.process_time() - cpu
        row = {
            "mflops": estimate_cost(arch).mflops,
            "proxy_mflops": estimate_cost(proxy, data.input_shape, data.num_classes).mflops,
            "seconds": result.train_seconds,
            "cpu": cpu,
            "epoch_s": statistics.median(r.seconds for r in result.curve),
            "ips": result.images_per_second,
            "accuracy": result.accuracy,
            "status": result.status,
            "load": os.getloadavg()[0],
        }
        rows.append(row)
        print(
            f"{row['mflops']:6.1f} MFLOPs ({row['proxy_mflops']:.2f} at proxy): "
            f"{row['seconds']:6.1f} s wall, {cpu:6.1f} s CPU, {row['ips']:6.0f} img/s, "
            f"acc {row['accuracy']}, load {row['load']:.1f}",
            flush=True,
        )

    median = statistics.median(r["seconds"] for r in rows)
    c, h, w = data.input_shape
    lines = [
        f"Default recipe ({recipe.epochs} epochs, batch {recipe.batch_size}, "
        f"{recipe.schedule}, stem stride 1 below {recipe.stem_stride1_below} px) on "
        f"`{data.name}` ({len(data.train_labels)} train / {len(data.val_labels)} validation "
        f"images, {c}x{h}x{w}), {args.threads} torch threads, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}; {len(rows)} candidates from `mobile` "
        f"at {args.mflops:.0f} +/- 10 MFLOPs (seed {args.seed}). Load average "
        f"{load_before:.1f} at the start.",
        "",
        "| MFLOPs at 224 | MFLOPs at proxy input | wall s | CPU s | median epoch s | img/s | "
        "val acc | load after |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['mflops']:.1f} | {r['proxy_mflops']:.2f} | {r['seconds']:.1f} | "
            f"{r['cpu']:.1f} | {r['epoch_s']:.1f} | {r['ips']:.0f} | "
            f"{r['accuracy']:.4f} | {r['load']:.1f} |"
        )
    lines += [
        "",
        f"Median wall seconds per trial: **{median:.1f}** (goal <= 60 s: "
        f"{'met' if median <= 60 else 'not met'}).",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(
            "proxy-cost", "Cost of the default proxy per trial", text, packages=("torch",)
        )


if __name__ == "__main__":
    main()
