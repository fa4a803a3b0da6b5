"""The armv8 tables against whole networks timed on phones by others: how far to trust them.

Every network below was timed end to end on a phone (or a board) and published; none was timed
here. Each is priced by both shipped tables, exactly as ``nas`` prices an architecture
(`LatencyTable.predict` at the network's input size), and by two diagnostic fits:

- ``current``: the ``armv8`` table (h-swish and SE as the Note10 runtime ran them);
- ``candidate``: the ``armv8-xnnpack`` table, the same Note10 operators fitted under the
  ``separate_ops`` accounting of `nas.evaluators.latency.cost_candidate` (h-swish and
  squeeze-and-excitation as the separate operators phone runtimes run);
- ``separate_only`` and ``no_conv_weights``: the alternatives it was chosen against.

A published timing is of another phone and runtime than the Note10 tables, so one speed ratio
per device (the geometric mean of measured over predicted, over all that device's networks in
that source) is fitted before any error is computed; what remains is the error of the table's
*relative* prices, which is what choosing between networks depends on. Figures per family
(MobileNetV2, MobileNetV3, others): MAPE, share within +/-10% and Kendall tau.

Sources have a role. ``development`` sources could guide the choice of candidate. ``check``
sources were set aside before the candidate was chosen and are only scored: ncnn's
benchmark/README.md and the TensorFlow model README's MobileNet tables. Every figure used, with
its source, goes into benchmarks/results/phone_networks.json.

Also checked: the candidate's held-out error on the Note10 operators (one input resolution out,
one block shape out), the validation scripts/build_armv8_table.py reports for the shipped model.

    python benchmarks/phone_networks.py [--no-benchmarks]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from _report import write_section
from scipy.stats import kendalltau, wilcoxon

from nas.evaluators.latency.arm_data import load_note10
from nas.evaluators.latency.cost_candidate import (
    CURRENT,
    NO_CONV_WEIGHTS,
    NOTE10_EXCESS,
    SEPARATE_OPS,
    SEPARATE_OPS_ONLY,
    CandidateModel,
    cross_validate_candidate,
    fit_candidate,
)
from nas.evaluators.latency.cost_model import DEFAULT_CACHE_BYTES, mape_by_label, pooled_mape
from nas.evaluators.latency.table import LatencyTable, load_table
from nas.search_spaces.arch import Arch, Block, Head, Stem, make_divisible
from nas.search_spaces.blocks.mbconv import MBCONV
from nas.search_spaces.signatures import arch_signatures
from nas.search_spaces.zoo import (
    mnasnet,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3_large,
    mobilenet_v3_small,
    shufflenet_v2,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "phone_networks.json"
WITHIN = 0.10


# ---- the networks ---------------------------------------------------------------------------


def mnasnet_a1(width: float = 1.0) -> Arch:
    """MnasNet-A1 as tensorflow/tpu's mnasnet_models.py defines it (SE squeezes a quarter of the
    block's input channels, here a share of its expanded channels; head 1x1 conv fixed at 1280)."""
    rows = [  # repeats, kernel, stride, expansion, out, se (share of input channels)
        (1, 3, 1, 1, 16, 0.0),
        (2, 3, 2, 6, 24, 0.0),
        (3, 5, 2, 3, 40, 0.25),
        (4, 3, 2, 6, 80, 0.0),
        (2, 3, 1, 6, 112, 0.25),
        (3, 5, 2, 6, 160, 0.25),
        (1, 3, 1, 6, 320, 0.0),
    ]
    stages = []
    for repeats, kernel, stride, expansion, out, se in rows:
        channels = make_divisible(out * width)
        stages.append(
            tuple(
                Block(
                    expansion,
                    kernel,
                    stride if i == 0 else 1,
                    channels,
                    se_ratio=se / expansion,
                    act="relu",
                )
                for i in range(repeats)
            )
        )
    return Arch(
        stem=Stem(make_divisible(32 * width), 3, 2, "relu"),
        stages=tuple(stages),
        head=Head(1280, act="relu", dropout=0.2),
    )


