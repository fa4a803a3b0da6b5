"""Load: does the driver's time per asked candidate, and `nas report`'s run time, stay bounded as
one study grows to thousands of trials, most of them priced but never trained?

One study on the `tiny` space under a budget that only its cheapest corner meets, so that most
candidates are over budget (priced, recorded, never trained) and a few train for one epoch on a
stratified subset of the embedded fashion-mnist-mini. The random sampler asks: NSGA-II and TPE
learn where the budget ends, so under them the study soon trains most of what it asks and stops
being the priced-only load measured here; what they add per ask is profiled (``--profile``) on
the grown study instead. It grows
through the product's own command: `nas search --resume` as a user runs it (real Ray, the study
database on SQLite by default, or any `--storage` URL such as PostgreSQL), in chunks sized to
stop near each report checkpoint. At each checkpoint `nas report` runs as a subprocess, timed.

Figures, from the trials' own records:

- per 500-trial bucket, the median and p90 of ``driver_seconds`` (ask, sample, price and the
  price's attribute writes of one candidate, recorded by the driver on every trial), and the
  median cycle of a priced-only candidate (from its ask to the next ask: also its tell);
- `nas report`'s wall time at each checkpoint.

Bounds are ratios within one run, so another machine's speed cancels out: the last bucket's
median time per ask against the first bucket's, and the report's time at the last checkpoint
against the first.

The study database is the state (outside the repository: it grows to tens of MB); a rerun goes
on from it. The measured report times are kept in ``benchmarks/results/study_load*.json``, so
``--report-only`` rebuilds the table from a database and that file.

    nohup nice -n 10 python benchmarks/study_load.py > /tmp/nas-bench/study_load.log 2>&1 &
    python benchmarks/study_load.py --report-only
    python benchmarks/study_load.py --storage postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from _report import write_section
from sqlalchemy.engine import make_url

from nas.study import count_trained
from nas.trials import Outcome, TrialAttrs

if TYPE_CHECKING:
    from nas.proposals import Proposer

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_WORK = Path("/tmp/nas-bench/study_load")
STUDY = "load-tiny-armv8"
BUCKET = 500
CHECKPOINTS = (500, 1000, 2500, 5000)
ASK_BOUND = 1.5
"""The last bucket's median time per ask may be at most this many times the first bucket's."""
REPORT_BOUND = 10.0
"""`nas report` at the last checkpoint may take at most this many times its time at the first
(the trial count's own ratio: no worse than linear in the study's size)."""
CHUNK_SHARE = 0.85
"""A chunk aims at this share of the trials left to the next checkpoint: the share of candidates
under the budget drifts as the sampler learns, so aiming at all of it overshoots."""
FIRST_GUESS_FEASIBLE = 0.04
"""Share of candidates under the budget assumed before the study has any (sizes the first chunk)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    parser.add_argument(
        "--storage", default=None, help="study database [default: SQLite in --work-dir]"
    )
    parser.add_argument("--budget-mflops", type=float, default=32.0)
    parser.add_argument(
        "--checkpoints",
        default=",".join(map(str, CHECKPOINTS)),
        help="trial counts at which `nas report` is timed; the last is the study's final size",
    )
    parser.add_argument("--limit-train", type=int, default=200)
    parser.add_argument(
        "--sampler",
        default="random",
        help="sampler that grows the study; with --profile, the one whose asks are profiled",
    )
    parser.add_argument("--report-repeats", type=int, default=2)
    parser.add_argument(
        "--report-only", action="store_true", help="table from the database and the figures file"
    )
    parser.add_argument(
        "--profile",
        metavar="DB",
        help="profile the ask loop on a copy of this SQLite study database (a snapshot taken "
        "at a checkpoint, or the grown one), and keep the breakdown in the figures file",
    )
    parser.add_argument("--profile-asks", type=int, default=100)
    args = parser.parse_args(argv)
    args.checkpoints = tuple(sorted(int(c) for c in args.checkpoints.split(",")))
    args.storage = args.storage or f"sqlite:///{args.work_dir / 'study.db'}"
    return args


