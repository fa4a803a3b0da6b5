"""Search quality at 150 MFLOPs: does `nas search` beat hand-designed networks and random search?

On real images (CIFAR-10 JPEGs through the ``imagefolder`` dataset, 32x32, a fixed training
subset and the driver's seeded validation split), every zoo network under the MFLOPs budget is
trained with exactly the proxy the search uses: the same `Recipe` (built by the driver's own
function from the same `SearchConfig`), the same data split and seed, the same Ray worker code.
Then `nas.search.search` runs with each sampler (tpe, nsga2, random), warm start off, for a fixed
number of trained trials per seed, each run in its own SQLite study database.

Reported per run: hypervolume of the trained front in (validation accuracy up, armv8 latency
down) against a fixed reference point, the same at the trial count every run of that seed has
reached (equal training budget), best accuracy, which zoo networks the front weakly dominates
(at least as accurate and no slower), wall time and trials per hour.

It takes hours on two cores, so everything is resumable: the zoo results go to a JSON as each
network finishes, the searches reuse their study databases (``resume=True``), and the runs
advance round-robin in steps of ``--step`` trials so that a stopped benchmark still compares the
samplers at similar budgets. ``--report-only`` rebuilds the table and the figure from whatever is
in the work directory without training. See docs/benchmark-search-quality.md.

    python benchmarks/search_quality.py --quick                    # smoke run, minutes
    nohup python benchmarks/search_quality.py > WORK/run.log 2>&1 &   # the full run, resumable
    python benchmarks/search_quality.py --report-only              # table + figure from what is done
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

import optuna
from _report import BENCHMARKS_MD, command_line, write_section
from optuna.trial import TrialState

from nas.config import SearchConfig
from nas.evaluators.datasets import load_dataset
from nas.evaluators.latency import load_table
from nas.front import pareto_front
from nas.pricing import price
from nas.recipes import recipe_for
from nas.search import search, start_local_ray
from nas.search_spaces.zoo import ZOO
from nas.trials import Outcome, TrialAttrs

SECTION = "search-quality"
FIGURE = Path(__file__).resolve().parent / "figures" / "search_quality_pareto.png"
SAMPLERS = ("tpe", "nsga2", "random")
DEFAULT_WORK = Path("/tmp/nas-bench/work")
DEFAULT_DATA = Path("/tmp/nas-bench/cifar10")

# What makes two invocations the same benchmark; a work directory holds exactly one of them.
SETTING_KEYS = (
    "data_dir",
    "limit_train",
    "epochs",
    "budget_mflops",
    "target",
    "space",
    "no_early_stopping",
)


# ---- settings --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help="unpacked CIFAR-10 JPEG image folder (train/<class>, test/<class>)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help=f"study databases, zoo JSON, logs (default {DEFAULT_WORK}, "
        f"or {DEFAULT_WORK.parent / 'quick'} with --quick)",
    )
    parser.add_argument(
        "--limit-train",
        type=int,
        default=None,
        help="training images kept (stratified; default 20000, --quick 1000); "
        "validation is always the driver's 10%% split of the full train set",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="proxy epochs (default 4, --quick 1)"
    )
    parser.add_argument(
        "--trials", type=int, default=None, help="trained trials per run (default 40, --quick 3)"
    )
    parser.add_argument(
        "--step",
        type=int,
        default=None,
        help="runs advance round-robin by this many trained trials "
        "(default 4; --quick: all at once)",
    )
    parser.add_argument("--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS))
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="search, data-split and init seeds (default 0 1; --quick 0)",
    )
    parser.add_argument("--budget-mflops", type=float, default=150.0)
    parser.add_argument("--target", default="armv8")
    parser.add_argument("--space", default="mobile")
    parser.add_argument(
        "--ref-ms",
        type=float,
        default=25.0,
        help="hypervolume reference latency in ms (reference accuracy is 0); "
        "points slower than this add nothing",
    )
    parser.add_argument(
        "--no-early-stopping",
        action="store_true",
        help="train every candidate to the end (the search stops poor ones by default)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1000 images, 1 epoch, 3 trials per sampler, seed 0",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the table and figure from the work directory, no training",
    )
    parser.add_argument(
        "--label",
        default="",
        help="report under its own BENCHMARKS.md section and figure name, so an "
        "earlier run (e.g. of another early-stopping rule) keeps its own",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "work_dir": DEFAULT_WORK.parent / "quick" if quick else DEFAULT_WORK,
        "limit_train": 1000 if quick else 20000,
        "epochs": 1 if quick else 4,
        "trials": 3 if quick else 40,
        "seeds": [0] if quick else [0, 1],
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.step is None:
        args.step = args.trials if quick else 4
    args.work_dir = args.work_dir.expanduser().resolve()
    args.data_dir = args.data_dir.expanduser().resolve()
    return args


def search_config(
    args: argparse.Namespace,
    sampler: str,
    seed: int,
    trials: int | None = None,
    resume: bool = False,
) -> SearchConfig:
    """The one `SearchConfig` a run (and, for its seed, the zoo training) is built from."""
    name = run_name(sampler, seed)
    return SearchConfig(
        budget_mflops=args.budget_mflops,
        target=args.target,
        space=args.space,
        dataset="imagefolder",
        data_dir=str(args.data_dir),
        limit_train=args.limit_train,
        trials=trials or args.trials,
        epochs=args.epochs,
        proxy_resolution=0,
        min_final_map=0,
        early_stopping=not args.no_early_stopping,
        cpus_per_trial=1,
        sampler=sampler,
        seed=seed,
        warm_start=False,
        resume=resume,
        storage=f"sqlite:///{database(args, sampler, seed)}",
        study=name,
        out=str(args.work_dir / "out" / name),
        artifact_dir=str(args.work_dir / "artifacts"),
    )


def run_name(sampler: str, seed: int) -> str:
    return f"{sampler}-seed{seed}"


def database(args: argparse.Namespace, sampler: str, seed: int) -> Path:
    return args.work_dir / "studies" / f"{run_name(sampler, seed)}.db"


def check_settings(args: argparse.Namespace) -> None:
    """Refuse to mix two different benchmarks in one work directory; record the first one."""
    current = {key: str(getattr(args, key)) for key in SETTING_KEYS}
    path = args.work_dir / "settings.json"
    if path.exists():
        recorded = json.loads(path.read_text())
        differences = [
            f"{key}: {recorded.get(key)} -> {value}"
            for key, value in current.items()
            if recorded.get(key) != value
        ]
        if differences:
            sys.exit(
                f"error: {args.work_dir} holds a benchmark with other settings "
                f"({'; '.join(differences)}); pass --work-dir for a new one"
            )
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n")


# ---- zoo networks ----------------------------------------------------------------------------


def zoo_under_budget(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every zoo network the budget admits, priced exactly as the driver prices a candidate."""
    config = search_config(args, "random", 0)
    table = load_table(args.target)
    fits = {}
    for name, factory in ZOO.items():
        cost = price(factory(), config, table)
        if cost.feasible:
            fits[name] = {
                "mflops": cost.mflops,
                "latency_ms": cost.latency_ms,
                "params": cost.params,
            }
    return fits