def minimalistic(arch: Arch) -> Arch:
    """A MobileNetV3 'minimalistic' form (TensorFlow's): no SE, no h-swish, 3x3 kernels only."""
    stages = tuple(
        tuple(replace(block, kernel=3, se_ratio=0.0, act="relu") for block in stage)
        for stage in arch.stages
    )
    return Arch(
        stem=replace(arch.stem, act="relu"), stages=stages, head=replace(arch.head, act="relu")
    )


NETWORKS: dict[str, tuple[str, Callable[[float], Arch]]] = {
    "mobilenet_v1": ("others", mobilenet_v1),
    "mobilenet_v2": ("MobileNetV2", mobilenet_v2),
    "mobilenet_v3_large": ("MobileNetV3", mobilenet_v3_large),
    "mobilenet_v3_small": ("MobileNetV3", mobilenet_v3_small),
    "mobilenet_v3_large_minimalistic": (
        "MobileNetV3",
        lambda w: minimalistic(mobilenet_v3_large(w)),
    ),
    "mobilenet_v3_small_minimalistic": (
        "MobileNetV3",
        lambda w: minimalistic(mobilenet_v3_small(w)),
    ),
    "mnasnet_a1": ("others", mnasnet_a1),
    "mnasnet_b1": ("others", mnasnet),
    "shufflenet_v2": ("others", lambda w: shufflenet_v2({1.0: "1_0", 0.5: "0_5"}[w])),
}
"""Network name -> (family, builder at a width multiplier)."""


# ---- the published timings ------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One publication's whole-network timings: per device, (network, width, input, ms) rows."""

    name: str
    role: str  # "development" or "check"
    where: str
    runtime: str
    devices: dict[str, tuple[tuple[str, float, int, float], ...]]


def _xnnpack(column: int) -> tuple[tuple[str, float, int, float], ...]:
    table = {  # Pixel, Pixel 2, Pixel 3a single-threaded; then multi-threaded; then RPi 2/3+/4
        "mobilenet_v1": (82, 86, 88, 43, 27, 46, 341, 115, 75),
        "mobilenet_v2": (49, 53, 55, 26, 18, 28, 197, 79, 44),
        "mobilenet_v3_large": (39, 42, 44, 22, 16, 24, 165, 67, 41),
        "mobilenet_v3_small": (12, 14, 14, 7, 6, 8, 53, 23, 14),
    }
    return tuple((name, 1.0, 224, float(ms[column])) for name, ms in table.items())


_XNNPACK_DEVICES = (
    "Pixel, 1 thread",
    "Pixel 2, 1 thread",
    "Pixel 3a, 1 thread",
    "Pixel, big cores",
    "Pixel 2, big cores",
    "Pixel 3a, big cores",
    "Raspberry Pi 2, all cores",
    "Raspberry Pi 3+, all cores",
    "Raspberry Pi 4, all cores",
)

_MNASNET_A1_PIXEL1 = {  # input: ms at depth multiplier 1.4, 1.0, 0.75, 0.5, 0.35
    224: (135, 78, 61, 32, 22),
    192: (99, 57, 45, 24, 17),
    160: (72, 41, 33, 18, 13),
    128: (49, 29, 23, 12, 8.5),
    96: (32, 18, 17, 7.4, 5.4),
}

DEVELOPMENT = (
    Source(
        "XNNPACK README",
        "development",
        "https://github.com/google/XNNPACK/blob/0085ae3628ee7dc042342df5a4e98ebdb55a806c/README.md "
        "(Performance: Mobile phones, single- and multi-threaded; Raspberry Pi, multi-threaded)",
        "XNNPACK end2end_bench, float32, benchmarked 2020-03-27 (phones) and 2020-02-12 (boards)",
        {device: _xnnpack(i) for i, device in enumerate(_XNNPACK_DEVICES)},
    ),
    Source(
        "MnasNet-A1 README (tensorflow/tpu)",
        "development",
        "https://github.com/tensorflow/tpu/blob/009812fbbb2a8f787b63c40502a02fc9aef273be/models/"
        "official/mnasnet/README.md (Mnasnet-A1 on ImageNet: Pixel 1 latency)",
        "not stated by the README (Pixel 1; float model)",
        {
            "Pixel 1": tuple(
                ("mnasnet_a1", width, size, float(ms))
                for size, row in _MNASNET_A1_PIXEL1.items()
                for width, ms in zip((1.4, 1.0, 0.75, 0.5, 0.35), row)
            )
        },
    ),
)

