"""Training throughput: our loop (`iter_training`) against a plain PyTorch loop on the same model.

The plain loop is what one would write by hand with everything made easy for it: the images are
normalised to float once, up front, already in the model's memory format; no augmentation, no
schedule, no NaN or time checks. It runs twice: with `torch.optim.SGD`'s defaults ("plain") and
with the same fused SGD kernel our loop uses ("plain, fused SGD"), so the comparison isolates the
per-batch work our loop adds (normalisation, crop and flip, schedule, checks). All loops train
the same network (same arch, proxy input, classes, initialisation, channels_last, threads) on the
same in-memory images with the same batch size. They alternate epoch by epoch in one process,
so the load of a shared machine hits them alike; the figures are medians of per-round ratios.

    python benchmarks/training_throughput.py [--rounds 7] [--threads 1,2] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section  # noqa: E402

from nas.evaluators.datasets import load_dataset, to_float  # noqa: E402
from nas.evaluators.flops import estimate_cost  # noqa: E402
from nas.evaluators.training import Recipe, build_proxy_model, iter_training  # noqa: E402
from nas.search_spaces.zoo import ZOO  # noqa: E402

NETWORKS = ("mobilenet_v3_small", "mnasnet0_5", "mobilenet_v2_0.5")


def plain_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One epoch of the textbook loop; returns training images per second."""
    model.train()
    order = torch.randperm(len(y), generator=generator)
    steps = len(y) // batch_size
    start = time.perf_counter()
    for i in range(steps):
        idx = order[i * batch_size : (i + 1) * batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - start)


def measure(name: str, data, recipe: Recipe, rounds: int) -> dict:
    arch = ZOO[name]()
    memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format
    x = to_float(data.train_images, data.mean, data.std).contiguous(memory_format=memory_format)
    y = data.train_labels
    generator = torch.Generator().manual_seed(0)
    torch.set_num_threads(recipe.threads)
    plain = {}
    for label, fused in (("plain", False), ("fused", True)):
        model = build_proxy_model(arch, data, recipe)  # same stem rule, init and memory format
        extra = {"fused": True} if fused else {}
        optimizer = torch.optim.SGD(
            model.parameters(), lr=0.05, momentum=0.9, nesterov=True, **extra
        )
        plain[label] = (model, optimizer)
        plain_epoch(model, optimizer, x, y, recipe.batch_size, generator)  # warm-up

    rates: dict[str, list[float]] = {"ours": [], "plain": [], "fused": []}
    run = iter_training(arch, data, recipe.replace(epochs=rounds + 1, max_seconds=None))
    next(run)  # warm-up epoch of ours
    for _ in range(rounds):
        for label, (model, optimizer) in plain.items():
            rates[label].append(plain_epoch(model, optimizer, x, y, recipe.batch_size, generator))
        try:
            record = next(run)
        except StopIteration as finished:
            raise SystemExit(f"{name}: training ended early: {finished.value.error}") from None
        rates["ours"].append(record.images_per_second)
    run.close()
    proxy = recipe.proxy_arch(arch, data.input_shape)
    row = {
        "name": name,
        "mflops_proxy": estimate_cost(proxy, data.input_shape, data.num_classes).mflops,
    }
    for label, values in rates.items():
        row[label] = statistics.median(values)
    for label in ("plain", "fused"):
        ratios = [ours / other for ours, other in zip(rates["ours"], rates[label])]
        row[f"ratio_{label}"] = statistics.median(ratios)
        row[f"range_{label}"] = (min(ratios), max(ratios))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", type=int, default=2560, help="training images per epoch")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    thread_counts = [int(t) for t in args.threads.split(",")]
    data = load_dataset("fashion-mnist-mini", limit_train=args.images, val_count=200)
    rows = []
    for threads, name in ((t, n) for t in thread_counts for n in args.networks.split(",")):
        recipe = Recipe(threads=threads)
        row = {"threads": threads, **measure(name, data, recipe, args.rounds)}
        rows.append(row)
        print(
            f"{threads} thread(s) {name:22s} {row['mflops_proxy']:6.2f} MFLOPs  ours {row['ours']:7.1f}  "
            f"plain {row['plain']:7.1f}  plain+fused {row['fused']:7.1f} img/s  ratios "
            f"{row['ratio_plain']:.2f} {row['ratio_fused']:.2f}",
            flush=True,
        )

    c, h, w = data.input_shape
    lines = [
        f"Training images per second of `iter_training` (per-batch normalisation, random crop "
        f"and flip, per-step schedule, NaN and time checks, fused SGD) against a plain loop over "
        f"pre-normalised in-memory tensors without augmentation, once with `torch.optim.SGD` "
        f"defaults and once with the fused SGD kernel. Same model, initialisation and memory "
        f"format (channels_last: {recipe.channels_last}), batch {recipe.batch_size}, "
        f"{'/'.join(map(str, thread_counts))} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
        f"{len(data.train_labels)} fashion-mnist-mini images at {c}x{h}x{w} (stem rule of the "
        f"default recipe applied). The loops alternate epoch by epoch; medians of "
        f"{args.rounds} rounds after a warm-up epoch each, ratios paired per round.",
        "",
        "| threads | network | MFLOPs at proxy input | ours img/s | plain img/s | plain + fused SGD img/s "
        "| ours / plain (min-max) | ours / plain + fused (min-max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['threads']} | {row['name']} | {row['mflops_proxy']:.2f} | {row['ours']:.0f} | "
            f"{row['plain']:.0f} | {row['fused']:.0f} | {row['ratio_plain']:.2f} "
            f"({row['range_plain'][0]:.2f}-{row['range_plain'][1]:.2f}) | "
            f"{row['ratio_fused']:.2f} ({row['range_fused'][0]:.2f}-{row['range_fused'][1]:.2f}) |"
        )
    lines += [
        "",
        f"Goal: ours >= 0.9x the plain loop. Median over all rows: "
        f"{statistics.median(r['ratio_plain'] for r in rows):.2f}x the plain loop, "
        f"{statistics.median(r['ratio_fused'] for r in rows):.2f}x the plain loop with "
        f"fused SGD.",
    ]
    if not args.no_write:
        write_section(
            "training-throughput",
            "Proxy training throughput (ours vs a plain loop)",
            "\n".join(lines),
            packages=("torch",),
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
