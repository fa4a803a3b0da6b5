"""Multiply-adds and parameters of an architecture, counted by fvcore on the built model.

"MFLOPs" throughout `nas` means millions of multiply-adds, the unit of the MobileNet, ShuffleNet
and MnasNet papers and of fvcore. Only convolutions and linear layers are counted: batch norm folds
into the preceding convolution at inference, and pooling, activations, the SE gate multiply and
shortcut additions are memory-bound element-wise work whose cost the latency tables capture. This
is the convention under which torchvision's published GFLOPS are reproduced.

`op_macs` (`nas.search_spaces.footprint`) is the same count derived from an operator's layers
(`op_layers`, which the builder builds the module from) without building anything; the tests
hold it equal to fvcore's count of the built module.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from fvcore.nn import jit_handles
from fvcore.nn.jit_analysis import JitModelAnalysis

from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model
from nas.search_spaces.footprint import count_params, layer_macs, op_macs
from nas.search_spaces.signatures import (
    DEPLOY_CLASSES,
    DEPLOY_INPUT,
    InputShape,
    arch_signatures,
)

__all__ = ["Cost", "count_cost", "estimate_cost", "layer_macs", "module_macs", "op_macs"]

_COUNTED_OPS = {
    "aten::_convolution": jit_handles.conv_flop_jit,
    "aten::addmm": jit_handles.addmm_flop_jit,
    "aten::linear": jit_handles.linear_flop_jit,
    "aten::matmul": jit_handles.matmul_flop_jit,
    "aten::mm": jit_handles.matmul_flop_jit,
    "aten::bmm": jit_handles.bmm_flop_jit,
}
_IGNORED_OPS = (
    "aten::batch_norm",
    "aten::adaptive_avg_pool2d",
    "aten::mean",
    "aten::hardswish",
    "aten::hardswish_",
    "aten::hardsigmoid",
    "aten::hardsigmoid_",
    "aten::silu",
    "aten::silu_",
    "aten::relu",
    "aten::relu_",
    "aten::hardtanh",
    "aten::hardtanh_",
    "aten::mul",
    "aten::mul_",
    "aten::add",
    "aten::add_",
    "aten::constant_pad_nd",
    "aten::pad",
    "aten::dropout",
    "aten::feature_dropout",
    "aten::flatten",
    "aten::view",
    "aten::reshape",
    "aten::transpose",
    "aten::cat",
    "aten::split",
    "aten::split_with_sizes",
    "aten::slice",
    "aten::max_pool2d",
    "aten::avg_pool2d",
    "aten::amax",
)


@dataclass(frozen=True)
class Cost:
    """What a candidate costs at one input: multiply-adds (millions) and parameters."""

    mflops: float
    params: int
    input_shape: InputShape
    num_classes: int


def count_cost(
    arch: Arch, input_shape: InputShape = DEPLOY_INPUT, num_classes: int = DEPLOY_CLASSES
) -> Cost:
    """Build `arch` at `input_shape` and count it with fvcore (a few tenths of a second at 224).

    Pricing runs for every candidate, next to training workers on the same cores. Two things
    made it slow there and are avoided: random weight initialisation (the model is built on the
    meta device and materialised as zeros, since counting needs shapes, not values), and a
    multi-threaded trace forward, whose OpenMP threads spin against busy cores (measured: 2.7 s
    median with two threads on a loaded two-core machine, 0.4 s with one).
    """
    with _single_thread():
        model = _zero_model(arch, input_shape, num_classes)
        return Cost(
            mflops=module_macs(model, input_shape) / 1e6,
            params=sum(p.numel() for p in model.parameters()),
            input_shape=input_shape,
            num_classes=num_classes,
        )


def _zero_model(arch: Arch, input_shape: InputShape, num_classes: int) -> torch.nn.Module:
    with torch.device("meta"):
        model = build_model(arch, input_shape, num_classes)
    model = model.to_empty(device="cpu").eval()
    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            tensor.zero_()
    return model


@contextmanager
def _single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def module_macs(model: torch.nn.Module, input_shape: InputShape) -> int:
    """Multiply-adds of one forward pass of `model` on a batch of one."""
    analysis = JitModelAnalysis(model, torch.zeros(1, *input_shape))
    analysis.set_op_handle(**_COUNTED_OPS, **{name: None for name in _IGNORED_OPS})
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    fvcore_logger = logging.getLogger("fvcore")
    previous = fvcore_logger.level
    fvcore_logger.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            return int(analysis.total())
    finally:
        fvcore_logger.setLevel(previous)


def estimate_cost(
    arch: Arch, input_shape: InputShape = DEPLOY_INPUT, num_classes: int = DEPLOY_CLASSES
) -> Cost:
    """The same numbers as `count_cost` from the signatures alone, in well under a millisecond.

    The search uses it to find the cheapest and dearest corners of a space, where building
    thousands of models would take minutes.
    """
    sigs = arch_signatures(arch, input_shape, num_classes)
    return Cost(
        mflops=sum(op_macs(sig) for sig in sigs) / 1e6,
        params=count_params(arch, input_shape, num_classes),
        input_shape=input_shape,
        num_classes=num_classes,
    )