_TF_MOBILENET_V2_PIXEL1 = {  # width: ms at input 224, 192, 160, 128, 96
    1.0: (73.8, 55.1, 40.2, 27.6, 17.6),
    0.75: (55.8, 41.6, 30.4, 21.9, 14.2),
    0.5: (28.7, 21.1, 14.9, 9.9, 6.4),
    0.35: (19.7, 14.6, 10.5, 6.9, 4.5),
}
_TF_MOBILENET_V3 = {  # (network, width): ms on Pixel 1, Pixel 2, Pixel 3 (float checkpoints)
    ("mobilenet_v3_large", 1.0): (51.2, 61, 44),
    ("mobilenet_v3_large", 0.75): (39.8, 48, 34),
    ("mobilenet_v3_small", 1.0): (15.8, 19.4, 14.4),
    ("mobilenet_v3_small", 0.75): (12.8, 15.9, 11.6),
    ("mobilenet_v3_large_minimalistic", 1.0): (44.1, 51, 35),
    ("mobilenet_v3_small_minimalistic", 1.0): (12.2, 15.1, 11),
}


def _tf_pixel(column: int) -> tuple[tuple[str, float, int, float], ...]:
    rows = [(name, width, 224, float(ms[column])) for (name, width), ms in _TF_MOBILENET_V3.items()]
    if column == 0:  # the MobileNetV2 table is of Pixel 1 only
        rows = (
            [("mobilenet_v2", 1.4, 224, 138.0), ("mobilenet_v2", 1.3, 224, 123.0)]
            + [
                ("mobilenet_v2", width, size, ms)
                for width, row in _TF_MOBILENET_V2_PIXEL1.items()
                for size, ms in zip((224, 192, 160, 128, 96), row)
            ]
            + rows
        )
    return tuple(rows)


_NCNN_ONE_THREAD = {  # mobilenet, mobilenet_v2, mobilenet_v3, mnasnet, shufflenet_v2 (avg ms)
    "Qualcomm SM8150-AC Snapdragon 855+": (14.45, 9.84, 8.21, 9.31, 5.44),
    "Qualcomm MSM6150 Snapdragon 675": (54.41, 38.97, None, 34.79, None),
    "Kirin 970": (108.98, 76.67, 63.08, 74.2, 35.03),
    "Qualcomm MSM8998 Snapdragon 835": (107.13, 73.48, 60.68, 68.65, 37.1),
    "Qualcomm SDM660 Snapdragon 660": (108.82, 76.38, 59.23, 70.73, 38.32),
    "Qualcomm MSM8996 Pro Snapdragon 821": (81.0, 51.88, 43.91, 51.35, 24.17),
    "Qualcomm MSM8994 Snapdragon 810": (111.48, 78.03, 63.73, 74.59, 37.97),
    "Qualcomm MSM8916 Snapdragon 410": (244.08, 169.06, 147.55, 163.22, 84.6),
    "Qualcomm SM8550-AB Snapdragon 8 Gen 2": (15.49, 10.02, 7.93, 9.54, 5.37),
    "MediaTek Dimensity 9300": (9.74, 5.2, 4.42, 5.19, 3.05),
}
_NCNN_NETWORKS = (  # benchmark/models/*.param, identified from their layers
    "mobilenet_v1",  # mobilenet.param: 13 depthwise-separable blocks, width 1.0
    "mobilenet_v2",  # mobilenet_v2.param: width 1.0
    "mobilenet_v3_large",  # mobilenet_v3.param: 16-64-24-72-40-120... with SE and h-swish
    "mnasnet_b1",  # mnasnet.param: 17 depthwise, 10 residual adds, no SE (torchvision 1.0)
    "shufflenet_v2",  # shufflenet_v2.param: branches of 58 channels (x1.0)
)

