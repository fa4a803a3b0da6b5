"""Build the shipped ``armv8`` latency table from published phone measurements.

No ARM machine is at hand, so the table is a cost model fitted to the per-operator latencies
Once-for-All published for a Samsung Note10, with each entry marked ``measured`` (that exact
operator was published for this device) or ``model``. Before anything is written the model's
error is measured on data it was not fitted to: leave one input resolution out, leave one block
shape out, leave one kernel size or expansion out, and transfer to another phone's table (the
Pixel 1 table of ProxylessNAS). The figures go into the table's metadata and into this
script's own section of BENCHMARKS.md (replaced on every run).

``--runtime xnnpack`` builds ``armv8-xnnpack`` from the same data: the same fit with h-swish and
squeeze-and-excitation charged as the separate operators XNNPACK runs them as (the cost model's
``separate`` accounting), priced without what the Note10 runtime spent on them beyond that.

    python scripts/build_armv8_table.py [--runtime note10|xnnpack] [--data DIR] [--out FILE]
        [--no-benchmarks]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy

from nas.evaluators.latency.arm_data import (
    DEVICES,
    NOTE10,
    NOTE10_RESOLUTIONS,
    PIXEL1,
    Sample,
    default_data_dir,
    load_note10,
    load_pixel1,
)
from nas.evaluators.latency.cost_model import (
    DEFAULT_CACHE_BYTES,
    FUSED,
    RUNTIME_EXCESS,
    SEPARATE,
    HeldOut,
    OpCostModel,
    cross_validate,
    fit_cost_model,
    mape,
    mape_by_label,
    op_work,
    pooled_mape,
)
from nas.evaluators.latency.evidence import fit_evidence
from nas.evaluators.latency.metadata import TableMetadata
from nas.search_spaces.blocks.mbconv import MBCONV
from nas.search_spaces.signatures import DEPLOY_INPUT, OpSignature, arch_signatures
from nas.search_spaces.space import load_space
from nas.search_spaces.zoo import ZOO

REPO = Path(__file__).resolve().parents[1]
SPACES = ("mobile", "tiny", "survey")


CACHE_CHOICES_KIB = (128, 192, 256, 384, 512)


@dataclass(frozen=True)
class Runtime:
    """Which runtime a table's prices describe, and how the fit gets there."""

    target: str
    accounting: str
    priced_without: tuple[str, ...]
    runtime: str | None
    runtime_note: str


RUNTIMES = {
    "note10": Runtime(
        target="armv8",
        accounting=FUSED,
        priced_without=(),
        runtime=None,
        runtime_note="not recorded with the published tables; h-swish and SE priced as the "
        "Note10 runtime ran them (fitted per-element terms)",
    ),
    "xnnpack": Runtime(
        target="armv8-xnnpack",
        accounting=SEPARATE,
        priced_without=RUNTIME_EXCESS,
        runtime="XNNPACK",
        runtime_note="rates of the Note10 runtime; h-swish and SE priced as the separate "
        "operators XNNPACK runs (one element-wise pass; pooling, two 1x1 convolutions and a "
        "multiply), without what the Note10 runtime spent on them beyond that",
    ),
}


def _cv(
    samples: Sequence[Sample],
    group: Callable[[Sample], Any],
    label: Callable[[Sample], str] = lambda s: s.kind,
    cache_bytes: float = DEFAULT_CACHE_BYTES,
    accounting: str = FUSED,
    price_without: Sequence[str] = (),
) -> list[HeldOut]:
    return cross_validate(
        [(s.op, s.ms) for s in samples],
        [group(s) for s in samples],
        [label(s) for s in samples],
        [s.mid_c for s in samples],
        cache_bytes=cache_bytes,
        accounting=accounting,
        price_without=price_without,
    )


def choose_cache_bytes(
    note10: Sequence[Sample], accounting: str = FUSED
) -> tuple[int, dict[str, float]]:
    """The depthwise spill threshold with the lowest held-out-resolution error.

    The one hyperparameter of the model is picked by the same cross-validation that is then
    reported, which makes the reported figures slightly optimistic; the grid and the figure
    without the spill term are reported next to them so the reader can judge by how much.
    """
    scores = {
        f"{kib} KiB": pooled_mape(
            _cv(note10, lambda s: s.resolution, cache_bytes=kib * 1024, accounting=accounting)
        )
        for kib in CACHE_CHOICES_KIB
    }
    scores["no spill term"] = pooled_mape(
        _cv(note10, lambda s: s.resolution, cache_bytes=math.inf, accounting=accounting)
    )
    best = min(CACHE_CHOICES_KIB, key=lambda kib: scores[f"{kib} KiB"])
    return best * 1024, {name: round(value, 2) for name, value in scores.items()}


