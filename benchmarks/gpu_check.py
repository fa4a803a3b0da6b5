"""GPU check: the proxy-training loop on a CUDA GPU against a plain PyTorch loop, accuracy parity
with the CPU loop, and trials per hour with several trials sharing one GPU.

Needs only torch, numpy and this package on the GPU machine (no Ray, no database; from a
checkout, `PYTHONPATH=.` stands for installing it), and takes a few minutes there:

    PYTHONPATH=. python benchmarks/gpu_check.py            # prints the three tables
    python benchmarks/gpu_check.py --write    # and records them in BENCHMARKS.md ("GPU check")
    python benchmarks/gpu_check.py --device cpu --quick --precision bfloat16   # the script itself, on a CPU

1. Throughput. For each network, our loop (`iter_training` on the GPU: uint8 data resident on the
   device, batches gathered, standardised, cropped and flipped there, autocast, no wait for the
   device per step) and a plain loop (images standardised once and resident as float, no
   augmentation, no schedule, no checks; the same model, initialisation, precision,
   channels_last, fused SGD and cuDNN autotuning) alternate epoch by epoch in one process.
   Medians of training images/s, the median per-round ratio, and our loop's peak GPU memory
   (the resident data included). The goal is a ratio of at least 0.9.
2. Parity. One network, one recipe and seed, trained by the CPU loop in float32 and on the GPU
   in float32 and in its mixed precision, twice: validation accuracies, each difference from
   the CPU's, and the noise of that difference (two standard errors of two proportions).
3. Packing. K processes on the one GPU (K = 1, 2, 4, 8), each training `--pack-trials`
   candidates with the proxy recipe, as `--gpus-per-trial 1/K` makes Ray do; trials per hour on
   the GPU, from a common start to the last finish.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nas.evaluators.datasets import Dataset, load_dataset, to_float  # noqa: E402
from nas.evaluators.device import describe_device, resolve_device, resolve_precision  # noqa: E402
from nas.evaluators.precision import MixedPrecision  # noqa: E402
from nas.evaluators.training import Recipe, build_proxy_model, iter_training, train  # noqa: E402
from nas.search_spaces.zoo import ZOO  # noqa: E402

NETWORKS = ("mobilenet_v3_small", "mnasnet0_5", "mobilenet_v3_large_0.75")
PACKINGS = (1, 2, 4, 8)
SETUP_S = 600.0
"""How long a packing waits for its processes to import torch, load the data and start CUDA."""
TRIALS_S = 3600.0
"""How long a packing waits for its processes' trials."""


# ---- 1. throughput --------------------------------------------------------------------------------