CHECK = (
    Source(
        "TensorFlow MobileNet README",
        "check",
        "https://github.com/tensorflow/models/blob/0ba83cf0211401a8505505276c59418f15338d31/"
        "research/slim/nets/mobilenet/README.md (MobileNetV3 float checkpoints incl. "
        "minimalistic: Pixel 1/2/3; MobileNetV2 checkpoints: Pixel 1)",
        "TensorFlow Lite, float32, one large core",
        {"Pixel 1": _tf_pixel(0), "Pixel 2": _tf_pixel(1), "Pixel 3": _tf_pixel(2)},
    ),
    Source(
        "ncnn benchmark README",
        "check",
        "https://github.com/Tencent/ncnn/blob/a4d2ea1d4422c9e849f166fd7a4aefb52f942f6a/"
        "benchmark/README.md (phone SoCs, CPU runs with num_threads = 1, avg ms)",
        "ncnn benchncnn, float32, one thread",
        {
            device: tuple(
                (name, 1.0, 224, float(ms))
                for name, ms in zip(_NCNN_NETWORKS, row)
                if ms is not None
            )
            for device, row in _NCNN_ONE_THREAD.items()
        },
    ),
)
"""Set aside before any candidate was tried; scored, never used to choose. Which subset to
score (phone SoCs, one thread) was fixed before any of them was priced."""

SOURCES: tuple[Source, ...] = DEVELOPMENT + CHECK


# ---- pricing and scoring --------------------------------------------------------------------


def build(network: str, width: float) -> Arch:
    if network not in NETWORKS:
        raise SystemExit(f"unknown network {network!r}")
    return NETWORKS[network][1](width)


def price_current(table: LatencyTable, arch: Arch, size: int) -> float:
    """What ``nas`` says: the table's own price at that input size."""
    return float(table.predict(arch, (3, size, size)).total_ms)


def price_candidate(model: CandidateModel, arch: Arch, size: int) -> float:
    return float(sum(model.predict_ms(sig) for sig in arch_signatures(arch, (3, size, size))))


def fitted_ratio(measured: np.ndarray, predicted: np.ndarray) -> float:
    """One speed ratio for a device: the geometric mean of measured over predicted."""
    return float(np.exp(np.mean(np.log(measured / predicted))))


def scores(measured: Sequence[float], predicted: Sequence[float]) -> dict[str, Any]:
    measured, predicted = np.asarray(measured, float), np.asarray(predicted, float)
    errors = (predicted - measured) / measured
    tau = kendalltau(measured, predicted).statistic if len(measured) > 2 else math.nan
    return {
        "n": int(len(measured)),
        "mape_pct": float(np.mean(np.abs(errors)) * 100),
        "within_pct": float(np.mean(np.abs(errors) <= WITHIN) * 100),
        "kendall_tau": None if math.isnan(tau) else float(tau),
        "worst_pct": float(errors[np.argmax(np.abs(errors))] * 100),
    }


def evaluate(
    sources: Sequence[Source], pricers: dict[str, Callable[[Arch, int], float]]
) -> dict[str, Any]:
    """Every row priced by each pricer, scaled by its device's ratio, scored per family."""
    out: dict[str, Any] = {}
    for source in sources:
        rows = []
        for device, timings in source.devices.items():
            for network, width, size, ms in timings:
                arch = build(network, width)
                rows.append(
                    {
                        "device": device,
                        "network": network,
                        "family": NETWORKS[network][0],
                        "width": width,
                        "input": size,
                        "measured_ms": ms,
                        **{f"{name}_ms": price(arch, size) for name, price in pricers.items()},
                    }
                )
        for name in pricers:
            for device in source.devices:
                mine = [row for row in rows if row["device"] == device]
                ratio = fitted_ratio(
                    np.array([r["measured_ms"] for r in mine]),
                    np.array([r[f"{name}_ms"] for r in mine]),
                )
                for row in mine:
                    row[f"{name}_ratio"] = ratio
                    row[f"{name}_scaled_ms"] = row[f"{name}_ms"] * ratio
        families = sorted({row["family"] for row in rows}) + ["all"]
        out[source.name] = {
            "role": source.role,
            "where": source.where,
            "runtime": source.runtime,
            "rows": rows,
            "scores": {
                name: {
                    family: scores(
                        [r["measured_ms"] for r in rows if family in ("all", r["family"])],
                        [r[f"{name}_scaled_ms"] for r in rows if family in ("all", r["family"])],
                    )
                    for family in families
                }
                for name in pricers
            },
        }
    return out