class ZooStore:
    """Finished zoo trainings in one JSON, rewritten atomically after each one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    @staticmethod
    def key(name: str, seed: int) -> str:
        return f"{name}@seed{seed}"

    def get(self, name: str, seed: int) -> dict[str, Any] | None:
        return self.data.get(self.key(name, seed))

    def put(self, name: str, seed: int, record: dict[str, Any]) -> None:
        with self.lock:
            self.data[self.key(name, seed)] = record
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=2) + "\n")
            tmp.replace(self.path)


def train_zoo(args: argparse.Namespace, seed: int, store: ZooStore) -> None:
    """Train the zoo networks of `seed` not yet in the store, two at a time as the search does.

    The data, recipe and worker function are the driver's own: `load_dataset` with the driver's
    arguments, `nas.recipes.recipe_for(config)`, and `nas.worker.train_candidate` as a Ray task with
    one CPU, so a zoo network is trained exactly as a search candidate of the same seed would be.
    """
    import ray

    from nas.worker import RESULT, remote_trainer

    fits = zoo_under_budget(args)
    pending = [name for name in fits if store.get(name, seed) is None]
    if not pending:
        return
    config = search_config(args, "random", seed)
    data = load_dataset(
        config.dataset, config.data_dir, seed=config.seed, limit_train=config.limit_train
    )
    recipe = recipe_for(config)
    log(f"zoo seed {seed}: training {', '.join(pending)} ({data.provenance})")
    # Ray is already up (run_all); the searches that follow reuse it.
    trainer = remote_trainer(config.cpus_per_trial, 0.0)
    data_ref = ray.put(data)

    def one(name: str) -> None:
        started = time.monotonic()
        result: dict[str, Any] = {}
        for ref in trainer.remote(ZOO[name]().to_string(), data_ref, recipe.to_dict()):
            item = ray.get(ref)
            if item["type"] == RESULT:
                result = item
        record = {
            **fits[name],
            "arch": ZOO[name]().to_string(),
            "status": result.get("status"),
            "accuracy": result.get("accuracy"),
            "error": result.get("error"),
            "curve": [epoch["val_accuracy"] for epoch in result.get("curve", [])],
            "train_seconds": result.get("train_seconds"),
            "wall_seconds": round(time.monotonic() - started, 2),
            "recipe": recipe.to_dict(),
            "data": data.provenance,
            "input_shape": list(data.input_shape),
        }
        store.put(name, seed, record)
        log(
            f"zoo seed {seed}: {name} accuracy {record['accuracy']} "
            f"({record['status']}, {record['wall_seconds']:.0f} s)"
        )

    workers = max(1, (os.cpu_count() or 1) // config.cpus_per_trial)
    pool = ThreadPoolExecutor(workers)
    try:
        for future in [pool.submit(one, name) for name in pending]:
            future.result()
    finally:  # on Ctrl-C or SIGTERM do not wait for the networks still training
        pool.shutdown(wait=False, cancel_futures=True)


# ---- searches --------------------------------------------------------------------------------


def open_run(args: argparse.Namespace, sampler: str, seed: int) -> optuna.Study | None:
    path = database(args, sampler, seed)
    if not path.exists():
        return None
    storage = f"sqlite:///{path}"
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if run_name(sampler, seed) not in names:
        return None
    return optuna.load_study(study_name=run_name(sampler, seed), storage=storage)


def counted(study: optuna.Study | None) -> int:
    """Trials that count toward the search's --trials: trained to the end or stopped early."""
    if study is None:
        return 0
    return sum(
        bool(outcome and outcome.counts)
        for outcome in (TrialAttrs.of(t).outcome for t in study.get_trials(deepcopy=False))
    )


