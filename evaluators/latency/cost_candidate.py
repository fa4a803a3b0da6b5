"""Work accountings of the per-operator cost model, judged side by side on whole networks.

The ``armv8`` table charges h-swish and squeeze-and-excitation through coefficients of their
own (``hswish_elements``, ``se_elements``), fitted to the Note10 tables. Those tables never time
a block shape with and without either choice: every shape of the Once-for-All space has its SE
and its activation fixed by its stage, so the two coefficients are not separated from whatever
else makes late, small-map blocks slow, and they carry that into networks where h-swish runs on
112x112 maps. ``separate_ops`` is the cost model's ``separate`` accounting (the work of the
separate operators XNNPACK runs, see `nas.evaluators.latency.cost_model.SEPARATE`) with the two
own terms kept in the fit; a network is then priced without them
(`CandidateModel.without(NOTE10_EXCESS)`), which is how the shipped ``armv8-xnnpack`` table
prices. ``separate_ops_only`` and ``no_conv_weights`` are the alternatives the choice was made
against. ``current`` reproduces the ``armv8`` table's model exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import nnls

from nas.errors import InputError
from nas.evaluators.latency.cost_model import (
    DEFAULT_CACHE_BYTES,
    FUSED,
    RUNTIME_EXCESS,
    SEPARATE,
    TERM_NAMES,
    HeldOut,
    Op,
    mape,
    op_work,
)
from nas.search_spaces.kinds import is_block_kind
from nas.search_spaces.signatures import OpSignature

CURRENT = "current"
SEPARATE_OPS = "separate_ops"
SEPARATE_OPS_ONLY = "separate_ops_only"
NO_CONV_WEIGHTS = "no_conv_weights"
VARIANTS = (CURRENT, SEPARATE_OPS, SEPARATE_OPS_ONLY, NO_CONV_WEIGHTS)
"""``current``: the shipped accounting. ``separate_ops``: h-swish and SE also do the work of the
separate operators a phone runtime runs (shared terms), and keep their own terms for what the
Note10 runtime spent beyond that (`NOTE10_EXCESS`). ``separate_ops_only``: the separate
operators' work alone, with no terms of their own. ``no_conv_weights``: the shipped accounting
without convolution weight bytes, a diagnosis of how input size scales (the only
size-independent term of a convolution), not a candidate."""

NOTE10_EXCESS = RUNTIME_EXCESS
"""Under ``separate_ops``, the time the Note10 runtime spent on h-swish and SE beyond one
element-wise pass (h-swish) or a pooling, two 1x1 convolutions and a multiply (SE)."""

_INDEX = {name: i for i, name in enumerate(TERM_NAMES)}


def candidate_work(
    sig: OpSignature,
    mid: int | None = None,
    cache_bytes: float = DEFAULT_CACHE_BYTES,
    variant: str = CURRENT,
) -> dict[str, float]:
    """The work of one operator per term under `variant` (``current`` is `op_work` itself)."""
    if variant not in VARIANTS:
        raise InputError(f"unknown cost-model variant {variant!r}; choose from {VARIANTS}")
    accounting = FUSED if variant in (CURRENT, NO_CONV_WEIGHTS) else SEPARATE
    work = dict(op_work(sig, mid, cache_bytes, accounting))
    if variant == NO_CONV_WEIGHTS:
        work.pop("conv_weight_bytes", None)
    if variant == SEPARATE_OPS_ONLY:
        for name in NOTE10_EXCESS:
            work.pop(name, None)
    return work


def work_vector(op: Op, mid: int | None, cache_bytes: float, variant: str = CURRENT) -> np.ndarray:
    sigs = (op,) if isinstance(op, OpSignature) else tuple(op)
    vector = np.zeros(len(TERM_NAMES))
    for sig in sigs:
        mid_c = mid if is_block_kind(sig.kind) else None
        for name, amount in candidate_work(sig, mid_c, cache_bytes, variant).items():
            vector[_INDEX[name]] += amount
    return vector


@dataclass(frozen=True)
class CandidateModel:
    """Fitted rates (ms per unit of each term) under one work accounting."""

    coefficients: dict[str, float]
    cache_bytes: float
    variant: str
    training_mape: float

    def predict_ms(self, op: Op, mid: int | None = None) -> float:
        vector = work_vector(op, mid, self.cache_bytes, self.variant)
        return float(vector @ np.array([self.coefficients[name] for name in TERM_NAMES]))

    def breakdown(self, sig: OpSignature) -> dict[str, float]:
        """Milliseconds per term for one operator: where the predicted time goes."""
        work = candidate_work(sig, cache_bytes=self.cache_bytes, variant=self.variant)
        return {name: amount * self.coefficients[name] for name, amount in work.items() if amount}

    def without(self, terms: Sequence[str]) -> CandidateModel:
        """The same rates with `terms` priced at zero (e.g. `NOTE10_EXCESS` for another runtime)."""
        coefficients = {
            name: 0.0 if name in terms else rate for name, rate in self.coefficients.items()
        }
        return CandidateModel(coefficients, self.cache_bytes, self.variant, self.training_mape)

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "cache_bytes": self.cache_bytes,
            "coefficients": dict(self.coefficients),
            "training_mape_percent": round(self.training_mape, 2),
        }


def fit_candidate(
    samples: Sequence[tuple[Op, float]],
    mids: Sequence[int | None] | None = None,
    cache_bytes: float = DEFAULT_CACHE_BYTES,
    variant: str = CURRENT,
) -> CandidateModel:
    """Non-negative least squares on relative error, as `fit_cost_model` fits the shipped model.

    With ``variant="current"`` the coefficients equal `fit_cost_model`'s to rounding.
    """
    if not samples:
        raise InputError("cannot fit a cost model to no samples")
    mids = list(mids) if mids is not None else [None] * len(samples)
    work = np.array(
        [work_vector(op, mid, cache_bytes, variant) for (op, _), mid in zip(samples, mids)]
    )
    measured = np.array([float(ms) for _, ms in samples])
    scale = work.max(axis=0)
    scale[scale <= 0] = 1.0
    solution, _ = nnls(work / scale / measured[:, None], np.ones_like(measured))
    coefficients = dict(zip(TERM_NAMES, (solution / scale).tolist()))
    predicted = work @ (solution / scale)
    return CandidateModel(coefficients, cache_bytes, variant, mape(predicted, measured))


def cross_validate_candidate(
    samples: Sequence[tuple[Op, float]],
    groups: Sequence[Any],
    labels: Sequence[str] | None = None,
    mids: Sequence[int | None] | None = None,
    cache_bytes: float = DEFAULT_CACHE_BYTES,
    variant: str = CURRENT,
    price_without: Sequence[str] = (),
) -> list[HeldOut]:
    """Leave each group out in turn, as `cross_validate` does, under `variant`; held-out
    operators are priced with the terms in `price_without` at zero."""
    mids = list(mids) if mids is not None else [None] * len(samples)
    labels = list(labels) if labels is not None else [""] * len(samples)
    folds = []
    for group in sorted(set(groups), key=str):
        held = [i for i, g in enumerate(groups) if g == group]
        kept = [i for i, g in enumerate(groups) if g != group]
        model = fit_candidate(
            [samples[i] for i in kept], [mids[i] for i in kept], cache_bytes, variant
        ).without(price_without)
        predicted = np.array([model.predict_ms(samples[i][0], mids[i]) for i in held])
        measured = np.array([float(samples[i][1]) for i in held])
        folds.append(HeldOut(group, predicted, measured, tuple(labels[i] for i in held)))
    return folds