def _block_family(sample: Sample) -> str:
    sig = sample.sigs[0]
    if sig.kind != MBCONV:
        return f"other {sample.kind}"
    return f"{sig.in_c}>{sig.out_c} s{sig.stride}"


def _block_variant(sample: Sample) -> str:
    """mbconv split by the choices that change its cost most (stride, SE, activation)."""
    sig = sample.sigs[0]
    if sig.kind != MBCONV:
        return sig.kind
    return (
        f"mbconv s{sig.stride}{' +SE' if sig.se_ratio else ''}"
        f"{' hswish' if sig.act == 'hswish' else ''}"
    )


def _only_blocks(folds: list[HeldOut]) -> list[HeldOut]:
    """Drop folds of one-of-a-kind operators (one stem, one head...): with their only sample
    held out, the term that prices them is not fitted at all, which says nothing about shapes."""
    return [fold for fold in folds if not str(fold.group).startswith("other")]


def _choice_cv(
    samples: Sequence[Sample], attr: str, cache_bytes: float, accounting: str
) -> dict[str, float]:
    """Hold out every block with one value of a choice (e.g. all 7x7 kernels), predict it."""

    def group(sample: Sample) -> str:
        sig = sample.sigs[0]
        if sig.kind != MBCONV or (attr == "expansion" and sig.expansion == 1):
            return "kept"
        return f"{attr} {getattr(sig, attr):g}"

    folds = _cv(samples, group, cache_bytes=cache_bytes, accounting=accounting)
    return {str(f.group): round(f.mape, 2) for f in folds if f.group != "kept"}


def _pixel1_transfer(model: OpCostModel, pixel1: Sequence[Sample]) -> dict[str, Any]:
    """The Note10 model on Pixel 1 shapes, with one device speed ratio fitted leave-one-out."""
    predicted = np.array([model.predict_ms(s.op, s.mid_c) for s in pixel1])
    measured = np.array([s.ms for s in pixel1])
    log_ratio = np.log(measured / predicted)
    scaled = np.empty_like(predicted)
    for i in range(len(pixel1)):
        others = np.delete(log_ratio, i)
        scaled[i] = predicted[i] * np.exp(others.mean())
    kinds = np.array([s.kind for s in pixel1])
    return {
        "samples": len(pixel1),
        "speed_ratio_pixel1_over_note10": round(float(np.exp(log_ratio.mean())), 3),
        "mape": round(mape(scaled, measured), 2),
        "by_kind": {
            k: round(mape(scaled[kinds == k], measured[kinds == k]), 2) for k in sorted(set(kinds))
        },
        "ratio_p10_p90": [round(float(np.exp(q)), 2) for q in np.percentile(log_ratio, [10, 90])],
    }


def evaluate(
    note10: list[Sample], pixel1: list[Sample], cache_bytes: float, runtime: Runtime
) -> dict[str, Any]:
    """Every held-out error figure, none of them on data the evaluated model was fitted to.

    The fitted rates are judged on the runtime that was timed, so every figure prices held-out
    operators with every fitted term; a runtime that prices some terms at zero gets one more
    figure per block variant, as its table prices them (the difference is the runtimes', by
    design, not the model's error).
    """
    accounting = runtime.accounting

    def cv(
        samples: Sequence[Sample],
        group: Callable[[Sample], Any],
        label: Callable[[Sample], str] = lambda s: s.kind,
        price_without: Sequence[str] = (),
    ) -> list[HeldOut]:
        return _cv(samples, group, label, cache_bytes, accounting, price_without)

    by_resolution = cv(note10, lambda s: s.resolution)
    by_family = _only_blocks(cv(note10, _block_family))
    pixel1_blocks = [s for s in pixel1 if s.kind == MBCONV]
    pixel1_family = _only_blocks(cv(pixel1_blocks, _block_family))
    full = fit_cost_model(
        [(s.op, s.ms) for s in note10],
        mids=[s.mid_c for s in note10],
        cache_bytes=cache_bytes,
        accounting=accounting,
    )
    report: dict[str, Any] = {
        "resolution": {
            "held_out": {str(f.group): round(f.mape, 2) for f in by_resolution},
            "pooled": round(pooled_mape(by_resolution), 2),
            "by_kind": {k: round(v, 2) for k, v in mape_by_label(by_resolution).items()},
            "by_block_variant": {
                k: round(v, 2)
                for k, v in mape_by_label(
                    cv(note10, lambda s: s.resolution, _block_variant)
                ).items()
            },
            "worst_sample_percent": round(
                max(
                    float(np.max(np.abs(f.predicted - f.measured) / f.measured)) * 100
                    for f in by_resolution
                ),
                1,
            ),
        },
        "block_shape": {
            "held_out": {str(f.group): round(f.mape, 2) for f in by_family},
            "pooled": round(pooled_mape(by_family), 2),
        },
        "kernel": _choice_cv(note10, "kernel", cache_bytes, accounting),
        "expansion": _choice_cv(note10, "expansion", cache_bytes, accounting),
        "pixel1_transfer": _pixel1_transfer(full, pixel1),
        "pixel1_block_shape": {
            "held_out": {str(f.group): round(f.mape, 2) for f in pixel1_family},
            "pooled": round(pooled_mape(pixel1_family), 2),
        },
    }
    if runtime.priced_without:
        as_priced = cv(note10, lambda s: s.resolution, _block_variant, runtime.priced_without)
        report["resolution"]["as_priced_by_block_variant"] = {
            k: round(v, 2) for k, v in mape_by_label(as_priced).items()
        }
    return report


