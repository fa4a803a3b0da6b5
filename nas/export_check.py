"""The check every exported model file passes before it is written: the same outputs as torch.

Both the exporters (`nas.export`) and the phone runtimes (`nas.phone`) fail with
`ExportFailed`; it lives here, below both, so that neither has to import the other to raise it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

RTOL = 1e-4
ATOL = 1e-5
"""An exported model agrees with torch when |a - b| <= ATOL + RTOL * |b| elementwise."""


class ExportFailed(RuntimeError):
    """The exported model does not load or does not compute what the torch model computes."""


@dataclass(frozen=True)
class Check:
    """How an exported file was verified against the eager model."""

    runtime: str
    max_abs_diff: float
    tolerance_ok: bool

    def describe(self) -> str:
        return (
            f"{self.runtime} output matches torch: max |difference| "
            f"{self.max_abs_diff:.2e} (allowed {ATOL:g} + {RTOL:g}*|y|)"
        )


def compare(
    expected: torch.Tensor | np.ndarray, actual: torch.Tensor | np.ndarray, runtime: str
) -> Check:
    """How far `actual` (the runtime's outputs) is from `expected` (torch's), elementwise."""
    want = np.asarray(expected, dtype=np.float64)
    got = np.asarray(actual, dtype=np.float64)
    if want.shape != got.shape:
        raise ExportFailed(f"{runtime} returned shape {got.shape}, torch {want.shape}")
    diff = np.abs(got - want)
    return Check(runtime, float(diff.max()), bool(np.all(diff <= ATOL + RTOL * np.abs(want))))