def v3_over_v2(sources: dict[str, Any], pricer: str) -> list[dict[str, Any]]:
    """MobileNetV3-Large's latency over MobileNetV2's (1.0, 224) per device, priced and measured."""
    found = []
    for name, source in sources.items():
        by_device: dict[str, dict[str, dict]] = {}
        for row in source["rows"]:
            if row["width"] == 1.0 and row["input"] == 224:
                by_device.setdefault(row["device"], {})[row["network"]] = row
        for device, nets in by_device.items():
            if "mobilenet_v2" in nets and "mobilenet_v3_large" in nets:
                v2, v3 = nets["mobilenet_v2"], nets["mobilenet_v3_large"]
                found.append(
                    {
                        "source": name,
                        "device": device,
                        "measured": v3["measured_ms"] / v2["measured_ms"],
                        "priced": v3[f"{pricer}_ms"] / v2[f"{pricer}_ms"],
                    }
                )
    return found


def resolution_exponent(rows: Sequence[dict], key: str) -> float | None:
    """Slope of log latency on log pixels over the rows of one network and width."""
    sizes = sorted({row["input"] for row in rows})
    if len(sizes) < 2:
        return None
    pixels = np.log([row["input"] ** 2 for row in rows])
    ms = np.log([row[key] for row in rows])
    return float(np.polyfit(pixels, ms, 1)[0])


def _block_variant(sample: Any) -> str:
    sig = sample.sigs[0]
    if sig.kind != MBCONV:
        return sig.kind
    extras = [name for name, on in (("SE", sig.se_ratio), ("h-swish", sig.act == "hswish")) if on]
    return "block " + (" + ".join(extras) if extras else "plain")


def _shape(sample: Any) -> str:
    sig = sample.sigs[0]
    if sig.kind != MBCONV:
        return f"other {sample.kind}"
    return f"{sig.in_c}>{sig.out_c} s{sig.stride}"


def note10_validation(variant: str, price_without: Sequence[str] = ()) -> dict[str, Any]:
    """Held-out Note10 error of a variant (one input resolution out; one block shape out), as
    scripts/build_armv8_table.py measures the shipped model; `price_without` zeroes terms when
    the held-out operators are priced, as the candidate prices networks."""
    note10 = load_note10()
    samples = [(s.op, s.ms) for s in note10]
    mids = [s.mid_c for s in note10]
    by_resolution = cross_validate_candidate(
        samples,
        [s.resolution for s in note10],
        [_block_variant(s) for s in note10],
        mids,
        variant=variant,
        price_without=price_without,
    )
    shapes = [
        fold
        for fold in cross_validate_candidate(
            samples,
            [_shape(s) for s in note10],
            mids=mids,
            variant=variant,
            price_without=price_without,
        )
        if not str(fold.group).startswith("other")
    ]
    return {
        "resolution_pooled_mape_pct": pooled_mape(by_resolution),
        "resolution_held_out_mape_pct": {str(f.group): f.mape for f in by_resolution},
        "resolution_by_block_variant_mape_pct": mape_by_label(by_resolution),
        "block_shape_pooled_mape_pct": pooled_mape(shapes),
    }