def plain_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    amp: MixedPrecision,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One epoch of the textbook GPU loop; returns training images per second."""
    model.train()
    order = torch.randperm(len(y), generator=generator).to(x.device)
    steps = len(y) // batch_size
    _sync(x.device)
    start = time.perf_counter()
    for i in range(steps):
        idx = order[i * batch_size : (i + 1) * batch_size]
        with amp.autocast():
            loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad(set_to_none=True)
        if amp.scaler is not None:
            amp.scaler.scale(loss).backward()
            amp.scaler.step(optimizer)
            amp.scaler.update()
        else:
            loss.backward()
            optimizer.step()
    _sync(x.device)
    return steps * batch_size / (time.perf_counter() - start)


def throughput(
    name: str, data: Dataset, recipe: Recipe, device: torch.device, rounds: int
) -> dict[str, Any]:
    arch = ZOO[name]()
    torch.backends.cudnn.benchmark = True
    torch.set_num_threads(recipe.threads)  # ours runs with the recipe's threads; so does plain
    # Our loop's warm-up epoch runs alone, so its peak memory is its own: resident data, model,
    # optimizer, activations and cuDNN's workspaces.
    _release(device)
    held = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    run = iter_training(
        arch, data, recipe.replace(epochs=rounds + 1, max_seconds=None), device=device
    )
    next(run)
    peak = torch.cuda.max_memory_allocated(device) - held if device.type == "cuda" else 0

    proxy_input = recipe.proxy_input(data.input_shape)
    sized = data.resized(proxy_input[1:])
    x = to_float(sized.train_images, sized.mean, sized.std).to(device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = sized.train_labels.to(device)
    model = build_proxy_model(arch, data, recipe).to(device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, nesterov=True, fused=True
    )
    amp = MixedPrecision(recipe.precision, device)
    generator = torch.Generator().manual_seed(0)
    plain_epoch(model, optimizer, amp, x, y, recipe.batch_size, generator)  # warm-up, autotuning

    ours: list[float] = []
    plain: list[float] = []
    for _ in range(rounds):
        plain.append(plain_epoch(model, optimizer, amp, x, y, recipe.batch_size, generator))
        try:
            record = next(run)
        except StopIteration as finished:
            raise SystemExit(f"{name}: our loop ended early: {finished.value.error}") from None
        ours.append(record.images_per_second)
    run.close()
    ratios = [a / b for a, b in zip(ours, plain)]
    return {
        "name": name,
        "ours": statistics.median(ours),
        "plain": statistics.median(plain),
        "ratio": statistics.median(ratios),
        "range": (min(ratios), max(ratios)),
        "peak_mib": peak / 2**20,
    }


# ---- 2. parity -------------------------------------------------------------------------------------


def parity(
    name: str, data: Dataset, recipe: Recipe, device: torch.device, cpu_threads: int
) -> list[dict[str, Any]]:
    arch = ZOO[name]()
    runs = [
        (
            "CPU loop, float32",
            torch.device("cpu"),
            recipe.replace(threads=cpu_threads, precision="float32"),
        ),
        (f"{device.type}, float32", device, recipe.replace(precision="float32")),
        (f"{device.type}, {recipe.precision}", device, recipe),
        (f"{device.type}, {recipe.precision}, again", device, recipe),
    ]
    rows = []
    for label, where, run_recipe in runs:
        result = train(arch, data, run_recipe, device=where)
        if not result.ok:
            raise SystemExit(f"parity, {label}: {result.error}")
        rows.append(
            {
                "run": label,
                "accuracy": result.accuracy,
                "n": result.val_count,
                "seconds": result.train_seconds,
                "train_loss": result.curve[-1].train_loss,
            }
        )
    reference = rows[0]
    for row in rows:
        p, q, n = row["accuracy"], reference["accuracy"], row["n"]
        row["difference"] = p - q
        row["noise"] = 2 * math.sqrt((p * (1 - p) + q * (1 - q)) / max(n, 1))
    return rows


# ---- 3. packing ------------------------------------------------------------------------------------


def _packed_trials(
    rank: int,
    settings: dict[str, Any],
    ready: Any,
    results: Any,
) -> None:
    """One process of a packing: load, touch the device, wait for the others, train, report."""
    torch.set_num_threads(settings["threads"])
    data = load_data(settings["dataset"], settings["data_dir"], settings["limit_train"])
    device = torch.device(settings["device"])
    torch.zeros(1, device=device)  # the device context, before the clock starts
    recipe = Recipe.from_dict(settings["recipe"])
    arch = ZOO[settings["network"]]()
    ready.wait(timeout=SETUP_S)
    start = time.perf_counter()
    statuses = []
    for index in range(settings["trials"]):
        result = train(arch, data, recipe.replace(seed=rank * 1000 + index), device=device)
        statuses.append(str(result.status))
    results.put((rank, time.perf_counter() - start, statuses))


def packing(
    network: str, recipe: Recipe, device: torch.device, args: argparse.Namespace
) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")  # CUDA cannot be forked
    rows = []
    for k in args.packings:
        settings = {
            "threads": args.pack_threads,
            "dataset": args.dataset,
            "data_dir": args.data_dir,
            "limit_train": args.limit_train,
            "device": str(device),
            "recipe": recipe.to_dict(),
            "network": network,
            "trials": args.pack_trials,
        }
        ready, results = context.Barrier(k + 1), context.Queue()
        processes = [
            context.Process(target=_packed_trials, args=(rank, settings, ready, results))
            for rank in range(k)
        ]
        for process in processes:
            process.start()
        ready.wait(timeout=SETUP_S)  # a process that died loading breaks it: no endless wait
        start = time.perf_counter()
        finished = [results.get(timeout=TRIALS_S) for _ in processes]
        wall = time.perf_counter() - start
        for process in processes:
            process.join()
        statuses = [status for _, _, done in finished for status in done]
        failed = sum(status != "ok" for status in statuses)
        trials = len(statuses)
        rows.append(
            {
                "k": k,
                "trials": trials,
                "failed": failed,
                "wall": wall,
                "per_hour": trials / wall * 3600,
                "per_trial": statistics.median(
                    seconds / len(done) for _, seconds, done in finished
                ),
            }
        )
        print(
            f"packing {k}: {trials} trials ({failed} failed) in {wall:.1f} s: "
            f"{rows[-1]['per_hour']:.0f} trials/h",
            flush=True,
        )
    return rows


# ---- the report ----------------------------------------------------------------------------------


def load_data(name: str, data_dir: str | None, limit_train: int | None) -> Dataset:
    return load_dataset(name, data_dir, seed=0, limit_train=limit_train)


def report(
    args: argparse.Namespace,
    info: dict[str, Any],
    recipe: Recipe,
    data: Dataset,
    speed: list[dict[str, Any]],
    same: list[dict[str, Any]],
    packed: list[dict[str, Any]],
) -> str:
    c, h, w = recipe.proxy_input(data.input_shape)
    where = (
        f"{info.get('name')} (compute capability {info.get('capability')}, "
        f"{info.get('memory_gib')} GiB), CUDA {info.get('cuda')}, cuDNN {info.get('cudnn')}, "
        f"torch {info.get('torch')}"
        if info["type"] == "cuda"
        else f"the CPU (a dry run of the script, not a GPU measurement), torch {info['torch']}"
    )
    lines = [
        f"Device: {where}. Data: {data.name}, {len(data.train_labels)} training and "
        f"{len(data.val_labels)} validation images, trained at {c}x{h}x{w}; batch "
        f"{recipe.batch_size}, precision {recipe.precision}.",
        "",
        f"Throughput: our loop against a plain loop on the same model (medians of {args.rounds} "
        f"alternating rounds after a warm-up epoch each; goal: ratio >= 0.9).",
        "",
        "| network | ours img/s | plain img/s | ours / plain (min-max) | our peak GPU memory MiB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in speed:
        low, high = row["range"]
        lines.append(
            f"| {row['name']} | {row['ours']:,.0f} | {row['plain']:,.0f} | {row['ratio']:.2f} "
            f"({low:.2f}-{high:.2f}) | {row['peak_mib']:,.0f} |"
        )
    lines += [
        "",
        f"Parity: {args.parity_network}, {args.parity_epochs} epochs, seed 0, the same recipe "
        f"on each (difference from the CPU loop; noise: two standard errors).",
        "",
        "| run | val accuracy | - CPU | noise | final train loss | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in same:
        lines.append(
            f"| {row['run']} | {row['accuracy']:.4f} (n={row['n']}) | {row['difference']:+.4f} "
            f"| {row['noise']:.4f} | {row['train_loss']:.4f} | {row['seconds']:.1f} |"
        )
    lines += [
        "",
        f"Packing: {args.pack_network}, {args.pack_trials} trials per process, "
        f"{args.pack_epochs} epochs each, "
        f"{args.pack_threads} CPU thread(s) per process, all processes on one device.",
        "",
        "| trials per GPU | trials | failed | wall s | median s per trial | trials per hour per GPU |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in packed:
        lines.append(
            f"| {row['k']} | {row['trials']} | {row['failed']} | {row['wall']:.1f} "
            f"| {row['per_trial']:.1f} | {row['per_hour']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N (cpu: a dry run)")
    parser.add_argument("--precision", default="auto", help="auto, float32, bfloat16, float16")
    parser.add_argument("--dataset", default="fashion-mnist-mini")
    parser.add_argument("--data-dir")
    parser.add_argument("--limit-train", type=int, help="training images (default: all)")
    parser.add_argument("--resolution", type=int, help="proxy resolution (default: the data's)")
    parser.add_argument("--min-final-map", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parity-network", default="mnasnet0_5")
    parser.add_argument("--parity-epochs", type=int, default=2)
    parser.add_argument("--cpu-threads", type=int, default=4, help="threads of the CPU parity run")
    parser.add_argument("--pack-network", default="mobilenet_v3_large_0.75")
    parser.add_argument("--pack-trials", type=int, default=2, help="trials per process")
    parser.add_argument("--pack-epochs", type=int, default=2)
    parser.add_argument("--pack-threads", type=int, default=1)
    parser.add_argument("--packings", default=",".join(map(str, PACKINGS)))
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to test the script")
    parser.add_argument("--write", action="store_true", help="record in BENCHMARKS.md")
    args = parser.parse_args()
    args.packings = [int(k) for k in str(args.packings).split(",")]
    if args.quick:
        args.limit_train = args.limit_train or 512
        args.networks, args.rounds = args.networks.split(",")[0], 1
        args.parity_epochs, args.pack_trials, args.pack_epochs = 1, 1, 1
        args.packings = args.packings[:2]

    device = resolve_device(args.device)
    if args.write and device.type != "cuda":
        raise SystemExit("--write records a GPU measurement: run it on a CUDA GPU")
    info = describe_device(device)
    recipe = Recipe(
        batch_size=args.batch_size,
        threads=args.pack_threads,
        max_seconds=None,
        resolution=args.resolution,
        min_final_map=args.min_final_map,
        precision=resolve_precision(args.precision, device),
    )
    data = load_data(args.dataset, args.data_dir, args.limit_train)
    print(f"device: {info}", flush=True)

    speed = []
    for name in args.networks.split(","):
        speed.append(throughput(name, data, recipe, device, args.rounds))
        row = speed[-1]
        print(
            f"{name:24s} ours {row['ours']:9.0f}  plain {row['plain']:9.0f} img/s  "
            f"ratio {row['ratio']:.2f}  peak {row['peak_mib']:.0f} MiB",
            flush=True,
        )
    same = parity(
        args.parity_network,
        data,
        recipe.replace(epochs=args.parity_epochs),
        device,
        args.cpu_threads,
    )
    for row in same:
        print(
            f"parity {row['run']:28s} {row['accuracy']:.4f} ({row['difference']:+.4f})", flush=True
        )
    packed = packing(args.pack_network, recipe.replace(epochs=args.pack_epochs), device, args)

    body = report(args, info, recipe, data, speed, same, packed)
    print()
    print(body)
    if args.write:
        from _report import write_section

        write_section("gpu-check", "GPU check", body, packages=("torch", "numpy"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _release(device: torch.device) -> None:
    """Free what earlier measurements left in the allocator and restart its peak."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


if __name__ == "__main__":
    main()
