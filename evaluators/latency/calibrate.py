"""The last step of `nas lut build`: what operators timed alone miss inside a network.

An operator timed alone runs again and again on the same buffers, so its feature maps stay in
cache; inside a network they were last touched a whole network ago. On the x86_64 build machine
that made whole networks about 30% slower than the sum of their operators, and the difference
grew with the feature-map bytes the operators move, not with their weights or their count
(BENCHMARKS.md). So the build times a few random networks of the space end to end and fits one
number, milliseconds per megabyte of feature maps (`latency.feature_map_bytes`), by least
squares on relative error. It is stored as ``metadata.cold_ms_per_mb`` with the networks it came
from; `nas lut validate` then judges the table on other networks (another seed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date

import numpy as np

from nas.evaluators.latency.cost_model import mape
from nas.evaluators.latency.metadata import Calibration
from nas.evaluators.latency.networks import NETWORK_ROUNDS, sample_archs, time_networks
from nas.evaluators.latency.table import LatencyTable, feature_map_bytes
from nas.evaluators.latency.timing import Backend
from nas.search_spaces.arch import Arch
from nas.search_spaces.signatures import arch_signatures
from nas.search_spaces.space import SearchSpace

CALIBRATION_SEED = 1000
"""Validation samples with seed 0 by default; calibration networks come from another stream."""


@dataclass(frozen=True)
class CalibrationTimings:
    """The networks a calibration timed end to end, kept so a fit can be redone without them
    being timed again (`benchmarks/lut_adapt.py` compares fits on the same timings)."""

    archs: tuple[Arch, ...]
    measured_ms: tuple[float, ...]


def calibrate(
    table: LatencyTable,
    space: SearchSpace,
    backend: Backend,
    networks: int = 30,
    seed: int = CALIBRATION_SEED,
    rounds: int = NETWORK_ROUNDS,
    show_progress: bool = True,
) -> tuple[Calibration, CalibrationTimings]:
    """Time `networks` random networks of `space`, fit ``cold_ms_per_mb`` and store it; returns
    the fit's summary and the timings it was made from."""
    started = time.perf_counter()
    shape = (3, *table.input_hw)
    num_classes = table.num_classes
    archs = sample_archs(space, networks, seed)
    timings = time_networks(
        archs,
        backend,
        shape,
        num_classes,
        rounds=rounds,
        description=f"calibrate {table.target}",
        show_progress=show_progress,
    )
    measured = [timing.ms for timing in timings]
    summary = fit_cold_term(table, archs, measured).replace(
        seed=seed,
        space=space.name,
        rounds=rounds,
        date=date.today().isoformat(),
        seconds=round(time.perf_counter() - started, 1),
    )
    table.metadata = table.metadata.replace(calibration=summary)
    return summary, CalibrationTimings(tuple(archs), tuple(measured))


def fit_cold_term(
    table: LatencyTable, archs: list[Arch], measured_ms: list[float], fit_overhead: bool = False
) -> Calibration:
    """Fit and store ``cold_ms_per_mb`` from networks timed end to end; returns the fit's summary.

    `nas lut adapt` times its own few networks and fits the same term, so the fit lives apart
    from the timing.

    With `fit_overhead` (`nas lut import`), the per-operator overhead above the probe's is
    fitted with it. The probe computes on one channel of one pixel, so it misses what a
    runtime pays per call only on real feature maps: ncnn, for one, converts the input into
    its packed channel layout and the output back on every call, which a network does once.
    Networks then run faster than their operators' sum, which the cold term (it only adds)
    cannot follow. The probe's own figure is kept beside the fitted one, and a refit starts
    from it.
    """
    from scipy.optimize import nnls

    shape = (3, *table.input_hw)
    num_classes = table.num_classes
    measured = np.asarray(measured_ms, dtype=float)
    probe = table.metadata.probe_overhead_ms
    table.metadata = table.metadata.replace(per_op_overhead_ms=probe, cold_ms_per_mb=0.0)
    summed = np.array([table.predict(arch, shape, num_classes).total_ms for arch in archs])
    sigs = [arch_signatures(arch, shape, num_classes) for arch in archs]
    calls = np.array([len(found) - 1 for found in sigs], dtype=float)
    megabytes = np.array([sum(feature_map_bytes(sig) for sig in found) / 1e6 for found in sigs])
    # measured ~ summed - calls * extra + megabytes * cold, in relative terms, both >= 0.
    columns = [megabytes / measured] + ([-calls / measured] if fit_overhead else [])
    (cold, *extra), _ = nnls(np.column_stack(columns), (measured - summed) / measured)
    extra_ms = float(extra[0]) if extra else 0.0
    fitted = summed - calls * extra_ms + megabytes * cold
    table.metadata = table.metadata.replace(cold_ms_per_mb=round(float(cold), 6))
    summary = Calibration.create(
        networks=len(archs),
        fitted="cold_ms_per_mb, by least squares on relative error",
        mape_without_pct=round(mape(summed, measured), 2),
        mape_fitted_pct=round(mape(fitted, measured), 2),
        median_network_ms=round(float(np.median(measured)), 3),
        median_feature_map_mb=round(float(np.median(megabytes)), 2),
        effective_gb_per_s=round(1 / cold, 1) if cold else None,
    )
    if fit_overhead:
        table.metadata = table.metadata.replace(
            per_op_overhead_ms=round(probe + extra_ms, 5),
            per_op_overhead_probe_ms=round(probe, 5),
        )
        summary = summary.replace(
            fitted="per-operator overhead above the probe's and cold_ms_per_mb, by "
            "non-negative least squares on relative error",
            extra_overhead_ms=round(extra_ms, 5),
        )
    return summary