def backend(storage: str) -> str:
    return make_url(storage).get_backend_name()


def figures_file(args: argparse.Namespace) -> Path:
    kind = backend(args.storage)
    return RESULTS / ("study_load.json" if kind == "sqlite" else f"study_load_{kind}.json")


def profiles_file(args: argparse.Namespace) -> Path:
    """Kept apart from the figures file, which a growing run rewrites."""
    path = figures_file(args)
    return path.with_name(f"{path.stem}_profile.json")


def section_name(args: argparse.Namespace) -> str:
    kind = backend(args.storage)
    return "study-load" if kind == "sqlite" else f"study-load-{kind}"


def nas_command() -> list[str]:
    """The `nas` console script of this interpreter's environment: the command a user runs."""
    return [str(Path(sys.executable).parent / "nas")]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- growing the study --------------------------------------------------------------------


def load(args: argparse.Namespace) -> optuna.Study | None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=STUDY, storage=args.storage)
    except KeyError:
        return None


def search_chunk(args: argparse.Namespace, trials: int, resume: bool) -> float:
    """One `nas search` run that stops once `trials` searched candidates are trained in all."""
    command = [
        *nas_command(),
        "search",
        *("--space", "tiny", "--target", "armv8", "--budget-mflops", str(args.budget_mflops)),
        *("--study", STUDY, "--storage", args.storage, "--out", str(args.work_dir / "out")),
        *("--trials", str(trials), "--epochs", "1", "--limit-train", str(args.limit_train)),
        *("--workers", "1", "--confirm-seeds", "0", "--no-warm-start", "--sampler", args.sampler),
        *(["--resume"] if resume else []),
    ]
    started = time.monotonic()
    with open(args.work_dir / "search.log", "a") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.monotonic() - started


def time_report(args: argparse.Namespace) -> list[float]:
    """Wall seconds of `nas report` on the study as it stands, once per repeat."""
    command = [
        *nas_command(),
        "report",
        *("--study", STUDY, "--storage", args.storage, "--out", str(args.work_dir / "report")),
    ]
    seconds = []
    for _ in range(args.report_repeats):
        started = time.monotonic()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
        seconds.append(round(time.monotonic() - started, 2))
    return seconds


