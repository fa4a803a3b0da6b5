"""Orchestration overhead and worker scaling of `nas search`.

Runs the same seeded candidates (random sampler, no warm start, no early stopping) twice on a
private local Ray: once with ``--workers 1`` and once with ``--workers 2``, one CPU per trial.

- Overhead per trial: everything outside a worker's training loop, as a share of the trial's
  wall time: the driver's ask + sample + price + attribute writes (``driver_seconds``) plus the
  gap between dispatch and the final record that training itself does not explain (Ray
  scheduling, shipping the data, building the model, the last message).
- Scaling: wall time of the two-worker run over the one-worker run (2 cores; goal <= 0.6x).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import optuna
from _report import write_section

from nas.config import SearchConfig
from nas.search import search
from nas.trials import Outcome, TrialAttrs


def run(workers: int, args: argparse.Namespace, folder: Path) -> dict:
    config = SearchConfig(
        budget_mflops=args.budget_mflops,
        trials=args.trials,
        workers=workers,
        cpus_per_trial=1,
        sampler="random",
        seed=args.seed,
        warm_start=False,
        early_stopping=False,
        epochs=args.epochs,
        limit_train=args.limit_train,
        storage=f"sqlite:///{folder / f'workers{workers}.db'}",
        out=str(folder / f"w{workers}"),
    )
    started = time.monotonic()
    result = search(config)
    wall = time.monotonic() - started
    study = optuna.load_study(study_name=result.study_name, storage=config.storage)
    records = [TrialAttrs.of(t) for t in study.trials]
    trained = [a for a in records if a.outcome is Outcome.TRAINED]
    shares, driver, gaps = [], [], []
    for attrs in trained:
        outside = attrs.driver_seconds + max(0.0, attrs.wall_seconds - attrs.train_seconds)
        shares.append(outside / (attrs.driver_seconds + attrs.wall_seconds))
        driver.append(attrs.driver_seconds)
        gaps.append(attrs.wall_seconds - attrs.train_seconds)
    infeasible = sum(a.outcome is Outcome.INFEASIBLE for a in records)
    return {
        "workers": workers,
        "wall": wall,
        "trained": len(trained),
        "infeasible": infeasible,
        "archs": [a.arch for a in trained],
        "train_s": statistics.median(a.train_seconds for a in trained),
        "share": statistics.median(shares),
        "driver": statistics.median(driver),
        "gap": statistics.median(gaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--budget-mflops", type=float, default=150.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        one = run(1, args, Path(tmp))
        two = run(2, args, Path(tmp))
    same = sorted(one["archs"]) == sorted(two["archs"])
    lines = [
        f"{args.trials} trained candidates of the default space under {args.budget_mflops:g} "
        f"MFLOPs on the embedded dataset, default recipe"
        f"{f', {args.epochs} epochs' if args.epochs else ''}, random sampler seed {args.seed}, "
        f"one CPU per trial; both runs trained the same candidates: {same}.",
        "",
        "| workers | wall s | median train s per trial | median driver s per trial | "
        "median dispatch gap s | overhead share of trial time | over budget (priced only) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in (one, two):
        lines.append(
            f"| {row['workers']} | {row['wall']:.1f} | {row['train_s']:.1f} | "
            f"{row['driver']:.2f} | {row['gap']:.2f} | {100 * row['share']:.1f}% | "
            f"{row['infeasible']} |"
        )
    lines += [
        "",
        f"Scaling: two workers took {two['wall'] / one['wall']:.2f}x the wall time of "
        f"one (goal <= 0.6x). Wall time includes starting Ray and loading the data.",
    ]
    body = "\n".join(lines)
    print(body)
    write_section(
        "search-scaling",
        "Search orchestration overhead and worker scaling",
        body,
        packages=("torch", "optuna", "ray"),
    )


if __name__ == "__main__":
    main()