PRICERS = {
    "current": "the shipped armv8 table, as nas prices (LatencyTable.predict)",
    "candidate": "the shipped armv8-xnnpack table, as nas prices (LatencyTable.predict): Note10 "
    "refitted with h-swish and SE also as separate operators, networks priced without the "
    "Note10 runtime's excess over them (scripts/build_armv8_table.py --runtime xnnpack; "
    "cost_candidate.SEPARATE_OPS without NOTE10_EXCESS)",
    "separate_only": "Note10 refitted with h-swish and SE only as separate operators, no terms "
    "of their own (cost_candidate.SEPARATE_OPS_ONLY)",
    "no_conv_weights": "diagnosis only: Note10 refitted without the convolution weight-bytes "
    "term (cost_candidate.NO_CONV_WEIGHTS)",
}


def run() -> dict[str, Any]:
    table = load_table("armv8")
    xnnpack = load_table("armv8-xnnpack")
    cache_bytes = float((table.cost_model or {}).get("cache_bytes", DEFAULT_CACHE_BYTES))
    note10 = load_note10()
    samples = [(s.op, s.ms) for s in note10]
    mids = [s.mid_c for s in note10]
    fitted = fit_candidate(samples, mids, cache_bytes, SEPARATE_OPS)
    candidate = fitted.without(NOTE10_EXCESS)
    separate_only = fit_candidate(samples, mids, cache_bytes, SEPARATE_OPS_ONLY)
    no_weights = fit_candidate(samples, mids, cache_bytes, NO_CONV_WEIGHTS)
    pricers: dict[str, Callable[[Arch, int], float]] = {
        "current": lambda arch, size: price_current(table, arch, size),
        "candidate": lambda arch, size: price_current(xnnpack, arch, size),
        "separate_only": lambda arch, size: price_candidate(separate_only, arch, size),
        "no_conv_weights": lambda arch, size: price_candidate(no_weights, arch, size),
    }
    sources = evaluate(SOURCES, pricers)
    return {
        "pricers": PRICERS,
        "within": WITHIN,
        "ratio": "one per device and source: geometric mean of measured / priced",
        "sources": sources,
        "v3_large_over_v2": {name: v3_over_v2(sources, name) for name in ["measured", *pricers]},
        "resolution_exponent": resolution_exponents(sources, list(pricers)),
        "note10_held_out": {
            "current": note10_validation(CURRENT),
            "candidate_fit": note10_validation(SEPARATE_OPS),
            "candidate_as_priced": note10_validation(SEPARATE_OPS, NOTE10_EXCESS),
            "separate_only": note10_validation(SEPARATE_OPS_ONLY),
            "no_conv_weights": note10_validation(NO_CONV_WEIGHTS),
        },
        "where_the_time_goes": where_the_time_goes(table, candidate),
        "models": {
            "candidate_fit": fitted.to_dict(),
            "candidate_as_priced": candidate.to_dict(),
            "separate_only": separate_only.to_dict(),
            "no_conv_weights": no_weights.to_dict(),
        },
    }


_TERM_GROUPS = {
    "conv MACs": (
        "full_conv_macs",
        "pointwise_macs",
        "depthwise_s1_macs",
        "depthwise_s2_macs",
        "depthwise_spill_macs",
        "depthwise_outputs",
    ),
    "feature-map bytes": ("activation_bytes",),
    "weights (size-independent)": ("conv_weight_bytes", "linear_weight_bytes"),
    "h-swish": ("hswish_elements",),
    "SE": ("se_elements",),
    "shortcut, pooling": ("add_elements", "pool_elements"),
    "per operator": ("operator",),
}
_BREAKDOWN = (
    ("mobilenet_v2", 1.0, 224),
    ("mobilenet_v3_large", 1.0, 224),
    ("mobilenet_v3_small", 1.0, 224),
    ("mobilenet_v2", 0.35, 96),
)