def grow(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Run search chunks until the study holds the last checkpoint's trials, timing the report
    at every checkpoint on the way (a resumed run times only the ones still missing)."""
    args.work_dir.mkdir(parents=True, exist_ok=True)
    while True:
        study = load(args)
        size = len(study.get_trials(deepcopy=False)) if study else 0
        trained = count_trained(study)[0] if study else 0
        for checkpoint in args.checkpoints:
            if size >= checkpoint and str(checkpoint) not in figures["reports"]:
                seconds = time_report(args)
                figures["reports"][str(checkpoint)] = {"trials": size, "seconds": seconds}
                save(args, figures)
                log(f"nas report at {size} trials: {seconds} s")
        if size >= args.checkpoints[-1]:
            return
        target = min(c for c in args.checkpoints if c > size)
        share = trained / size if size else FIRST_GUESS_FEASIBLE
        step = max(1, math.floor((target - size) * share * CHUNK_SHARE))
        seconds = search_chunk(args, trained + step, resume=study is not None)
        figures["chunks"].append({"from": size, "trained_to": trained + step, "seconds": seconds})
        save(args, figures)
        log(f"search chunk from {size} trials, {trained + step} trained: {seconds:.0f} s")


def save(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    path = figures_file(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=1) + "\n")


# ---- the figures --------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def buckets(study: optuna.Study) -> list[dict[str, Any]]:
    """Per `BUCKET` trials (by number): time per ask, the priced-only cycle, what became of them."""
    trials = study.get_trials(deepcopy=False)
    rows = []
    for first in range(0, len(trials), BUCKET):
        chunk = trials[first : first + BUCKET]
        records = [TrialAttrs.of(t) for t in chunk]
        driver = [a.driver_seconds for a in records if a.driver_seconds is not None]
        cycles = [
            (after.datetime_start - trial.datetime_start).total_seconds()
            for trial, attrs, after in zip(chunk, records, trials[first + 1 : first + BUCKET + 1])
            if attrs.outcome is Outcome.INFEASIBLE and after.datetime_start and trial.datetime_start
        ]
        rows.append(
            {
                "trials": f"{first}-{first + len(chunk) - 1}",
                "n": len(chunk),
                "infeasible": sum(a.outcome is Outcome.INFEASIBLE for a in records),
                "trained": sum(bool(a.outcome and a.outcome.counts) for a in records),
                "ask_median": statistics.median(driver),
                "ask_p90": quantile(driver, 0.9),
                "cycle_median": statistics.median(cycles) if cycles else math.nan,
            }
        )
    return rows


def table(rows: list[dict[str, Any]], figures: dict[str, Any]) -> str:
    lines = [
        "| trials | priced only | trained | time per ask, median (s) | p90 (s) "
        "| priced-only cycle, median (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['trials']} | {row['infeasible']} | {row['trained']} | "
            f"{row['ask_median']:.3f} | {row['ask_p90']:.3f} | {row['cycle_median']:.3f} |"
        )
    lines += [
        "",
        "| checkpoint | trials in the study | `nas report` wall time (s), each run | note |",
        "|---:|---:|---|---|",
    ]
    for checkpoint, report in sorted(figures["reports"].items(), key=lambda kv: int(kv[0])):
        seconds = ", ".join(f"{s:.1f}" for s in report["seconds"])
        note = report.get("note", "")
        lines.append(f"| {checkpoint} | {report['trials']} | {seconds} | {note} |")
    return "\n".join(lines)


def verdicts(rows: list[dict[str, Any]], figures: dict[str, Any]) -> list[str]:
    """The two bounds, as ratios measured in this run."""
    lines = []
    full = [row for row in rows if row["n"] == BUCKET] or rows
    if len(full) >= 2:
        ratio = full[-1]["ask_median"] / full[0]["ask_median"]
        lines.append(
            f"Time per ask, last full bucket ({full[-1]['trials']}) against the first: "
            f"{ratio:.2f}x (bound {ASK_BOUND:g}x: {'met' if ratio <= ASK_BOUND else 'NOT met'})."
        )
    reports = sorted(figures["reports"].items(), key=lambda kv: int(kv[0]))
    if len(reports) >= 2:
        low, high = reports[0][1], reports[-1][1]
        ratio = min(high["seconds"]) / min(low["seconds"])
        growth = high["trials"] / low["trials"]
        lines.append(
            f"`nas report` at {high['trials']} trials against {low['trials']} ({growth:.1f}x the "
            f"trials), fastest runs: {ratio:.2f}x (bound {REPORT_BOUND:g}x: "
            f"{'met' if ratio <= REPORT_BOUND else 'NOT met'})."
        )
    return lines


FINDINGS = """\
Nothing in the driver's own code grows with the study (the random sampler's profiles at two
sizes split an ask alike): per ask it prices the candidate (fvcore
tracing), suggests its parameters and writes its price as user attributes, each suggestion and
each attribute one transaction of Optuna's storage, whose trial cache reads only new and
unfinished trials. What grows per ask is the sampler's work on the history (TPE fits its
estimators on every trial, the over-budget ones included; NSGA-II walks the trial list for its
generation's parents); the random sampler that grew this study does not. `nas report` grows
with the study, less than in proportion: it loads every trial of the study, with its user
attributes, through Optuna (a priced-only trial carries as many attributes as a trained one),
above a fixed cost of imports, pricing the zoo networks and drawing the plots."""
"""What the profiles and the report's growth were traced to (stated without figures: those
are in the tables this text follows)."""


def profile_table(args: argparse.Namespace) -> str:
    """The `--profile` breakdowns kept so far, one row per (sampler, study size)."""
    path = profiles_file(args)
    if not path.exists():
        return ""
    lines = [
        "| study | sampler | trials in the study | asks profiled | per ask (s) | sampler | price "
        "| sample (suggest) | attribute writes | tell | sampler's share |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for found in json.loads(path.read_text()).values():
        part = found["per_ask"]
        lines.append(
            f"| {found.get('study', 'this study')} | {found['sampler']} | {found['trials']} | "
            f"{found['asks']} | {found['loop']:.2f} | "
            + " | ".join(
                f"{part.get(name, 0.0):.2f}"
                for name in ("sampler", "price", "sample", "attribute writes", "tell")
            )
            + f" | {part.get('sampler', 0.0) / found['loop']:.0%} |"
        )
    return "\n".join(lines)


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    study = load(args)
    if study is None:
        sys.exit(f"no study {STUDY!r} in {args.storage}: run without --report-only first")
    rows = buckets(study)
    size = sum(row["n"] for row in rows)
    summary = "\n".join(verdicts(rows, figures))
    body = (
        f"One study on the `tiny` space at {args.budget_mflops:g} MFLOPs on armv8, grown by "
        f"`nice -n 10 python benchmarks/study_load.py` through `nas search --resume` chunks "
        f"({args.sampler} sampler, one worker, one epoch on "
        f"{args.limit_train} fashion-mnist-mini images) to {size} trials, on "
        f"{backend(args.storage)}. Time per ask is the driver's `driver_seconds` (ask, sample, "
        f"price, the price's attribute writes); the priced-only cycle runs from one "
        f"over-budget candidate's ask to the next ask (its tell included).\n\n"
        f"{table(rows, figures)}\n\n{summary}\n"
    )
    if size < args.checkpoints[-1]:
        body += (
            f"\nPartial: the study holds {size} of the {args.checkpoints[-1]} trials planned; "
            f"rerunning the command grows it on from there and rewrites this section.\n"
        )
    if profiles := profile_table(args):
        body += (
            "\nWhere an ask's time goes (`--profile`: cProfile of the driver's own ask loop, "
            "`Proposer.next`, on a copy of the study, without Ray; seconds per asked "
            "candidate under the profiler, which inflates them alike; the sampler's time is "
            "part of ask, sample and tell; a row profiled while the study grew ran beside the search at "
            "a lower priority, so compare shares, not seconds, across rows; each row is "
            "`python benchmarks/study_load.py --sampler S --profile DB --profile-asks 30`, on "
            "a copy of the database named):\n\n"
            f"{profiles}\n\n{FINDINGS}\n"
        )
    print(body)
    if size >= args.checkpoints[-1] or args.report_only:
        write_section(section_name(args), "Study load", body, ("optuna", "sqlalchemy", "ray"))


# ---- where the time per ask goes ----------------------------------------------------------

PROFILED = {
    # (file suffix, function): the part of an ask it stands for
    ("optuna/study/study.py", "ask"): "ask",
    ("search_spaces/space.py", "sample"): "sample",
    ("nas/pricing.py", "price"): "price",
    ("nas/trials.py", "write_attrs"): "attribute writes",
    ("optuna/study/study.py", "tell"): "tell",
}
SAMPLER_ENTRY_POINTS = (
    "infer_relative_search_space",
    "sample_relative",
    "sample_independent",
    "before_trial",
    "after_trial",
)
"""What Optuna calls on a sampler (inside ask, suggest and tell). Only the study's own sampler
class counts, so a sampler delegating to an inner RandomSampler is not counted twice."""


def proposer_on(database: Path, sampler: str) -> Proposer:
    """The driver's own proposer (and the recorder it writes through) on the study in
    `database`, as a resumed search with `sampler` would ask, without Ray or a lease."""
    from rich.console import Console

    from nas.config import SearchConfig
    from nas.evaluators.datasets import load_dataset
    from nas.evaluators.latency import load_table
    from nas.monitor import SearchMonitor
    from nas.proposals import Proposer
    from nas.recipes import recipe_for
    from nas.recorder import Recorder
    from nas.search_spaces.space import load_space
    from nas.storage import open_storage
    from nas.study import open_study

    config = SearchConfig(
        space="tiny",
        target="armv8",
        budget_mflops=float(json.loads(_study_attr(database, "config"))["budget_mflops"]),
        study=STUDY,
        storage=f"sqlite:///{database}",
        epochs=1,
        limit_train=200,
        resume=True,
        sampler=sampler,
        force=True,  # another sampler than the one that grew the study
    )
    space, table, recipe = load_space("tiny"), load_table("armv8"), recipe_for(config)
    data = load_dataset(config.dataset, seed=0, limit_train=config.limit_train)
    study = open_study(config, open_storage(config.storage), recipe)
    recorder = Recorder(study, config, space=space, table=table, recipe=recipe, data=data)
    monitor = SearchMonitor(0, console=Console(file=open("/dev/null", "w")), live=False)
    return Proposer(study, config, space=space, table=table, recorder=recorder, monitor=monitor)


def profile_asks(database: Path, asks: int, sampler: str) -> dict[str, Any]:
    """cProfile `asks` candidates of the driver's own ask loop (`Proposer.next`) on a copy of a
    grown SQLite study, without Ray: seconds per ask in each part, and the sampler's."""
    import cProfile
    import inspect
    import pstats
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "study.db"
        with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
            source.backup(target)  # consistent while a search writes to `database`
        proposer = proposer_on(copy, sampler)
        study = proposer.study
        size = len(study.get_trials(deepcopy=False))
        profiler = cProfile.Profile()
        profiler.enable()
        while len(study.get_trials(deepcopy=False)) < size + asks:
            proposer.next({})
        profiler.disable()
        asked = len(study.get_trials(deepcopy=False)) - size
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    sampler_file = inspect.getfile(type(study.sampler))
    parts: dict[str, float] = {}
    for (filename, _, function), (*_, cumulative, _) in stats.items():
        for (suffix, name), part in PROFILED.items():
            if function == name and filename.endswith(suffix):
                parts[part] = parts.get(part, 0.0) + cumulative
        if filename == sampler_file and function in SAMPLER_ENTRY_POINTS:
            parts["sampler"] = parts.get("sampler", 0.0) + cumulative
    loop = max(
        cumulative
        for (filename, _, function), (*_, cumulative, _) in stats.items()
        if function == "next" and filename.endswith("nas/proposals.py")
    )
    per_ask = {part: round(seconds / asked, 4) for part, seconds in parts.items()}
    return {
        "sampler": sampler,
        "trials": size,
        "asks": asked,
        "loop": round(loop / asked, 4),
        "per_ask": per_ask,
    }


def _study_attr(database: Path, key: str) -> str:
    import sqlite3

    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "select value_json from study_user_attributes where key = ?", (key,)
        ).fetchone()
    return row[0]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    path = figures_file(args)
    figures = json.loads(path.read_text()) if path.exists() else {"reports": {}, "chunks": []}
    if args.profile:
        found = profile_asks(Path(args.profile), args.profile_asks, args.sampler)
        profiles = profiles_file(args)
        kept = json.loads(profiles.read_text()) if profiles.exists() else {}
        kept[f"{args.sampler} at {found['trials']}"] = found
        profiles.write_text(json.dumps(kept, indent=1) + "\n")
        print(json.dumps(found, indent=1))
        return
    if not args.report_only:
        if load(args) is None and (figures["reports"] or figures["chunks"]):
            log(
                f"no study in {args.storage}: the figures in {path.name} were another study's; "
                "growing a new one from nothing"
            )
            figures = {"reports": {}, "chunks": []}
        grow(args, figures)
    report(args, figures)


if __name__ == "__main__":
    main()