def advance(args: argparse.Namespace, sampler: str, seed: int, target: int) -> None:
    """Run (or resume) one search until it has `target` trained trials."""
    study = open_run(args, sampler, seed)
    have = counted(study)
    if have >= target:
        return
    database(args, sampler, seed).parent.mkdir(parents=True, exist_ok=True)
    log(f"{run_name(sampler, seed)}: {have} -> {target} trained trials")
    config = search_config(args, sampler, seed, trials=target, resume=study is not None)
    result = search(config)
    calls_path = args.work_dir / "calls.jsonl"
    with calls_path.open("a") as handle:
        handle.write(
            json.dumps(
                {
                    "run": run_name(sampler, seed),
                    "target": target,
                    "trained_after": result.n_trained,
                    "wall_seconds": result.wall_seconds,
                    "interrupted": result.interrupted,
                    "finished": datetime.now().isoformat(timespec="seconds"),
                }
            )
            + "\n"
        )
    if result.interrupted:
        raise KeyboardInterrupt


def run_all(args: argparse.Namespace) -> None:
    """Zoo of a seed first, then its searches round-robin in steps; seeds one after another."""
    import ray

    # One Ray for the whole benchmark: every search() call would otherwise start and stop its
    # own, paying the start-up each round and risking a timed-out start between two searches.
    start_local_ray(attempts=4, wait_s=30.0)
    store = ZooStore(args.work_dir / "zoo.json")
    try:
        for seed in args.seeds:
            train_zoo(args, seed, store)
            target = 0
            while target < args.trials:
                target = min(args.trials, target + args.step)
                for sampler in args.samplers:
                    advance(args, sampler, seed, target)
    finally:
        ray.shutdown()