def where_the_time_goes(table: LatencyTable, candidate: CandidateModel) -> list[dict[str, Any]]:
    """Share of a network's price per group of terms, and per part (stem, head), under the
    shipped model and the candidate: what the whole-network errors can be traced to."""
    shipped = CandidateModel(
        dict(table.cost_model["coefficients"]), candidate.cache_bytes, CURRENT, math.nan
    )
    found = []
    for network, width, size in _BREAKDOWN:
        sigs = arch_signatures(build(network, width), (3, size, size))
        for label, model in (("current", shipped), ("candidate", candidate)):
            groups = dict.fromkeys(_TERM_GROUPS, 0.0)
            parts = {"stem": 0.0, "blocks": 0.0, "head (conv, pool, fc, classifier)": 0.0}
            for sig in sigs:
                breakdown = model.breakdown(sig)
                for group, terms in _TERM_GROUPS.items():
                    groups[group] += sum(breakdown.get(term, 0.0) for term in terms)
                part = (
                    "stem"
                    if sig.kind == "stem"
                    else "blocks"
                    if sig.kind == MBCONV
                    else ("head (conv, pool, fc, classifier)")
                )
                parts[part] += sum(breakdown.values())
            total = sum(groups.values())
            found.append(
                {
                    "network": network,
                    "width": width,
                    "input": size,
                    "model": label,
                    "ms": total,
                    "share_pct": {k: v / total * 100 for k, v in {**groups, **parts}.items()},
                }
            )
    return found


def resolution_exponents(sources: dict[str, Any], pricers: list[str]) -> list[dict[str, Any]]:
    """Per network and width timed at several inputs: latency ~ pixels^exponent."""
    found = []
    for name, source in sources.items():
        groups: dict[tuple, list[dict]] = {}
        for row in source["rows"]:
            groups.setdefault((row["device"], row["network"], row["width"]), []).append(row)
        for (device, network, width), rows in groups.items():
            if len({row["input"] for row in rows}) < 3:
                continue
            found.append(
                {
                    "source": name,
                    "device": device,
                    "network": network,
                    "width": width,
                    **{
                        key: resolution_exponent(rows, f"{key}_ms")
                        for key in ["measured", *pricers]
                    },
                }
            )
    return found


def paired_test(rows: Sequence[dict], a: str, b: str) -> dict[str, Any]:
    """Wilcoxon signed-rank test of |error| under pricer `a` against pricer `b`, row by row."""
    err_a = np.array([abs(r[f"{a}_scaled_ms"] / r["measured_ms"] - 1) for r in rows])
    err_b = np.array([abs(r[f"{b}_scaled_ms"] / r["measured_ms"] - 1) for r in rows])
    return {
        "n": int(len(rows)),
        "closer": int(np.sum(err_b < err_a)),
        "p": float(wilcoxon(err_a, err_b).pvalue),
    }


def _fmt(score: dict[str, Any]) -> str:
    tau = "-" if score["kendall_tau"] is None else f"{score['kendall_tau']:.2f}"
    return f"{score['mape_pct']:.1f}% / {score['within_pct']:.0f}% / {tau}"