def outside_published(note10: Sequence[Sample]) -> dict[str, dict[str, int]]:
    """Per space, how many blocks use a choice the Note10 tables never measured.

    Their prices rest on terms fitted elsewhere (MACs, bytes, per-element costs), so the
    held-out figures above do not vouch for them.
    """
    blocks = [s.sigs[0] for s in note10 if s.kind == MBCONV]
    hswish_max = max(sig.in_h for sig in blocks if sig.act == "hswish")
    se_max = max(sig.out_h for sig in blocks if sig.se_ratio)
    kernels = {sig.kernel for sig in blocks}
    groups = {sig.groups for sig in blocks}
    counts = {}
    for name in SPACES:
        sigs = [sig for sig in load_space(name).signatures(DEPLOY_INPUT) if sig.kind == MBCONV]
        reasons = {
            "blocks": sigs,
            f"groups not in {sorted(groups)}": [s for s in sigs if s.groups not in groups],
            f"kernel not in {sorted(kernels)}": [s for s in sigs if s.kernel not in kernels],
            f"h-swish on inputs above {hswish_max}x{hswish_max}": [
                s for s in sigs if s.act == "hswish" and s.in_h > hswish_max
            ],
            f"SE on outputs above {se_max}x{se_max}": [
                s for s in sigs if s.se_ratio and s.out_h > se_max
            ],
        }
        counts[name] = {reason: len(found) for reason, found in reasons.items()}
        outside = {
            sig.key for reason, found in reasons.items() if reason != "blocks" for sig in found
        }
        counts[name]["any of these"] = len(outside)
    return counts


def note10_evidence(
    note10: Sequence[Sample], cache_bytes: float, stated_error_pct: float, accounting: str = FUSED
) -> dict[str, Any]:
    """Per operator kind, the Note10 operators the model is fitted to and its error on those
    of a held-out resolution (`nas lut show` and `validate` compare a price's shapes with
    them, and name the kinds no published operator contains)."""
    folds = cross_validate(
        [(s.op, s.ms) for s in note10],
        [s.resolution for s in note10],
        [str(index) for index in range(len(note10))],
        [s.mid_c for s in note10],
        cache_bytes=cache_bytes,
        accounting=accounting,
    )
    held_out = {int(label): float(p) for f in folds for label, p in zip(f.labels, f.predicted)}
    record = fit_evidence(
        [(s.sigs, s.ms, held_out[index]) for index, s in enumerate(note10)],
        data=f"{len(note10)} published Note10 operators at input "
        f"{'/'.join(map(str, NOTE10_RESOLUTIONS))}",
        held_out="the cost model refitted without each input resolution in turn",
    )
    record["stated_error_pct"] = stated_error_pct
    record["stated_error"] = (
        "the larger of its cost model's held-out errors on published operators of an unseen "
        "resolution and of an unseen block shape, the spread its model entries carry"
    )
    return record


