"""A per-operator latency model a person can read: work divided by fitted rates, plus overheads.

A lookup table can only hold what somebody measured. The ``armv8`` table has to price thousands
of operators that no publication timed, and any table can carry a model to price signatures it
did not measure. It is deliberately not a black-box regressor:
every operator is cut into the work it does (multiply-adds per convolution kind, bytes moved,
elements touched by activations, squeeze-and-excitation and shortcut additions), and the time is
that work times one non-negative coefficient per kind of work::

    ms = overhead + sum_conv(macs / efficiency[conv kind]) + bytes / bandwidth + element terms

so that a fitted model reads as "depthwise 3x3 at stride 1 runs at X GMAC/s, activations move at
Y GB/s", and a surprising prediction can be traced to the term that produced it. Coefficients are
fitted by non-negative least squares on relative error, because a 1 ms error matters on a 2 ms
block and not on a 20 ms one, and a negative rate has no physical meaning.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import nnls

from nas.errors import InputError
from nas.search_spaces.kinds import is_block_kind
from nas.search_spaces.ops import (
    Branches,
    ChannelAggregate,
    ChannelShuffle,
    Conv,
    GlobalPool,
    Layer,
    Linear,
    Pool,
    ShortcutAdd,
    SqueezeExcite,
    ZeroPad,
    op_layers,
)
from nas.search_spaces.signatures import OpSignature

FORMAT = 1
BYTES_PER_VALUE = 4  # float32 activations and weights
DEFAULT_CACHE_BYTES = 256 * 1024
"""Depthwise inputs larger than this no longer stay in a big core's private L2 cache, and their
taps get slower (the ``depthwise_spill_macs`` term). 256 KiB is a typical ARMv8.2 big-core L2
and the best of 128-512 KiB in the resolution cross-validation of the Note10 fit."""
_COSTLY_ACTS = ("hswish", "swish")
"""Activations priced per element. ReLU and ReLU6 are taken as fused into the preceding
convolution, as mobile runtimes do, and cost nothing extra; swish has no published ARM
measurement here and is priced like h-swish, an extrapolation."""
FUSED = "fused"
SEPARATE = "separate"
ACCOUNTINGS = (FUSED, SEPARATE)
"""How h-swish and squeeze-and-excitation are charged. ``fused``: each has a per-element term of
its own (``hswish_elements``, ``se_elements``), whatever the runtime that was timed spent on
them. ``separate``: each also does the work of the separate operators XNNPACK runs (h-swish one
element-wise pass over the tensor; SE a global average pooling, two 1x1 convolutions on the
pooled vector with ReLU and the hard-sigmoid clamp fused, and a broadcast multiply), priced
through the terms every other operator shares; the two own terms then hold only what the timed
runtime spent beyond that (`RUNTIME_EXCESS`), and a table for XNNPACK prices them at zero."""
RUNTIME_EXCESS = ("hswish_elements", "se_elements")
"""Under ``separate`` accounting, the time the fitted runtime spent on h-swish and SE beyond the
separate operators' work."""


@dataclass(frozen=True)
class Term:
    """One kind of work: its unit, what it stands for, and how to show its rate to a person."""

    name: str
    unit: str
    meaning: str
    readable_unit: str
    readable: Callable[[float], float]


def _rate(ms_per_unit: float) -> float:
    """ms per unit -> units per second, in giga (GMAC/s or GB/s)."""
    return math.inf if ms_per_unit <= 0 else 1.0 / (ms_per_unit * 1e-3) / 1e9


def _nanoseconds(ms_per_unit: float) -> float:
    return ms_per_unit * 1e6


def _picoseconds(ms_per_unit: float) -> float:
    return ms_per_unit * 1e9


def _microseconds(ms_per_unit: float) -> float:
    return ms_per_unit * 1e3