def report(results: dict[str, Any]) -> str:
    pricers = list(results["pricers"])
    lines = [
        "Published whole-network timings (none timed here) priced by the shipped `armv8` "
        "table (`current`) and the shipped `armv8-xnnpack` table (`candidate`: h-swish and "
        "squeeze-and-excitation priced as the separate operators XNNPACK runs; "
        "`separate_only`: the same without the Note10 runtime's excess terms in the fit; "
        "`no_conv_weights`: a diagnosis). One speed ratio per device "
        "(geometric mean of measured over priced) is fitted before any error. Cells: MAPE / "
        "share within +/-10% / Kendall tau. `development` sources could guide the candidate; "
        "`check` sources were set aside and only scored. Every figure used and every price: "
        "benchmarks/results/phone_networks.json.",
        "",
        "| source | role | runtime | devices | timings |",
        "|---|---|---|---|---|",
    ]
    for name, source in results["sources"].items():
        lines.append(
            f"| {name} | {source['role']} | {source['runtime']} | "
            f"{len({r['device'] for r in source['rows']})} | {len(source['rows'])} |"
        )
    lines += [
        "",
        "| source | family | n | " + " | ".join(pricers) + " |",
        "|---" * (3 + len(pricers)) + "|",
    ]
    for name, source in results["sources"].items():
        for family in source["scores"][pricers[0]]:
            cells = [_fmt(source["scores"][p][family]) for p in pricers]
            n = source["scores"][pricers[0]][family]["n"]
            lines.append(
                f"| {name} ({source['role']}) | {family} | {n} | " + " | ".join(cells) + " |"
            )
    lines += [
        "",
        "Is the candidate's gain beyond the noise? Paired over a source's timings, the absolute "
        "error after the device ratio, current against candidate (Wilcoxon signed-rank, two-sided):",
        "",
    ]
    for name, source in results["sources"].items():
        paired = paired_test(source["rows"], "current", "candidate")
        lines.append(
            f"- {name} ({source['role']}): candidate closer on {paired['closer']} of "
            f"{paired['n']} timings, p = {paired['p']:.2g}"
        )
    lines += ["", "MobileNetV3-Large over MobileNetV2 (both 1.0 at 224), per device:", ""]
    lines += [
        "| source | device | measured | " + " | ".join(pricers) + " |",
        "|---" * (3 + len(pricers)) + "|",
    ]
    ratios = results["v3_large_over_v2"]
    for i, row in enumerate(ratios["measured"]):
        lines.append(
            f"| {row['source']} | {row['device']} | {row['measured']:.2f} | "
            + " | ".join(f"{ratios[p][i]['priced']:.2f}" for p in pricers)
            + " |"
        )
    lines += [
        "",
        "Latency against input pixels (slope of log ms on log pixels, inputs 96-224):",
        "",
    ]
    lines += [
        "| source | network | width | measured | " + " | ".join(pricers) + " |",
        "|---" * (4 + len(pricers)) + "|",
    ]
    for row in results["resolution_exponent"]:
        lines.append(
            f"| {row['source']} | {row['network']} | {row['width']} | {row['measured']:.3f} | "
            + " | ".join(f"{row[p]:.3f}" for p in pricers)
            + " |"
        )
    shares = results["where_the_time_goes"]
    names = list(shares[0]["share_pct"])
    lines += [
        "",
        "Where a price goes (share of the network's ms, Note10 rates before any ratio):",
        "",
    ]
    lines += [
        "| network | model | ms | " + " | ".join(names) + " |",
        "|---" * (3 + len(names)) + "|",
    ]
    for row in shares:
        lines.append(
            f"| {row['network']} {row['width']} @{row['input']} | {row['model']} | {row['ms']:.1f} | "
            + " | ".join(f"{row['share_pct'][n]:.0f}%" for n in names)
            + " |"
        )
    held = results["note10_held_out"]
    variants = sorted(
        {v for figures in held.values() for v in figures["resolution_by_block_variant_mape_pct"]}
    )
    lines += [
        "",
        "Note10 operators held out (scripts/build_armv8_table.py's validation at 160-208): "
        "pooled MAPE with one input resolution out, with one block shape out, and by block "
        "variant (resolution out). `candidate_fit` prices held-out operators with every fitted "
        "term; `candidate_as_priced` without the Note10 excess, as the candidate prices networks.",
        "",
        "| model | resolution out | block shape out | " + " | ".join(variants) + " |",
        "|---" * (3 + len(variants)) + "|",
    ]
    for model, figures in held.items():
        by_variant = figures["resolution_by_block_variant_mape_pct"]
        lines.append(
            f"| {model} | {figures['resolution_pooled_mape_pct']:.2f}% | "
            f"{figures['block_shape_pooled_mape_pct']:.2f}% | "
            + " | ".join(f"{by_variant.get(v, float('nan')):.2f}%" for v in variants)
            + " |"
        )
    fitted = results["models"]["candidate_fit"]["coefficients"]
    lines += [
        "",
        "Candidate's Note10 excess (fitted, not priced): h-swish "
        f"{fitted['hswish_elements'] * 1e6:.2f} ns per element, SE "
        f"{fitted['se_elements'] * 1e6:.2f} ns per gated element, beyond the separate operators.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-benchmarks", action="store_true", help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    results = run()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    body = report(results)
    print(body)
    if not args.no_benchmarks:
        write_section(
            "phone-networks",
            "armv8 against whole networks on phones",
            body,
            packages=("numpy", "scipy"),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
