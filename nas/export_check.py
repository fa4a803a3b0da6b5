"""The check every exported model file passes before it is written: the same outputs as torch.

Both the exporters (`nas.export`) and the phone runtimes (`nas.phone`) fail with
`ExportFailed`; it lives here, below both, so that neither has to import the other to raise it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

RTOL = 1e-4
ATOL = 1e-5
FLOAT32_MARGIN = 4.0
"""An exported model agrees with torch when, elementwise,
|a - b| <= ATOL + RTOL * |b| + FLOAT32_MARGIN * e, where e is how far torch's own float32
result is from the same model computed in float64 (`float32_error`).

A trained network at its deployment input computes in float32 to far within ATOL and RTOL,
and e adds nothing. An untrained one at a small input (its batch norms set on a few random
images whose last maps are 1x1) multiplies rounding layer by layer: torch itself is then
farther from the exact result than ATOL + RTOL * |b|, so that bound alone judged float32, not
the export. Two float32 computations each within e of the exact result differ by up to 2e; a
runtime that folds batch norms and fuses kernels rounds in an order of its own, about one e
more; the margin leaves one e beyond that. A wrong graph differs by the size of the outputs.
"""


class ExportFailed(RuntimeError):
    """The exported model does not load or does not compute what the torch model computes."""


@dataclass(frozen=True)
class Check:
    """How an exported file was verified against the eager model."""

    runtime: str
    max_abs_diff: float
    tolerance_ok: bool
    float32_error: float = 0.0

    def describe(self) -> str:
        return (
            f"{self.runtime} output matches torch: max |difference| "
            f"{self.max_abs_diff:.2e} (allowed {ATOL:g} + {RTOL:g}*|y| + "
            f"{FLOAT32_MARGIN:g}*{self.float32_error:.1e}, torch's own float32 error)"
        )


def float32_error(model: torch.nn.Module, x: torch.Tensor) -> float:
    """How far `model` computes in float32 from itself in float64 on `x` (largest difference)."""
    with torch.no_grad():
        single = model(x).double()
        double = copy.deepcopy(model).double()(x.double())
    return float((single - double).abs().max())


def compare(
    expected: torch.Tensor | np.ndarray,
    actual: torch.Tensor | np.ndarray,
    runtime: str,
    error: float = 0.0,
) -> Check:
    """How far `actual` (the runtime's outputs) is from `expected` (torch's), elementwise;
    `error`: torch's own float32 error on the same input (`float32_error`)."""
    want = np.asarray(expected, dtype=np.float64)
    got = np.asarray(actual, dtype=np.float64)
    if want.shape != got.shape:
        raise ExportFailed(f"{runtime} returned shape {got.shape}, torch {want.shape}")
    diff = np.abs(got - want)
    allowed = ATOL + RTOL * np.abs(want) + FLOAT32_MARGIN * error
    return Check(runtime, float(diff.max()), bool(np.all(diff <= allowed)), error)