TERMS: tuple[Term, ...] = (
    Term(
        "operator",
        "operator",
        "fixed cost of invoking one operator (dispatch, setup)",
        "us per operator",
        _microseconds,
    ),
    Term(
        "full_conv_macs",
        "MAC",
        "multiply-adds of full k x k convolutions (the stem)",
        "GMAC/s",
        _rate,
    ),
    Term(
        "pointwise_macs",
        "MAC",
        "multiply-adds of 1x1 convolutions, grouped or not (block expansion and projection, head)",
        "GMAC/s",
        _rate,
    ),
    Term(
        "depthwise_s1_macs",
        "MAC",
        "multiply-adds (kernel taps) of stride-1 depthwise convolutions",
        "GMAC/s",
        _rate,
    ),
    Term(
        "depthwise_s2_macs",
        "MAC",
        "multiply-adds (kernel taps) of stride-2 depthwise convolutions",
        "GMAC/s",
        _rate,
    ),
    Term(
        "depthwise_spill_macs",
        "MAC",
        "extra cost of depthwise taps whose input feature map "
        "is larger than the cache size (cache_bytes), added to the in-cache rate",
        "ps per MAC added",
        _picoseconds,
    ),
    Term(
        "depthwise_outputs",
        "element",
        "kernel-independent cost per depthwise output element "
        "(store, bias, activation clamp); makes depthwise efficiency grow with the kernel",
        "ns per element",
        _nanoseconds,
    ),
    Term(
        "activation_bytes",
        "byte",
        "feature-map bytes read and written by convolutions, padding and channel shuffles",
        "GB/s",
        _rate,
    ),
    Term(
        "conv_weight_bytes",
        "byte",
        "weight bytes of convolutions (read and packed once per call)",
        "GB/s",
        _rate,
    ),
    Term(
        "linear_weight_bytes",
        "byte",
        "weight bytes of matrix-vector products (fc, "
        "classifier, SE reduce/expand): memory-bound, one multiply-add per 4 bytes",
        "GB/s",
        _rate,
    ),
    Term(
        "hswish_elements",
        "element",
        "elements passed through an h-swish (or swish) activation",
        "ns per element",
        _nanoseconds,
    ),
    Term(
        "se_elements",
        "element",
        "elements of the tensor a squeeze-and-excitation module "
        "pools and then gates (two passes over it)",
        "ns per element",
        _nanoseconds,
    ),
    Term(
        "add_elements",
        "element",
        "elements of an identity-shortcut addition",
        "ns per element",
        _nanoseconds,
    ),
    Term(
        "pool_elements",
        "element",
        "elements read by global average pooling",
        "ns per element",
        _nanoseconds,
    ),
)
TERM_NAMES = tuple(term.name for term in TERMS)
_TERM_INDEX = {name: i for i, name in enumerate(TERM_NAMES)}

FORM = (
    "ms = operator + full_conv_macs*MACs(stem) + pointwise_macs*MACs(1x1, /groups) + "
    "depthwise_s{1,2}_macs*MACs(depthwise) + depthwise_spill_macs*MACs(depthwise whose "
    "input exceeds cache_bytes) + depthwise_outputs*outputs(depthwise) + "
    "activation_bytes*bytes(feature maps in+out of every conv, pad, shuffle) + "
    "conv_weight_bytes*bytes(conv weights) + linear_weight_bytes*bytes(fc/classifier/SE "
    "weights) + hswish_elements*elements(h-swish outputs) + se_elements*elements(SE-gated "
    "tensor) + add_elements*elements(shortcut) + pool_elements*elements(pooled input); "
    "each coefficient is ms per unit, non-negative"
)


def op_work(
    sig: OpSignature,
    mid: int | None = None,
    cache_bytes: float = DEFAULT_CACHE_BYTES,
    accounting: str = FUSED,
) -> dict[str, float]:
    """The work of one operator, per term (MACs, bytes, elements; no time yet).

    `mid` overrides the expanded width of an ``mbconv``, for published blocks whose middle width
    our channel rounding does not reproduce. The work is summed over the operator's layers, the
    ones the builder makes its module from, so the multiply-adds equal
    `nas.evaluators.flops.op_macs`.
    """
    try:
        layers = op_layers(sig, mid)
    except ValueError:
        raise InputError(f"the cost model cannot price operator kind {sig.kind!r}") from None
    if accounting not in ACCOUNTINGS:
        raise InputError(f"unknown cost accounting {accounting!r}; choose from {ACCOUNTINGS}")
    work: dict[str, float] = defaultdict(float)
    work["operator"] = 1.0
    for layer in layers:
        _layer_work(work, layer, cache_bytes)
    if accounting == SEPARATE:
        _separate_operators(work, layers)
    return dict(work)