# ---- the report ------------------------------------------------------------------------------


@dataclass
class Run:
    sampler: str
    seed: int
    points: list[tuple[float, float, int]]  # (accuracy, latency ms, trial number) in finish order
    n_counted: int
    n_stopped: int
    n_infeasible: int
    n_failed: int
    busy_seconds: float
    archs: list[str] = field(default_factory=list)  # every priced candidate, by trial number
    feasible: dict[str, tuple[float, float]] = field(default_factory=dict)  # arch -> (MFLOPs, ms)
    front: list[tuple[float, float, int]] = field(default_factory=list)


def load_run(args: argparse.Namespace, sampler: str, seed: int) -> Run | None:
    study = open_run(args, sampler, seed)
    if study is None:
        return None
    trials = study.get_trials(deepcopy=False)
    attrs = {t.number: TrialAttrs.of(t) for t in trials}
    trained = sorted(
        (
            t
            for t in trials
            if t.state == TrialState.COMPLETE and attrs[t.number].outcome is Outcome.TRAINED
        ),
        key=lambda t: t.datetime_complete,
    )
    points = [
        (float(attrs[t.number].accuracy), float(attrs[t.number].latency_ms), t.number)
        for t in trained
    ]
    outcomes = [attrs[t.number].outcome for t in trials]
    run = Run(
        sampler,
        seed,
        points,
        n_counted=counted(study),
        n_stopped=outcomes.count(Outcome.STOPPED),
        n_infeasible=outcomes.count(Outcome.INFEASIBLE),
        n_failed=outcomes.count(Outcome.FAILED),
        busy_seconds=busy_seconds(trials),
        archs=[
            attrs[t.number].arch or ""
            for t in sorted(trials, key=lambda t: t.number)
            if attrs[t.number].retry_of is None and t.state != TrialState.RUNNING
        ],
    )
    run.front = front(points)
    run.feasible = {
        a.arch: (a.mflops, a.latency_ms)
        for a in attrs.values()
        if a.latency_ms is not None and all(v <= 0 for v in a.violations or [1])
    }
    return run


def busy_seconds(trials: list[optuna.trial.FrozenTrial]) -> float:
    """Wall time the run was working: the union of its trials' start-to-finish intervals.

    Read from the database, so it survives a killed driver and leaves out the time the other
    runs used in between; it does not count starting Ray and loading data at each resume.
    """
    spans = sorted(
        (t.datetime_start, t.datetime_complete)
        for t in trials
        if t.datetime_start and t.datetime_complete
    )
    total, end = 0.0, None
    for start, stop in spans:
        if end is None or start > end:
            total += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            total += (stop - end).total_seconds()
            end = stop
    return total


def front(points: list[tuple[float, float, Any]]) -> list[tuple[float, float, Any]]:
    """(accuracy, latency, trial) points no other point beats on both, fastest first."""
    return pareto_front(points, value=itemgetter(0), cost=itemgetter(1))