def _round(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def space_signatures() -> dict[str, OpSignature]:
    found: dict[str, OpSignature] = {}
    for name in SPACES:
        for sig in load_space(name).signatures(DEPLOY_INPUT):
            found.setdefault(sig.key, sig)
    return found


def _priced_as_timed(sample: Sample, priced_without: Sequence[str]) -> bool:
    """Whether the table prices this operator as the timed runtime ran it: a published time
    that includes work the table's runtime does not do is no measurement of that runtime."""
    work = op_work(sample.sigs[0], sample.mid_c)
    return not any(work.get(term, 0.0) for term in priced_without)


def build_entries(
    model: OpCostModel,
    note10: list[Sample],
    pixel1: list[Sample],
    relative_std: float,
    priced_without: Sequence[str] = (),
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """An entry per signature: the published value when this device timed exactly it (and the
    table's runtime would run it the same way), else the model's price."""
    published = {
        s.sigs[0].key: s for s in note10 if len(s.sigs) == 1 and _priced_as_timed(s, priced_without)
    }
    other_device = {s.sigs[0].key for s in pixel1 if len(s.sigs) == 1}
    entries: dict[str, dict[str, Any]] = {}
    counts = {"measured": 0, "model": 0, "published_for_another_device_only": 0}
    for key, sig in sorted(space_signatures().items()):
        sample = published.get(key)
        if sample is not None:
            entries[key] = {
                "ms": _round(sample.ms),
                "std": _round(sample.std, 3),
                "source": "measured",
            }
        else:
            ms = model.predict_ms(sig)
            entries[key] = {
                "ms": _round(ms),
                "std": _round(ms * relative_std, 3),
                "source": "model",
            }
            counts["published_for_another_device_only"] += key in other_device
        counts[entries[key]["source"]] += 1
    return entries, counts


def _markdown(
    report: dict[str, Any], model: OpCostModel, counts: dict[str, int], size_kb: float
) -> str:
    res = report["resolution"]
    lines = [
        "Held out one input resolution of the Note10 tables (fit on the other three):",
        "",
        "| held-out resolution | " + " | ".join(res["held_out"]) + " | pooled |",
        "|---" * (len(res["held_out"]) + 2) + "|",
        "| MAPE % | "
        + " | ".join(f"{v:.2f}" for v in res["held_out"].values())
        + f" | {res['pooled']:.2f} |",
        "",
        "| operator kind | " + " | ".join(res["by_kind"]) + " |",
        "|---" * (len(res["by_kind"]) + 1) + "|",
        "| held-out MAPE % | " + " | ".join(f"{v:.2f}" for v in res["by_kind"].values()) + " |",
        "",
        "| block variant | " + " | ".join(res["by_block_variant"]) + " |",
        "|---" * (len(res["by_block_variant"]) + 1) + "|",
        "| held-out MAPE % | "
        + " | ".join(f"{v:.2f}" for v in res["by_block_variant"].values())
        + " |",
        "",
        f"Worst single held-out operator: {res['worst_sample_percent']}%.",
        "",
    ]
    if "as_priced_by_block_variant" in res:
        lines += [
            "As priced (h-swish and SE without the Note10 runtime's excess; the difference from "
            "the row above is the two runtimes', not an error of the model), held-out MAPE % "
            "per block variant: "
            + ", ".join(f"{k} {v:.2f}" for k, v in res["as_priced_by_block_variant"].items())
            + ".",
            "",
        ]
    lines += [
        "Depthwise spill threshold (the one hyperparameter, picked by this same "
        "cross-validation, so the figures above are slightly optimistic), pooled MAPE %: "
        + ", ".join(
            f"{k} {v:.2f}" for k, v in report["cache_selection"]["pooled_resolution_mape"].items()
        )
        + ".",
        "",
    ]
    shape = report["block_shape"]
    lines += [
        f"Held out one block shape (all resolutions and choices of it): pooled MAPE "
        f"{shape['pooled']:.2f}%; per shape "
        + ", ".join(f"{k} {v:.1f}" for k, v in shape["held_out"].items())
        + ".",
        "Held out one kernel size: "
        + ", ".join(f"{k} {v:.1f}%" for k, v in report["kernel"].items())
        + "; one expansion: "
        + ", ".join(f"{k} {v:.1f}%" for k, v in report["expansion"].items())
        + ".",
        "",
    ]
    transfer = report["pixel1_transfer"]
    pix = report["pixel1_block_shape"]
    worst_shape = max(pix["held_out"], key=pix["held_out"].get)
    by_kind = ", ".join(f"{k} {v:.1f}%" for k, v in transfer["by_kind"].items())
    low, high = transfer["ratio_p10_p90"]
    lines += [
        f"Another phone (Pixel 1, ProxylessNAS table, {transfer['samples']} operators at "
        f"224, MobileNetV2 shapes): the Note10 model times one speed ratio "
        f"({transfer['speed_ratio_pixel1_over_note10']}x, fitted leave-one-out) has MAPE "
        f"{transfer['mape']:.1f}% (by kind: {by_kind}; the per-operator ratio spans "
        f"{low}-{high}x between the 10th and 90th percentile: the phones differ in more "
        f"than speed). The same model form fitted to Pixel 1 itself, one block shape held "
        f"out: pooled MAPE {pix['pooled']:.1f}% (worst shape {worst_shape}, "
        f"{pix['held_out'][worst_shape]:.1f}%).",
        "",
    ]
    lines += [
        "Blocks of the shipped spaces whose choices no Note10 operator had (priced through "
        "shared terms, not covered by the figures above): "
        + "; ".join(
            f"{space}: " + ", ".join(f"{reason} {n}" for reason, n in reasons.items())
            for space, reasons in report["outside_published_choices"].items()
        )
        + ".",
        "",
    ]
    lines += [
        f"Coefficients fitted on all {model.fit['samples']} Note10 operators (training MAPE "
        f"{model.fit['training_mape_percent']}%, not a measure of error):",
        "",
        "| term | rate |",
        "|---|---|",
    ]
    lines += [f"| {name} | {text} |" for name, text in model.readable().items()]
    lines += [
        "",
        "Effective depthwise rate (taps plus per-output cost), GMAC/s, input in cache / "
        "larger than cache: "
        + ", ".join(
            f"k{k} s{s} {model.depthwise_efficiency(k, s):.2f}/"
            f"{model.depthwise_efficiency(k, s, spilled=True):.2f}"
            for s in (1, 2)
            for k in (3, 5, 7)
        )
        + ".",
        "",
        "Whole networks at 224 as the table sums them (operators priced in isolation; no "
        "end-to-end phone measurement checks the sum): "
        + ", ".join(
            f"{name} {sum(model.predict_ms(sig) for sig in arch_signatures(make())):.1f} ms"
            for name, make in ZOO.items()
        )
        + ".",
        "",
        f"Entries: {counts['measured']} measured, {counts['model']} model "
        f"({counts['published_for_another_device_only']} of them published for the Pixel 1 "
        f"only, which is another device); file {size_kb:.0f} KB.",
    ]
    return "\n".join(lines)


def _dump(table: dict[str, Any]) -> str:
    """Readable JSON with one line per entry, so the file stays small and diffs stay legible."""
    entries = table["entries"]
    head = json.dumps({k: v for k, v in table.items() if k != "entries"}, indent=1)
    lines = [
        f" {json.dumps(key)}: {json.dumps(value, separators=(',', ':'))}"
        for key, value in entries.items()
    ]
    return head[:-2] + ',\n "entries": {\n' + ",\n".join(lines) + "\n }\n}"


def write_section(path: Path, body: str, section: str) -> None:
    """Replace this script's section of BENCHMARKS.md, or append it; other sections stay as is.

    The file is read immediately before writing because other scripts maintain their own
    sections of it.
    """
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def _section(report_md: str, metadata: TableMetadata, runtime_name: str) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in (metadata.versions or {}).items())
    command = "python scripts/build_armv8_table.py" + (
        "" if runtime_name == "note10" else f" --runtime {runtime_name}"
    )
    runtime = RUNTIMES[runtime_name]
    priced = (
        ""
        if not runtime.priced_without
        else f" Prices: {runtime.runtime_note}; every held-out figure below prices with all "
        "fitted terms (the Note10 runtime is what was timed), except the one marked 'as priced'."
    )
    return "\n".join(
        [
            f"## {metadata.target} latency table: cost model fitted to published Note10 operators",
            "",
            f"`{command}`",
            "",
            f"{metadata.date}; {versions}. Data: the Once-for-All Note10 tables (fitted) and the "
            "ProxylessNAS Pixel 1 table (transfer check only). Every figure below is an error on "
            "operators the evaluated model was not fitted to, unless it says training. See "
            f"docs/armv8.md for what the target stands for.{priced}",
            "",
            report_md,
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runtime",
        choices=sorted(RUNTIMES),
        default="note10",
        help="note10: the armv8 table, h-swish and SE as the Note10 runtime ran them; "
        "xnnpack: the armv8-xnnpack table, h-swish and SE as XNNPACK runs them",
    )
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--out", type=Path, help="default: evaluators/latency/tables/<target>.json")
    parser.add_argument(
        "--benchmarks",
        type=Path,
        default=REPO / "BENCHMARKS.md",
        help="file whose armv8 section is replaced with the figures",
    )
    parser.add_argument(
        "--no-benchmarks",
        action="store_true",
        help="print the figures only; leave BENCHMARKS.md alone",
    )
    args = parser.parse_args(argv)
    runtime = RUNTIMES[args.runtime]
    out = args.out or REPO / "evaluators" / "latency" / "tables" / f"{runtime.target}.json"

    note10 = load_note10(args.data)
    pixel1 = load_pixel1(args.data)
    cache_bytes, cache_scores = choose_cache_bytes(note10, runtime.accounting)
    report = evaluate(note10, pixel1, cache_bytes, runtime)
    report["outside_published_choices"] = outside_published(note10)
    report["cache_selection"] = {
        "chosen_bytes": cache_bytes,
        "pooled_resolution_mape": cache_scores,
    }
    # The spread of a model entry: the held-out error on shapes the fit never saw, which is
    # larger than the error across resolutions of shapes it did see.
    relative_std = max(report["resolution"]["pooled"], report["block_shape"]["pooled"]) / 100

    device = {
        "name": NOTE10,
        **DEVICES[NOTE10],
        "threads": None,
        "precision": "float32",
        "runtime": runtime.runtime,
    }
    model = fit_cost_model(
        [(s.op, s.ms) for s in note10],
        device=device,
        mids=[s.mid_c for s in note10],
        cache_bytes=cache_bytes,
        accounting=runtime.accounting,
        describe={
            "data": f"{len(note10)} published Note10 operators at input "
            f"{'/'.join(map(str, NOTE10_RESOLUTIONS))}",
            "held_out_mape_percent": {
                "resolution": report["resolution"]["pooled"],
                "block_shape": report["block_shape"]["pooled"],
            },
        },
    )
    if runtime.priced_without:
        model = model.priced_without(runtime.priced_without)
    entries, counts = build_entries(model, note10, pixel1, relative_std, runtime.priced_without)
    # Read back through the table's own record: what the file says is what pricing will read.
    metadata = TableMetadata.read(
        {
            "target": runtime.target,
            "device": DEVICES[NOTE10]["device"],
            "cpu": DEVICES[NOTE10]["cpu"],
            "runtime": runtime.runtime,
            "runtime_note": runtime.runtime_note,
            "threads": None,
            "threads_note": "not recorded with the published tables",
            "precision": "float32",
            "precision_note": "assumed: the published networks are float models; the tables do "
            "not record precision",
            "input_size": list(DEPLOY_INPUT),
            "space": "mobile",
            "spaces": list(SPACES),
            "date": datetime.date.today().isoformat(),
            "method": "per-operator cost model (evaluators/latency/cost_model.py, "
            f"{runtime.accounting} accounting) fitted by non-negative "
            "least squares on relative error to the Note10 tables published with "
            "Once-for-All; an entry is 'measured' only when that exact operator was "
            "published for this device"
            + (" and does no work the table prices at zero" if runtime.priced_without else "")
            + ", otherwise 'model' with std = held-out relative "
            f"error ({relative_std:.3f}) x ms; built by scripts/build_armv8_table.py"
            + (f" --runtime {args.runtime}" if args.runtime != "note10" else ""),
            "sources": [
                DEVICES[NOTE10]["source"],
                DEVICES[PIXEL1]["source"] + " (used only to check transfer, not fitted)",
            ],
            "cv_mape": report,
            "fit_evidence": note10_evidence(
                note10, cache_bytes, round(relative_std * 100, 2), runtime.accounting
            ),
            "entry_counts": counts,
            "versions": {
                "python": platform.python_version(),
                "numpy": np.__version__,
                "scipy": scipy.__version__,
            },
        }
    )
    table = {
        "format": 1,
        "metadata": metadata.to_dict(),
        "entries": entries,
        "cost_model": model.to_dict(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    text = _dump(table)
    out.write_text(text + "\n")
    report_md = _markdown(report, model, counts, len(text) / 1024)
    print(report_md)
    if not args.no_benchmarks:
        write_section(args.benchmarks, _section(report_md, metadata, args.runtime), runtime.target)
    print(f"\nwrote {out} ({len(entries)} entries)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