def _layer_work(work: dict[str, float], layer: Layer, cache_bytes: float) -> None:
    if isinstance(layer, Conv):
        _conv(work, layer, cache_bytes)
    elif isinstance(layer, ZeroPad):
        # Even kernels get an explicit zero-pad copy in the built module: one more operator.
        work["operator"] += 1.0
        work["activation_bytes"] += BYTES_PER_VALUE * (layer.inputs + layer.outputs)
    elif isinstance(layer, ChannelShuffle):
        # A reshape-transpose copy of the expanded tensor, one more operator.
        work["operator"] += 1.0
        work["activation_bytes"] += BYTES_PER_VALUE * 2 * layer.elements
    elif isinstance(layer, SqueezeExcite):
        work["se_elements"] += layer.elements
        work["linear_weight_bytes"] += BYTES_PER_VALUE * (
            _weights(layer.reduce) + _weights(layer.expand)
        )
    elif isinstance(layer, Linear):
        work["linear_weight_bytes"] += BYTES_PER_VALUE * layer.in_c * layer.out_c
        _activation(work, layer.act, layer.out_c)
    elif isinstance(layer, GlobalPool):
        work["pool_elements"] += layer.inputs
    elif isinstance(layer, ShortcutAdd):
        work["add_elements"] += layer.elements
    elif isinstance(layer, Pool):
        # One more operator that reads its input and writes its output, reducing k x k taps
        # per output: the taps are priced like the elements a global pooling reads.
        work["operator"] += 1.0
        work["activation_bytes"] += BYTES_PER_VALUE * (layer.inputs + layer.outputs)
        work["pool_elements"] += layer.outputs * layer.kernel**2
    elif isinstance(layer, ChannelAggregate):
        # Like a pooling over channels: one operator reading every input element once.
        work["operator"] += 1.0
        work["activation_bytes"] += BYTES_PER_VALUE * (layer.inputs + layer.outputs)
        work["pool_elements"] += layer.inputs
    elif isinstance(layer, Branches):
        _branches(work, layer, cache_bytes)
    else:
        raise TypeError(f"the cost model has no terms for layer {layer!r}")


def _branches(work: dict[str, float], layer: Branches, cache_bytes: float) -> None:
    """Each path's layers, plus the copies around them, priced by the bytes they move.

    A channel split, a concatenation and the slice of a Ghost module compute nothing: each is
    one more operator that reads and writes a feature map (onnxruntime runs Split, Concat and
    Slice as copies), priced like a channel shuffle. An ``add`` merge, and each sum of a
    hierarchical one, is a shortcut addition. A merge's batch norm cannot fold into a
    convolution: one more operator reading and writing the output, priced by those bytes.
    """
    for path in layer.paths:
        for inner in path:
            _layer_work(work, inner, cache_bytes)
    if layer.split:
        work["operator"] += 1.0
        work["activation_bytes"] += BYTES_PER_VALUE * 2 * layer.inputs
    if layer.bn:
        work["operator"] += 1.0
        work["activation_bytes"] += BYTES_PER_VALUE * 2 * layer.outputs
    _activation(work, layer.act, layer.outputs)
    if layer.merge == "add":
        work["add_elements"] += layer.outputs
        return
    work["add_elements"] += layer.fused
    work["operator"] += 1.0
    work["activation_bytes"] += BYTES_PER_VALUE * 2 * layer.concatenated
    if layer.sliced:
        work["operator"] += 1.0
        work["activation_bytes"] += BYTES_PER_VALUE * 2 * layer.outputs


def _conv(work: dict[str, float], conv: Conv, cache_bytes: float) -> None:
    """A dilated depthwise convolution is priced as the depthwise one with as many taps: an
    extrapolation (no measurement behind it), which `op_kinds` names as a kind of its own."""
    macs = conv.outputs * conv.in_c * conv.kernel**2 / conv.groups
    if conv.kind == "full":
        work["full_conv_macs"] += macs
    elif conv.kind == "pointwise":
        work["pointwise_macs"] += macs
    else:
        work["depthwise_s1_macs" if conv.stride == 1 else "depthwise_s2_macs"] += macs
        if BYTES_PER_VALUE * conv.inputs > cache_bytes:
            work["depthwise_spill_macs"] += macs
        work["depthwise_outputs"] += conv.outputs
    work["activation_bytes"] += BYTES_PER_VALUE * (conv.inputs + conv.outputs)
    work["conv_weight_bytes"] += BYTES_PER_VALUE * _weights(conv)
    _activation(work, conv.act, conv.outputs)