def hypervolume(points: list[tuple[float, float, Any]], ref_ms: float) -> float:
    """Area dominated by `points` above accuracy 0 and left of `ref_ms`, as a share of 1 x ref_ms."""
    area, best = 0.0, 0.0
    for accuracy, latency, _ in front([p for p in points if p[1] < ref_ms]):
        if accuracy > best:
            area += (accuracy - best) * (ref_ms - latency)
            best = accuracy
    return area / ref_ms


def space_line(runs: list[Run], fits: dict[str, dict[str, Any]]) -> str:
    """Where the space's feasible candidates sit in latency and ms per MFLOP, beside the zoo's."""
    feasible = {arch: cost for run in runs for arch, cost in run.feasible.items()}
    if not feasible:
        return ""
    ms = sorted(cost[1] for cost in feasible.values())
    per = statistics.median(cost[1] / cost[0] for cost in feasible.values())
    zoo_per = statistics.median(z["latency_ms"] / z["mflops"] for z in fits.values())
    return (
        f"\nFeasible candidates priced by these runs: {len(feasible)} distinct, latency "
        f"{ms[0]:.2f}-{ms[-1]:.2f} ms (median {statistics.median(ms):.2f}), median "
        f"{per * 1000:.0f} us per MFLOP; the zoo networks: "
        f"{min(z['latency_ms'] for z in fits.values()):.2f}-"
        f"{max(z['latency_ms'] for z in fits.values()):.2f} ms, median "
        f"{zoo_per * 1000:.0f} us per MFLOP."
    )


def shared_prefix(sequences: list[list[str]]) -> int:
    """How many leading entries all sequences have in common."""
    count = 0
    for items in zip(*sequences):
        if len(set(items)) != 1:
            break
        count += 1
    return count


def covers(points: list[tuple[float, float, Any]], accuracy: float, latency: float) -> bool:
    """True if some point is at least as accurate and no slower."""
    return any(p[0] >= accuracy and p[1] <= latency for p in points)


def report(args: argparse.Namespace) -> str:
    store = ZooStore(args.work_dir / "zoo.json")
    fits = zoo_under_budget(args)
    runs = {(s, seed): load_run(args, s, seed) for seed in args.seeds for s in args.samplers}
    trained_by = args.work_dir / "command.txt"
    lines = [intro(args, fits)]
    if trained_by.exists():
        lines.append(
            f"\nTrained by `{trained_by.read_text().strip()}` (work directory `{args.work_dir}`)."
        )
    for seed in args.seeds:
        zoo = {name: store.get(name, seed) for name in fits}
        done = {name: z for name, z in zoo.items() if z and z.get("accuracy") is not None}
        seed_runs = [r for s in args.samplers if (r := runs[(s, seed)]) is not None]
        if not done and not seed_runs:
            lines.append(f"\n### Seed {seed}\n\nNot started.")
            continue
        lines.append(f"\n### Seed {seed}\n")
        lines.append(zoo_table(fits, zoo, args.ref_ms))
        if seed_runs:
            lines.append(run_table(args, seed_runs, done))
            lines.append(space_line(seed_runs, fits))
            if len(seed_runs) > 1:
                shared = shared_prefix([r.archs for r in seed_runs])
                lines.append(
                    f"\nThe runs of seed {seed} proposed the same first {shared} "
                    f"candidates (trained or over budget): the model-based samplers "
                    f"start from the seeded random sampler's draws."
                )
    lines.append(summary(args, runs, store, fits))
    if plot(args, runs, store, fits):
        rel = figure_path(args).relative_to(BENCHMARKS_MD.parent)
        lines.append(f"\n![Pareto fronts per sampler, zoo networks marked]({rel})")
    return "\n".join(lines)


