"""`nas lut adapt`: a table for this machine from another table and a small sample of timings.

A full `nas lut build` times every operator of a space: minutes on a laptop, hours on a small
board. Most of what it would learn is already in a table made elsewhere: which operators are
dear and which cheap, and by how much. What changes from one machine to the next is mostly
speed, and speed differs by the kind of work (a newer core speeds up multiply-adds more than
memory traffic; another runtime fuses h-swish that the old one ran separately). So adapt:

1. times a sample of the space's operators here, spread over every operator variant the space
   has (kind; for blocks: kernel, stride, grouped or not, SE or not, activation);
2. cuts each sampled operator's time in the source table into the source's cost-model terms
   (multiply-adds per convolution kind, bytes moved, activation elements; `cost_model`) and fits
   one speed factor per term, shrunk toward the one overall speed ratio by a ridge whose weight
   is chosen by cross-validation on the sample: with few operators of a kind the fit stays at
   the overall ratio, with many it follows them;
3. rescales every entry of the source by its own terms' factors, so an entry keeps what the
   source measured about that exact operator and changes only by this machine's speeds;
4. measures the runtime's call overhead and times a few whole networks to fit the cold-cache
   term (`calibrate.fit_cold_term`), as `nas lut build` does.

Every sampled operator and network timing is written to the output table as it is taken, so
an interrupted run resumes with what it had. The networks that judge the result
(`nas lut validate`, seed 0) are never the ones the adaptation timed.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from scipy.optimize import nnls

from nas.errors import InputError
from nas.evaluators.latency.build import (
    BuildOptions,
    call_overhead_ms,
    measure_op,
    measured_here,
    progress_bar,
    require_same_setup,
)
from nas.evaluators.latency.calibrate import CALIBRATION_SEED, fit_cold_term
from nas.evaluators.latency.cost_model import (
    TERM_NAMES,
    OpCostModel,
    fit_cost_model,
    mape,
    op_work,
)
from nas.evaluators.latency.metadata import Adaptation, AdaptedFrom
from nas.evaluators.latency.networks import sample_archs, time_networks
from nas.evaluators.latency.table import LatencyTable, default_table_path, load_table
from nas.evaluators.latency.timing import (
    BACKENDS,
    Backend,
    get_backend,
)
from nas.search_spaces.arch import ACTIVATIONS, Arch
from nas.search_spaces.blocks.mbconv import MBCONV
from nas.search_spaces.kinds import is_block_kind
from nas.search_spaces.signatures import OpSignature
from nas.search_spaces.space import DEFAULT_SPACE, SearchSpace, load_space

RIDGE_WEIGHTS = (0.001, 0.01, 0.1, 1.0, 10.0, float("inf"))
"""Candidate weights of the pull toward the overall speed ratio, in operators' worth of
evidence per term; infinity is the overall ratio alone. Cross-validation on the sample picks."""
FOLDS = 6
MIN_OPERATORS = 2 * FOLDS


@dataclass(frozen=True)
class AdaptOptions:
    source: str
    """Target name or file of the table to adapt."""
    target: str
    space: str | None = None
    """Space whose operators are sampled and whose entries the new table holds [source's]."""
    operators: int = 100
    networks: int = 10
    rounds: int = 5
    backend: str | None = None
    """Runtime to time with [the source's, when this machine has it; else onnxruntime]."""
    threads: int | None = None
    """Intra-op threads [the source's, when it recorded them; else 1]."""
    out: Path | None = None
    seed: int = 0
    repeats: int = BuildOptions.repeats
    warmup: int = BuildOptions.warmup
    min_seconds: float = BuildOptions.min_seconds
    save_every: int = 10
    ridge: float | None = None
    """Fix the ridge weight (inf: the overall ratio alone) instead of choosing it by
    cross-validation; for comparing the two on the same timings."""

    @property
    def path(self) -> Path:
        return Path(self.out) if self.out else default_table_path(self.target)


@dataclass
class AdaptReport:
    path: Path
    table: LatencyTable = field(repr=False)
    operators_measured: int = 0
    operators_resumed: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def adaptation(self) -> Adaptation:
        return self.table.metadata.adaptation or Adaptation()


# Long: timing, saving and resuming share the table, the progress record and the save closure.
def adapt_table(
    options: AdaptOptions,
    show_progress: bool = True,
    on_measured: Callable[[OpSignature], None] | None = None,
) -> AdaptReport:
    """Time the sample here, fit the speed factors and write the adapted table.

    `on_measured` is called after each new operator timing (tests interrupt a run through it).
    """
    source = load_table(options.source)
    space = _space(options, source)
    threads = options.threads or _source_threads(source)
    if threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    backend = get_backend(options.backend or _source_backend(source), threads)
    shape = (3, *source.input_hw)
    num_classes = source.num_classes
    sigs = space.signatures(shape, num_classes)
    source_model = _source_model(source, sigs)
    _check_source_prices(source, source_model, sigs, space.name)
    table = _open_output(options, source, backend, space.name, num_classes)
    chosen = choose_operators(sigs, options.operators, options.seed)
    todo = [sig for sig in chosen if table.entries.get(sig.key, {}).get("source") != "measured"]
    report = AdaptReport(path=options.path, table=table, operators_resumed=len(chosen) - len(todo))
    progress = table.metadata.adaptation.to_dict()  # the working record, saved with the table
    started = time.perf_counter()
    spent_before = float(progress.get("measurement_seconds", 0.0))
    console = Console(stderr=True)
    build_like = BuildOptions(
        target=options.target,
        threads=threads,
        repeats=options.repeats,
        warmup=options.warmup,
        min_seconds=options.min_seconds,
    )

    def save(measuring: bool = True) -> None:
        if measuring:  # a rerun that only refits adds nothing to the time spent measuring
            progress["measurement_seconds"] = round(spent_before + time.perf_counter() - started, 1)
        table.metadata = table.metadata.replace(
            adaptation=Adaptation.from_dict(progress), date=date.today().isoformat()
        )
        table.save(options.path)

    torch.manual_seed(options.seed)
    try:
        if table.metadata.per_op_overhead_ms is None:
            overhead = round(call_overhead_ms(backend, build_like), 5)
            table.metadata = table.metadata.replace(per_op_overhead_ms=overhead)
        with progress_bar(console, show_progress and bool(todo)) as bar:
            task = bar.add_task(
                f"adapt {options.target}: operators of {space.name}",
                total=len(chosen),
                completed=report.operators_resumed,
            )
            for index, sig in enumerate(todo, 1):
                op_started = time.perf_counter()
                timing = measure_op(sig, backend, build_like)
                table.set_entry(sig.key, timing.ms, timing.std, "measured")
                progress["operator_seconds"] = round(
                    progress.get("operator_seconds", 0.0) + time.perf_counter() - op_started, 2
                )
                report.operators_measured += 1
                bar.advance(task)
                if index % options.save_every == 0:
                    save()
                if on_measured is not None:
                    on_measured(sig)
        if "networks" not in progress:
            progress["networks"] = _time_networks(
                space, options, backend, shape, num_classes, show_progress
            )
            save()
    except KeyboardInterrupt:
        report.interrupted = True
        save()
        report.seconds = time.perf_counter() - started
        return report
    measured = {
        sig: table.entries[sig.key]["ms"]
        for sig in dict.fromkeys(sigs)
        if table.entries.get(sig.key, {}).get("source") == "measured"
    }
    _fit(table, source, source_model, sigs, measured, progress, options.ridge)
    save(measuring=False)
    report.seconds = time.perf_counter() - started
    return report


# ---- which operators to time --------------------------------------------------------------


def variant(sig: OpSignature) -> str:
    """The operator variant a sample should cover: what changes which work dominates."""
    if not is_block_kind(sig.kind):
        return sig.kind
    if sig.kind != MBCONV:
        return sig.key.split(":", 2)[2]  # the kind's own choices, without the shape
    grouped = "grouped" if sig.groups > 1 else "dense"
    se = "se" if sig.se_ratio else "no-se"
    return f"k{sig.kernel} s{sig.stride} {grouped} {se} {ACTIVATIONS[sig.act]}"


def choose_operators(sigs: Sequence[OpSignature], count: int, seed: int) -> list[OpSignature]:
    """`count` distinct signatures, taken in turn from each variant (seeded, so reruns agree).

    Within a variant the operators are ordered by their multiply-add work and taken from
    alternating ends inward after a seeded shuffle of ties, so one variant's few picks span
    its small and large operators rather than clustering.
    """
    rng = random.Random(seed)
    by_variant: dict[str, list[OpSignature]] = {}
    for sig in dict.fromkeys(sigs):
        by_variant.setdefault(variant(sig), []).append(sig)
    queues = []
    for name in sorted(by_variant):
        members = by_variant[name]
        rng.shuffle(members)
        members.sort(key=_work_size)
        spread = []
        while members:
            spread.append(members.pop(0 if len(spread) % 2 == 0 else -1))
        queues.append(spread)
    rng.shuffle(queues)
    chosen: list[OpSignature] = []
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def _work_size(sig: OpSignature) -> float:
    work = op_work(sig)
    return sum(
        work.get(name, 0.0)
        for name in ("full_conv_macs", "pointwise_macs", "depthwise_s1_macs", "depthwise_s2_macs")
    )


# ---- the fit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedFit:
    """Per-term speed factors (this machine's ms over the source's) and how they were chosen."""

    scales: dict[str, float]
    overall: float
    ridge: float
    cv_mape_by_ridge: dict[str, float]

    def factor(self, shares: np.ndarray) -> float:
        """Speed factor of an operator whose source time splits into `shares` per term."""
        total = float(shares.sum())
        if total <= 0:
            return self.overall
        return float(shares @ self.vector / total)

    @property
    def vector(self) -> np.ndarray:
        return np.array([self.scales[name] for name in TERM_NAMES])


def term_shares(model: OpCostModel, sig: OpSignature) -> np.ndarray:
    """Milliseconds of `sig` per cost-model term, as the source's model prices it."""
    work = op_work(sig, cache_bytes=model.cache_bytes)
    return np.array([model.coefficients[name] * work.get(name, 0.0) for name in TERM_NAMES])


def fit_speed(
    source_ms: np.ndarray,
    shares: np.ndarray,
    measured_ms: np.ndarray,
    seed: int = 0,
    ridges: Sequence[float] = RIDGE_WEIGHTS,
) -> SpeedFit:
    """Fit per-term factors to operators timed here, choosing the ridge by cross-validation.

    Operator i is predicted as ``source_ms[i] * (shares[i] @ s) / shares[i].sum()``. The
    factors `s` are non-negative and shrunk toward the one ratio that best fits all operators
    (least squares on relative error); each candidate weight in `ridges` is scored on
    operators left out of its fit, and the best one is refitted on all of them.
    """
    totals = shares.sum(axis=1)
    totals[totals <= 0] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        design = source_ms[:, None] * shares / totals[:, None] / measured_ms[:, None]
    # An operator the source prices at nothing, or one timed at no time, says nothing about
    # the speed ratio and would put an infinity into the fit: it is left out, and counted out.
    usable = np.all(np.isfinite(design), axis=1) & (design.sum(axis=1) > 0)
    design = design[usable]
    n = len(design)
    if n < MIN_OPERATORS:
        left_out = int((~usable).sum())
        raise InputError(
            f"adapting a table needs at least {MIN_OPERATORS} timed operators, got {n}"
            + (f" ({left_out} more priced or timed at zero)" if left_out else "")
            + ": raise --operators"
        )
    order = np.random.default_rng(seed).permutation(n)
    folds = [order[k::FOLDS] for k in range(FOLDS)]
    scores = {}
    for weight in ridges:
        errors = []
        for held in folds:
            kept = np.setdiff1d(order, held)
            scales = _solve(design[kept], weight)
            errors.append(np.abs(design[held] @ scales - 1.0))
        scores[weight] = float(np.mean(np.concatenate(errors)) * 100)
    best = min(ridges, key=lambda weight: (scores[weight], -weight))
    scales = _solve(design, best)
    return SpeedFit(
        scales=dict(zip(TERM_NAMES, scales.tolist())),
        overall=_overall(design),
        ridge=best,
        cv_mape_by_ridge={_ridge_name(w): round(scores[w], 2) for w in ridges},
    )


def _overall(design: np.ndarray) -> float:
    """The one factor s minimising sum((row_sum * s - 1)^2): every term scaled alike."""
    rows = design.sum(axis=1)
    return float(rows.sum() / (rows**2).sum())


def _solve(design: np.ndarray, weight: float) -> np.ndarray:
    overall = _overall(design)
    terms = design.shape[1]
    if np.isinf(weight):
        return np.full(terms, overall)
    # The pull is on s / overall - 1, the relative departure from the overall ratio, so that a
    # weight of one counts as much as one operator made wholly of that term.
    prior = np.sqrt(weight) / overall * np.eye(terms)
    stacked = np.vstack([design, prior])
    target = np.concatenate([np.ones(len(design)), np.full(terms, np.sqrt(weight))])
    scales, _ = nnls(stacked, target)
    return scales


def _ridge_name(weight: float) -> str:
    return "overall ratio only" if np.isinf(weight) else f"{weight:g}"


# Long: one speed fit fills the entries, the scaled cost model and the progress record.
def _fit(
    table: LatencyTable,
    source: LatencyTable,
    source_model: OpCostModel,
    sigs: list[OpSignature],
    measured: dict[OpSignature, float],
    progress: dict[str, Any],
    ridge: float | None = None,
) -> None:
    """Fill `table` with every adapted entry, the scaled cost model and the cold-cache term."""
    sampled = list(measured)
    source_ms = np.array([_source_ms(source, source_model, sig) for sig in sampled])
    shares = np.array([term_shares(source_model, sig) for sig in sampled])
    here = np.array([measured[sig] for sig in sampled])
    fit = fit_speed(source_ms, shares, here, ridges=RIDGE_WEIGHTS if ridge is None else (ridge,))
    ratios = here / source_ms
    for sig in dict.fromkeys(sigs):
        if sig in measured:
            continue
        ms = _source_ms(source, source_model, sig) * fit.factor(term_shares(source_model, sig))
        table.set_entry(sig.key, ms, ms * fit_error(fit) / 100, "model")
    coefficients = {name: source_model.coefficients[name] * fit.scales[name] for name in TERM_NAMES}
    table.cost_model = OpCostModel(
        coefficients,
        cache_bytes=source_model.cache_bytes,
        device=dict(source_model.device, adapted_to=table.metadata.device),
        fit={
            "method": "the source table's cost model with each term's rate scaled by its fitted "
            "speed factor (nas lut adapt)",
            "samples": len(sampled),
            "held_out_mape_percent": fit_error(fit),
        },
    ).to_dict()
    progress.update(
        status="complete",
        operators=len(sampled),
        variants=len({variant(sig) for sig in sampled}),
        speed_ratio_median=round(float(np.median(ratios)), 4),
        speed_ratio_p10_p90=[round(float(v), 4) for v in np.percentile(ratios, [10, 90])],
        overall_factor=round(fit.overall, 4),
        ridge=_ridge_name(fit.ridge),
        cv_operator_mape_pct_by_ridge=fit.cv_mape_by_ridge,
        term_factors={name: round(value, 4) for name, value in fit.scales.items()},
        sampled_operator_mape_pct=round(
            mape(
                [
                    s * fit.factor(term_shares(source_model, sig))
                    for s, sig in zip(source_ms, sampled)
                ],
                here,
            ),
            2,
        ),
    )
    networks = progress["networks"]
    archs = [Arch.from_string(row["arch"]) for row in networks]
    fitted = fit_cold_term(table, archs, [row["ms"] for row in networks])  # sets the terms
    calibration = fitted.replace(
        seed=CALIBRATION_SEED, space=table.metadata.space, date=date.today().isoformat()
    )
    table.metadata = table.metadata.replace(calibration=calibration)


def fit_error(fit: SpeedFit) -> float:
    """Held-out operator error of the chosen ridge, in percent."""
    return fit.cv_mape_by_ridge[_ridge_name(fit.ridge)]


def _source_ms(source: LatencyTable, model: OpCostModel, sig: OpSignature) -> float:
    entry = source.entries.get(sig.key)
    return float(entry["ms"]) if entry is not None else model.predict_ms(sig)


def _check_source_prices(
    source: LatencyTable, model: OpCostModel, sigs: list[OpSignature], space: str
) -> None:
    """Refuse, before any timing, a source whose prices cannot be rescaled: all zero (no ratio
    to fit) or not finite (damaged cost-model coefficients)."""
    with np.errstate(all="ignore"):
        prices = [_source_ms(source, model, sig) for sig in sigs]
    bad = next((ms for ms in prices if not (math.isfinite(ms) and ms >= 0)), None)
    if bad is not None or not any(ms > 0 for ms in prices):
        shown = f"{bad:g} ms" if bad is not None else "0 ms, every one"
        raise InputError(
            f"{source.describe()} prices the operators of space {space!r} at {shown}: there "
            f"is nothing to rescale; adapt a table with real timings ('nas lut list'), or "
            f"build one here with 'nas lut build'"
        )


def _source_model(source: LatencyTable, sigs: list[OpSignature]) -> OpCostModel:
    """The source's own cost model, or one fitted to its entries when it carries none."""
    if source.cost_model is not None:
        return OpCostModel.from_dict(source.cost_model)
    samples = [(sig, source.entries[sig.key]["ms"]) for sig in sigs if sig.key in source.entries]
    if len(samples) < MIN_OPERATORS:
        raise InputError(
            f"{source.describe()} has no cost model and only {len(samples)} entries for this "
            f"space: adapt a table built for it ('nas lut list'), or build one here with "
            f"'nas lut build'"
        )
    return fit_cost_model(samples, device=str(source.metadata.device or source.target))


# ---- timing networks and the output file --------------------------------------------------


def _time_networks(
    space, options: AdaptOptions, backend: Backend, shape, num_classes: int, show_progress: bool
) -> list[dict[str, Any]]:
    archs = sample_archs(space, options.networks, CALIBRATION_SEED)
    timings = time_networks(
        archs,
        backend,
        shape,
        num_classes,
        rounds=options.rounds,
        description=f"adapt {options.target}: networks",
        show_progress=show_progress,
    )
    return [
        {"arch": arch.to_string(), "ms": round(timing.ms, 5)}
        for arch, timing in zip(archs, timings)
    ]


_MUST_MATCH = ("runtime", "threads", "input_size", "num_classes", "cpu_model", "clock", "space")


def _open_output(
    options: AdaptOptions, source: LatencyTable, backend: Backend, space: str, num_classes: int
) -> LatencyTable:
    """The partly adapted table at the output path (to resume), or a new one."""
    meta = source.metadata
    origin = AdaptedFrom.create(
        target=source.target,
        path=str(source.path) if source.path else None,
        device=meta.device,
        runtime=meta.runtime,
        threads=meta.threads,
        date=meta.date,
    )
    metadata = measured_here(
        options.target,
        backend,
        threads=backend.threads,
        input_size=meta.input_size,
        num_classes=num_classes,
        space=space,
        method=_method(options, source, backend),
        adapted_from=origin,
        adaptation=Adaptation.create(status="measuring", seed=options.seed, rounds=options.rounds),
    )
    path = options.path
    if not path.exists():
        return LatencyTable(metadata)
    table = LatencyTable.load(path)
    previous = table.metadata.adaptation
    adapted_from = table.metadata.adapted_from
    if previous is None or adapted_from is None or adapted_from.target != origin.target:
        raise InputError(
            f"{path} exists and is not an adaptation of {source.target!r}: give another --out "
            f"or delete the file to start over"
        )
    require_same_setup(table, metadata, _MUST_MATCH, path, "adapted")
    networks = previous.networks
    if (previous.seed, previous.rounds, len(networks or ())) != (
        options.seed,
        options.rounds,
        options.networks,
    ):
        networks = None  # another sample of networks: time them again
    resumed = previous.replace(
        networks=networks, seed=options.seed, rounds=options.rounds, status="measuring"
    )
    table.entries = {k: e for k, e in table.entries.items() if e["source"] == "measured"}
    table.metadata = table.metadata.overlay(metadata.replace(adaptation=resumed))
    return table


def _space(options: AdaptOptions, source: LatencyTable) -> SearchSpace:
    if options.space:
        return load_space(options.space)
    name = source.metadata.first_space or DEFAULT_SPACE
    try:
        return load_space(name)
    except InputError:
        raise InputError(
            f"{source.describe()} was built for space {name!r}, which is not a built-in space: "
            f"give its YAML file with --space"
        ) from None


def _source_threads(source: LatencyTable) -> int:
    threads = source.metadata.threads
    return threads if isinstance(threads, int) and threads > 0 else 1


def _source_backend(source: LatencyTable) -> str:
    runtime = source.metadata.runtime
    return runtime if runtime in BACKENDS else "onnxruntime"


def _method(options: AdaptOptions, source: LatencyTable, backend: Backend) -> str:
    return (
        f"nas lut adapt: {options.operators} operators of the space timed here as 'nas lut "
        f"build' times them ({backend.name}, {backend.threads} thread(s)), the other entries of "
        f"{source.target!r} rescaled by per-term speed factors fitted to them (ridge toward "
        f"the overall ratio, weight chosen by {FOLDS}-fold cross-validation), call overhead "
        f"measured here, cold-cache term fitted on {options.networks} networks timed here"
    )