def _weights(conv: Conv) -> float:
    return conv.in_c * conv.out_c * conv.kernel**2 / conv.groups


def _activation(work: dict[str, float], act: str, elements: float) -> None:
    if act in _COSTLY_ACTS:
        work["hswish_elements"] += elements


def _separate_operators(work: dict[str, float], layers: Sequence[Layer]) -> None:
    """Add the work of h-swish and SE as the separate operators XNNPACK runs (see `SEPARATE`)."""
    for layer in layers:
        if isinstance(layer, Branches):
            _separate_operators(work, [inner for path in layer.paths for inner in path])
            _separate_activation(work, layer.act, layer.outputs)
        elif isinstance(layer, Conv):
            _separate_activation(work, layer.act, layer.outputs)
        elif isinstance(layer, Linear):
            _separate_activation(work, layer.act, layer.out_c)
        elif isinstance(layer, SqueezeExcite):
            # Pooling, reduce, expand (clamp fused), broadcast multiply; the two 1x1
            # convolutions' weights are already priced as linear weights.
            work["operator"] += 4.0
            work["pool_elements"] += layer.elements
            work["activation_bytes"] += BYTES_PER_VALUE * 2 * layer.elements


def _separate_activation(work: dict[str, float], act: str, elements: float) -> None:
    if act in _COSTLY_ACTS:
        # One element-wise operator that reads and writes the tensor.
        work["operator"] += 1.0
        work["activation_bytes"] += BYTES_PER_VALUE * 2 * elements


Op = OpSignature | Sequence[OpSignature]
"""What one measurement timed: an operator, or several whose times the publication summed."""


def _work_vector(
    op: Op, mid: int | None, cache_bytes: float, accounting: str = FUSED
) -> np.ndarray:
    sigs = (op,) if isinstance(op, OpSignature) else tuple(op)
    vector = np.zeros(len(TERM_NAMES))
    for sig in sigs:
        mid_c = mid if is_block_kind(sig.kind) else None
        for name, amount in op_work(sig, mid_c, cache_bytes, accounting).items():
            vector[_TERM_INDEX[name]] += amount
    return vector