def intro(args: argparse.Namespace, fits: dict[str, dict[str, Any]]) -> str:
    config = search_config(args, "random", args.seeds[0])
    recipe = recipe_for(config)
    return (
        f"CIFAR-10 JPEGs (`imagefolder`, 32x32) from `{args.data_dir}`: {args.limit_train} "
        f"training images (stratified) and the driver's seeded validation split (10% of the "
        f"50,000 training images, so 5,000); the test split is not read. Budget "
        f"{args.budget_mflops:g} MFLOPs (multiply-adds) at 3x224x224, target `{args.target}`, "
        f"space `{args.space}`. Proxy recipe, the search's default, identical for zoo and "
        f"search: {recipe.epochs} epochs, batch {recipe.batch_size}, lr {recipe.lr:g} "
        f"{recipe.schedule}, one thread per trial, two trials at a time; early stopping "
        f"{'off' if args.no_early_stopping else 'on (median rule) for search candidates'}. "
        f"Each seed changes the validation split, the training subset, the initialisation and "
        f"the sampler. Samplers {', '.join(args.samplers)}, warm start off, {args.trials} "
        f"trained trials per run (a candidate stopped early counts, as in `nas search`, but "
        f"only candidates trained to the end enter the front).\n\n"
        f"Hypervolume: area of (accuracy, latency) dominated by the front between reference "
        f"accuracy 0 and reference latency {args.ref_ms:g} ms, divided by 1 x {args.ref_ms:g} "
        f"ms (so 1.0 would be 100% accuracy at 0 ms). 'HV at n' compares every run of a seed "
        f"on its first n trained candidates (finish order), n being what all of them have "
        f"reached. 'Zoo covered': zoo networks for which the front holds a candidate at least "
        f"as accurate and no slower on {args.target}. Wall time is the union of the run's "
        f"trial intervals in its database. Zoo networks under budget: {', '.join(fits)}."
    )