@dataclass
class OpCostModel:
    """Fitted rates for one device; `predict_ms` prices any operator signature.

    ``coefficients`` are milliseconds per unit of each term in `TERMS`; ``cache_bytes`` is the
    depthwise input size above which taps are charged the spill rate. ``device`` says which
    device and runtime the rates describe and ``fit`` summarises the data they came from; all
    of it travels with the model into a table file. ``accounting`` says how h-swish and SE are
    charged (`ACCOUNTINGS`).
    """

    coefficients: dict[str, float]
    cache_bytes: float = DEFAULT_CACHE_BYTES
    device: dict[str, Any] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)
    accounting: str = FUSED

    def __post_init__(self) -> None:
        if self.accounting not in ACCOUNTINGS:
            raise InputError(
                f"cost model accounting must be one of {ACCOUNTINGS}, got {self.accounting!r}"
            )
        unknown = set(self.coefficients) - set(TERM_NAMES)
        missing = set(TERM_NAMES) - set(self.coefficients)
        if unknown or missing:
            raise InputError(
                f"cost model coefficients do not match its terms (unknown: "
                f"{sorted(unknown)}, missing: {sorted(missing)})"
            )
        for name, value in self.coefficients.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InputError(
                    f"cost model coefficient {name} must be a finite non-negative "
                    f"number, got {value!r}"
                )
        self._vector = np.array([float(self.coefficients[name]) for name in TERM_NAMES])

    def predict_ms(self, sig: Op, mid: int | None = None) -> float:
        """Predicted milliseconds of one operator (or of several timed together)."""
        return float(_work_vector(sig, mid, self.cache_bytes, self.accounting) @ self._vector)

    def breakdown(self, sig: OpSignature) -> dict[str, float]:
        """Milliseconds per term for one operator: where the predicted time goes."""
        work = op_work(sig, cache_bytes=self.cache_bytes, accounting=self.accounting)
        return {name: amount * self.coefficients[name] for name, amount in work.items() if amount}

    def priced_without(self, terms: Sequence[str]) -> OpCostModel:
        """The same rates with `terms` at zero: what another runtime does not spend (for
        example `RUNTIME_EXCESS` when pricing for XNNPACK); the fit record says so."""
        unknown = set(terms) - set(TERM_NAMES)
        if unknown:
            raise InputError(f"unknown cost-model terms {sorted(unknown)}")
        coefficients = {
            name: 0.0 if name in terms else rate for name, rate in self.coefficients.items()
        }
        fit = {**self.fit, "priced_at_zero": sorted(terms)}
        return OpCostModel(coefficients, self.cache_bytes, dict(self.device), fit, self.accounting)

    def readable(self) -> dict[str, str]:
        """Each coefficient in the unit a person thinks in (GMAC/s, GB/s, ns per element)."""
        shown = {}
        for term in TERMS:
            value = term.readable(self.coefficients[term.name])
            shown[term.name] = (
                "unused (fitted 0)"
                if math.isinf(value) or value == 0
                else f"{value:.3g} {term.readable_unit}"
            )
        return shown

    def depthwise_efficiency(self, kernel: int, stride: int, spilled: bool = False) -> float:
        """Effective depthwise GMAC/s at a kernel size: taps plus the per-output cost."""
        per_tap = self.coefficients[f"depthwise_s{stride}_macs"]
        if spilled:
            per_tap += self.coefficients["depthwise_spill_macs"]
        taps = per_tap * kernel**2
        ms = taps + self.coefficients["depthwise_outputs"]
        return _rate(ms / kernel**2)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the coefficients, what each means, the device and the fit summary."""
        return {
            "format": FORMAT,
            "form": FORM,
            # Full precision: a model read back from JSON must predict exactly the same times.
            "coefficients": {name: float(self.coefficients[name]) for name in TERM_NAMES},
            "terms": {
                term.name: {
                    "unit": term.unit,
                    "meaning": term.meaning,
                    "ms_per_unit": float(f"{self.coefficients[term.name]:.6g}"),
                    "readable": self.readable()[term.name],
                }
                for term in TERMS
            },
            "cache_bytes": self.cache_bytes,
            "accounting": self.accounting,
            "depthwise_gmacs": {
                f"k{k}_s{s}{'_spilled' if spilled else ''}": round(
                    self.depthwise_efficiency(k, s, spilled), 3
                )
                for spilled in (False, True)
                for s in (1, 2)
                for k in (3, 5, 7)
            },
            "device": self.device,
            "fit": self.fit,
        }

    @classmethod
    def from_dict(cls, data: Any) -> OpCostModel:
        """Rebuild a model from `to_dict` output; anything malformed is an `InputError`."""
        if not isinstance(data, dict) or not isinstance(data.get("coefficients"), dict):
            raise InputError("cost model must be a mapping with a 'coefficients' mapping")
        if data.get("format", FORMAT) != FORMAT:
            raise InputError(
                f"cost model format {data.get('format')!r} is not supported (expected {FORMAT})"
            )
        cache_bytes = data.get("cache_bytes", DEFAULT_CACHE_BYTES)
        if not (isinstance(cache_bytes, (int, float)) and cache_bytes > 0):
            raise InputError(
                f"cost model cache_bytes must be a positive number, got {cache_bytes!r}"
            )
        return cls(
            coefficients=dict(data["coefficients"]),
            cache_bytes=cache_bytes,
            device=dict(data.get("device", {})),
            fit=dict(data.get("fit", {})),
            accounting=data.get("accounting", FUSED),
        )


def mape(predicted: Iterable[float], measured: Iterable[float]) -> float:
    """Mean absolute percentage error, in percent."""
    predicted, measured = np.asarray(list(predicted)), np.asarray(list(measured))
    return float(np.mean(np.abs(predicted - measured) / measured) * 100)


def fit_cost_model(
    samples: Sequence[tuple[Op, float]],
    device: dict[str, Any] | str | None = None,
    mids: Sequence[int | None] | None = None,
    describe: dict[str, Any] | None = None,
    cache_bytes: float = DEFAULT_CACHE_BYTES,
    accounting: str = FUSED,
) -> OpCostModel:
    """Fit non-negative rates to measured (operator, milliseconds) pairs by relative error.

    Each row is divided by its measurement, so the fit minimises the sum of squared relative
    errors; columns are scaled to unit maximum so the solver sees comparable magnitudes. Terms
    the samples never exercise (no grouped or even-kernel operators were published) keep their
    physical meaning through the terms they share (MACs, bytes) rather than a coefficient of
    their own, which is what lets the model price them at all.
    """
    if not samples:
        raise InputError("cannot fit a cost model to no samples")
    mids = list(mids) if mids is not None else [None] * len(samples)
    work = np.array(
        [_work_vector(op, mid, cache_bytes, accounting) for (op, _), mid in zip(samples, mids)]
    )
    measured = np.array([float(ms) for _, ms in samples])
    if np.any(measured <= 0) or not np.all(np.isfinite(measured)):
        raise InputError("measured latencies must be positive and finite")
    scale = work.max(axis=0)
    scale[scale == 0] = 1.0
    solution, _ = nnls(work / scale / measured[:, None], np.ones_like(measured))
    coefficients = dict(zip(TERM_NAMES, (solution / scale).tolist()))
    if isinstance(device, str):
        device = {"name": device}
    model = OpCostModel(
        coefficients, cache_bytes=cache_bytes, device=dict(device or {}), accounting=accounting
    )
    train = mape((model.predict_ms(op, mid) for (op, _), mid in zip(samples, mids)), measured)
    model.fit = {
        "samples": len(samples),
        "method": "non-negative least squares on relative error",
        "training_mape_percent": round(train, 2),
        **(describe or {}),
    }
    return model


@dataclass(frozen=True)
class HeldOut:
    """Predictions for samples the model was not fitted to, with what was measured."""

    group: Any
    predicted: np.ndarray
    measured: np.ndarray
    labels: tuple[str, ...]

    @property
    def mape(self) -> float:
        return mape(self.predicted, self.measured)


def cross_validate(
    samples: Sequence[tuple[Op, float]],
    groups: Sequence[Any],
    labels: Sequence[str] | None = None,
    mids: Sequence[int | None] | None = None,
    cache_bytes: float = DEFAULT_CACHE_BYTES,
    accounting: str = FUSED,
    price_without: Sequence[str] = (),
) -> list[HeldOut]:
    """Leave each group out in turn: fit on the rest, predict the group.

    The only honest error of a fitted model is on data it did not see; grouping decides what
    "unseen" means (a whole input resolution, a whole block shape, a kernel size). Held-out
    operators are priced with the terms in `price_without` at zero, as a table built that way
    prices them.
    """
    mids = list(mids) if mids is not None else [None] * len(samples)
    labels = list(labels) if labels is not None else [""] * len(samples)
    folds = []
    for group in sorted(set(groups), key=str):
        held = [i for i, g in enumerate(groups) if g == group]
        kept = [i for i, g in enumerate(groups) if g != group]
        model = fit_cost_model(
            [samples[i] for i in kept],
            mids=[mids[i] for i in kept],
            cache_bytes=cache_bytes,
            accounting=accounting,
        )
        if price_without:
            model = model.priced_without(price_without)
        predicted = np.array([model.predict_ms(samples[i][0], mids[i]) for i in held])
        measured = np.array([float(samples[i][1]) for i in held])
        folds.append(HeldOut(group, predicted, measured, tuple(labels[i] for i in held)))
    return folds


def mape_by_label(folds: Sequence[HeldOut]) -> dict[str, float]:
    """Held-out MAPE pooled over folds, per label (e.g. per operator kind)."""
    errors: dict[str, list[float]] = defaultdict(list)
    for fold in folds:
        for label, p, m in zip(fold.labels, fold.predicted, fold.measured):
            errors[label].append(abs(p - m) / m * 100)
    return {label: float(np.mean(values)) for label, values in sorted(errors.items())}


def pooled_mape(folds: Sequence[HeldOut]) -> float:
    """Held-out MAPE over every sample of every fold."""
    return mape(
        np.concatenate([f.predicted for f in folds]), np.concatenate([f.measured for f in folds])
    )