def zoo_table(
    fits: dict[str, dict[str, Any]], zoo: dict[str, dict[str, Any] | None], ref_ms: float
) -> str:
    lines = [
        "| zoo network | MFLOPs | target ms | val accuracy | curve | train s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, cost in fits.items():
        record = zoo.get(name)
        if record is None:
            lines.append(
                f"| {name} | {cost['mflops']:.1f} | {cost['latency_ms']:.2f} | "
                f"not trained yet | | |"
            )
            continue
        accuracy = record.get("accuracy")
        shown = f"{accuracy:.4f}" if accuracy is not None else f"failed: {record.get('error')}"
        curve = " ".join(f"{v:.3f}" for v in record.get("curve", []))
        lines.append(
            f"| {name} | {cost['mflops']:.1f} | {cost['latency_ms']:.2f} | {shown} | "
            f"{curve} | {record.get('train_seconds') or 0:.0f} |"
        )
    done = [
        (z["accuracy"], fits[n]["latency_ms"], n)
        for n, z in zoo.items()
        if z and z.get("accuracy") is not None
    ]
    if done:
        lines.append(f"\nHypervolume of the zoo's own front: {hypervolume(done, ref_ms):.4f}.\n")
    return "\n".join(lines)


def run_table(args: argparse.Namespace, runs: list[Run], zoo: dict[str, dict[str, Any]]) -> str:
    common = min(len(r.points) for r in runs)
    header = (
        f"| sampler | trials | hypervolume | HV at n={common} | best accuracy "
        f"({args.target} ms) | front size | zoo covered | stopped early / over budget / "
        f"failed | wall h | trials/h |"
    )
    lines = [header, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for run in runs:
        status = (
            f"{run.n_counted}"
            if run.n_counted >= args.trials
            else f"partial ({run.n_counted} of {args.trials} trials)"
        )
        best = max(run.points, default=None)
        best_text = f"{best[0]:.4f} ({best[1]:.2f})" if best else "-"
        covered = [
            name for name, z in zoo.items() if covers(run.points, z["accuracy"], z["latency_ms"])
        ]
        covered_text = f"{len(covered)}/{len(zoo)}" + (f": {', '.join(covered)}" if covered else "")
        hours = run.busy_seconds / 3600
        rate = f"{run.n_counted / hours:.1f}" if hours > 0 else "-"
        lines.append(
            f"| {run.sampler} | {status} | {hypervolume(run.points, args.ref_ms):.4f} | "
            f"{hypervolume(run.points[:common], args.ref_ms):.4f} | {best_text} | "
            f"{len(run.front)} | {covered_text} | {run.n_stopped} / {run.n_infeasible} / "
            f"{run.n_failed} | {hours:.2f} | {rate} |"
        )
    return "\n".join(lines)


def summary(
    args: argparse.Namespace,
    runs: dict[tuple[str, int], Run | None],
    store: ZooStore,
    fits: dict[str, dict[str, Any]],
) -> str:
    """The evidence for the default sampler, computed, with how thin it is."""
    lines = ["\n### Summary\n"]
    for sampler in args.samplers:
        per_seed = []
        for seed in args.seeds:
            run = runs[(sampler, seed)]
            if run is None:
                continue
            seed_runs = [r for s in args.samplers if (r := runs[(s, seed)]) is not None]
            common = min(len(r.points) for r in seed_runs)
            if common:  # nothing to compare until every run of the seed has trained one
                per_seed.append((seed, hypervolume(run.points[:common], args.ref_ms), common))
        if not per_seed:
            continue
        mean = statistics.mean(hv for _, hv, _ in per_seed)
        lines.append(
            f"- {sampler}: HV at equal n per seed "
            + ", ".join(f"seed {s} {hv:.4f} (n={n})" for s, hv, n in per_seed)
            + f"; mean {mean:.4f}."
        )
    for sampler in args.samplers:
        if sampler == "random":
            continue
        wins, seeds_compared, dominated_all = 0, 0, []
        for seed in args.seeds:
            mine, rand = runs.get((sampler, seed)), runs.get(("random", seed))
            if mine and rand:
                n = min(len(mine.points), len(rand.points))
                seeds_compared += 1
                wins += hypervolume(mine.points[:n], args.ref_ms) > hypervolume(
                    rand.points[:n], args.ref_ms
                )
            zoo = [
                (n, z) for n in fits if (z := store.get(n, seed)) and z.get("accuracy") is not None
            ]
            if mine and zoo:
                dominated_all.append(
                    (
                        seed,
                        all(covers(mine.points, z["accuracy"], z["latency_ms"]) for _, z in zoo),
                        len(zoo),
                    )
                )
        if seeds_compared:
            lines.append(
                f"- {sampler} beats random in hypervolume at equal n on {wins} of "
                f"{seeds_compared} seed(s); its front covers every trained zoo "
                f"network on seed(s): "
                + (", ".join(str(s) for s, ok, _ in dominated_all if ok) or "none")
                + "."
            )
    spreads = []
    for sampler in args.samplers:
        values = [
            hypervolume(run.points, args.ref_ms)
            for seed in args.seeds
            if (run := runs[(sampler, seed)]) and run.n_counted >= args.trials
        ]
        if len(values) > 1:
            spreads.append(f"{sampler} {max(values) - min(values):.4f}")
    complete = [key for key, run in runs.items() if run and run.n_counted >= args.trials]
    lines.append(
        f"- Runs complete: {len(complete)} of {len(runs)}"
        + (f" ({', '.join(run_name(*key) for key in complete)})" if complete else "")
        + ". Seed-to-seed spread of the final hypervolume (the noise a sampler "
        "difference must exceed): "
        + (
            "; ".join(spreads)
            if spreads
            else "not measured yet (no sampler has two complete seeds)"
        )
        + "."
    )
    return "\n".join(lines)


def plot(
    args: argparse.Namespace,
    runs: dict[tuple[str, int], Run | None],
    store: ZooStore,
    fits: dict[str, dict[str, Any]],
) -> bool:
    """One panel per seed: every trained candidate faint, each sampler's front as a staircase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [
        s
        for s in args.seeds
        if any(runs[(x, s)] for x in args.samplers) or any(store.get(n, s) for n in fits)
    ]
    if not seeds:
        return False
    colours = {"tpe": "tab:blue", "nsga2": "tab:orange", "random": "tab:gray"}
    figure, axes = plt.subplots(1, len(seeds), figsize=(5.2 * len(seeds), 4.2), squeeze=False)
    for axis, seed in zip(axes[0], seeds):
        for sampler in args.samplers:
            run = runs[(sampler, seed)]
            if run is None or not run.points:
                continue
            colour = colours.get(sampler, None)
            axis.scatter(
                [p[1] for p in run.points],
                [p[0] for p in run.points],
                s=10,
                alpha=0.3,
                color=colour,
            )
            xs, ys = [], []
            for accuracy, latency, _ in run.front:
                xs += [latency, latency]
                ys += [ys[-1] if ys else 0.0, accuracy]
            xs.append(args.ref_ms)
            ys.append(ys[-1])
            axis.plot(
                xs[1:],
                ys[1:],
                drawstyle="default",
                color=colour,
                label=f"{sampler} ({len(run.points)} trained)",
            )
        for index, name in enumerate(fits):
            record = store.get(name, seed)
            if record and record.get("accuracy") is not None:
                axis.scatter(
                    [fits[name]["latency_ms"]],
                    [record["accuracy"]],
                    marker="*",
                    s=120,
                    color="tab:red",
                    zorder=5,
                )
                # Alternate label sides: neighbouring zoo networks are often a few ms apart.
                axis.annotate(
                    name,
                    (fits[name]["latency_ms"], record["accuracy"]),
                    fontsize=7,
                    xytext=(4, 6 if index % 2 else -11),
                    textcoords="offset points",
                )
        axis.set_title(f"seed {seed}", fontsize=10)
        axis.set_xlabel(f"{args.target} latency, ms (lookup table)")
        axis.set_ylabel("validation accuracy (proxy)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="lower right")
    figure.suptitle(
        f"Fronts under {args.budget_mflops:g} MFLOPs; red stars: zoo networks", fontsize=10
    )
    figure.tight_layout()
    path = figure_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return True


def figure_path(args: argparse.Namespace) -> Path:
    return FIGURE.with_name(f"{FIGURE.stem}-{args.label}.png") if args.label else FIGURE


# ---- entry point -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{datetime.now().isoformat(timespec='seconds')}] {message}", flush=True)


def main() -> None:
    args = parse_args()
    if not args.report_only:
        if not (args.data_dir / "train").is_dir():
            sys.exit(
                f"error: {args.data_dir} has no train/ folder; unpack "
                f"cifar10-jpeg.tar there (outside the repository) or pass --data-dir"
            )
        check_settings(args)
        (args.work_dir / "command.txt").write_text(command_line() + "\n")
        # SIGTERM stops like Ctrl-C. Ray replaces the handler while a search runs with one that
        # raises SystemExit; either way the databases stay consistent (a trial left running is
        # re-run on resume) and the report below is still written from what finished.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            run_all(args)
        except (KeyboardInterrupt, SystemExit):
            log("stopped; rerun the same command to continue")
    elif not args.work_dir.is_dir():
        sys.exit(f"error: no work directory {args.work_dir}; run the benchmark first")
    body = report(args)
    print(body)
    title = (
        f"Search quality at {args.budget_mflops:g} MFLOPs: search vs hand-designed "
        f"networks and random search"
        + (" (smoke run, --quick)" if args.quick else "")
        + (f" ({args.label})" if args.label else "")
    )
    section = f"{SECTION}-{args.label}" if args.label else SECTION
    write_section(section, title, body, packages=("torch", "optuna", "ray"))


if __name__ == "__main__":
    main()
