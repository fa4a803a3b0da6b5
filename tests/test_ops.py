"""The one description of an operator's layers, against the modules built from it and its counts.

Every count (parameters, multiply-adds, feature-map bytes, cost-model work) is a sum over
`op_layers`, so these tests hold the layers to what the built module really does, layer by
layer, and each consumer's per-layer rule to what it claims to count.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nas.errors import InputError
from nas.evaluators.flops import layer_macs, module_macs, op_macs
from nas.evaluators.latency.cost_model import op_work
from nas.evaluators.latency.table import feature_map_bytes
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model, build_op
from nas.search_spaces.footprint import layer_params, op_params
from nas.search_spaces.ops import (
    ChannelShuffle,
    Conv,
    GlobalPool,
    Layer,
    Linear,
    ShortcutAdd,
    SqueezeExcite,
    ZeroPad,
    op_layers,
)
from nas.search_spaces.signatures import OpSignature

EVERY_OPTION = OpSignature(
    "mbconv", 15, 13, 24, 24, expansion=4, kernel=2, groups=2, se_ratio=0.25, act="hswish"
)
VARIETY = [
    OpSignature("stem", 32, 32, 3, 16, stride=2, kernel=3, act="hswish"),
    OpSignature("stem", 31, 29, 1, 8, stride=2, kernel=4, act="relu"),
    OpSignature("stem", 28, 28, 1, 8, stride=1, kernel=1, act="relu6"),
    EVERY_OPTION,
    OpSignature(
        "mbconv",
        15,
        13,
        32,
        48,
        stride=2,
        expansion=3,
        kernel=2,
        groups=4,
        se_ratio=0.25,
        act="relu",
    ),
    OpSignature("mbconv", 16, 16, 16, 24, stride=2, expansion=1, kernel=3, act="relu6"),
    OpSignature(
        "mbconv", 9, 9, 24, 24, expansion=1, kernel=5, groups=2, se_ratio=0.25, act="swish"
    ),
    OpSignature("mbconv", 9, 7, 40, 40, expansion=6, kernel=7, se_ratio=0.5, act="swish"),
    OpSignature("head", 7, 5, 48, 96, act="hswish"),
    OpSignature("pool", 7, 5, 96, 96),
    OpSignature("fc", 1, 1, 96, 128, act="swish"),
    OpSignature("classifier", 1, 1, 128, 10),
]


# ---- the description itself --------------------------------------------------------------


def test_a_block_with_every_option_lists_every_layer_in_execution_order() -> None:
    assert op_layers(EVERY_OPTION) == (
        Conv("pointwise", 24, 96, 15, 13, groups=2, act="hswish"),
        ChannelShuffle(2, 96, 15, 13),
        ZeroPad(2, 15, 13, 96),
        Conv("depthwise", 96, 96, 15, 13, kernel=2, stride=1, groups=96, act="hswish"),
        SqueezeExcite(96, 24, 15, 13),
        Conv("pointwise", 96, 24, 15, 13, groups=2),
        ShortcutAdd(24, 15, 13),
    )


def test_the_plainest_block_is_a_depthwise_and_a_projection() -> None:
    sig = OpSignature("mbconv", 15, 13, 16, 24, stride=2, expansion=1, kernel=3, act="relu")
    assert op_layers(sig) == (
        Conv("depthwise", 16, 16, 15, 13, kernel=3, stride=2, groups=16, act="relu"),
        Conv("pointwise", 16, 24, 8, 7),
    )


def test_an_overridden_middle_width_runs_through_every_layer_and_the_squeeze() -> None:
    sig = OpSignature("mbconv", 14, 14, 40, 40, expansion=3, kernel=5, se_ratio=0.25, act="relu")
    assert op_layers(sig)[2].squeeze == sig.block.se_channels(sig.in_c) == 32
    expand, depthwise, se, project, add = op_layers(sig, mid=100)
    assert (expand.out_c, depthwise.in_c, depthwise.groups, project.in_c) == (100, 100, 100, 100)
    assert (se.channels, se.squeeze) == (100, 24)  # make_divisible(100 * 0.25)
    assert add == ShortcutAdd(40, 14, 14)
    assert op_layers(VARIETY[0], mid=100) == op_layers(VARIETY[0])  # only blocks have a middle


def test_stem_head_and_the_vector_operators() -> None:
    assert op_layers(VARIETY[1]) == (
        ZeroPad(4, 31, 29, 1),
        Conv("full", 1, 8, 31, 29, kernel=4, stride=2, act="relu"),
    )
    assert op_layers(VARIETY[8]) == (Conv("pointwise", 48, 96, 7, 5, act="hswish"),)
    assert op_layers(VARIETY[9]) == (GlobalPool(96, 7, 5),)
    # Dropout belongs to the classifier alone, as the network trains it.
    assert op_layers(VARIETY[10], dropout=0.3) == (Linear(96, 128, act="swish"),)
    assert op_layers(VARIETY[11], dropout=0.3) == (Linear(128, 10, dropout=0.3),)


@pytest.mark.parametrize("kernel, before, after", [(2, 0, 1), (4, 1, 2), (6, 2, 3)])
def test_even_kernels_pad_the_extra_row_and_column_at_the_bottom_right(
    kernel: int, before: int, after: int
) -> None:
    pad = ZeroPad(kernel, 9, 8, 3)
    assert (pad.before, pad.after) == (before, after)
    assert pad.outputs == (9 + kernel - 1) * (8 + kernel - 1) * 3
    for stride in (1, 2):
        conv = Conv("full", 3, 4, 9, 8, kernel=kernel, stride=stride)
        assert conv.padding == 0
        assert (conv.out_h, conv.out_w) == (math.ceil(9 / stride), math.ceil(8 / stride))


def test_unknown_kinds_are_refused_by_the_description_and_the_cost_model() -> None:
    odd = OpSignature("conv3d", 8, 8, 8, 8)
    with pytest.raises(ValueError, match="unknown operator kind 'conv3d'"):
        op_layers(odd)
    with pytest.raises(ValueError, match="unknown operator kind"):
        build_op(odd)
    with pytest.raises(InputError, match="cannot price operator kind 'conv3d'"):
        op_work(odd)


# ---- the built module, layer by layer ------------------------------------------------------


def _units(layers: tuple[Layer, ...]) -> list[tuple[Layer, ...]]:
    """Layers grouped as the builder nests them: a zero pad with the conv it pads."""
    units: list[tuple[Layer, ...]] = []
    pending: tuple[Layer, ...] = ()
    for layer in layers:
        if isinstance(layer, ZeroPad):
            pending = (layer,)
        elif not isinstance(layer, ShortcutAdd):
            units.append((*pending, layer))
            pending = ()
    return units


def _shapes(module: nn.Module, x: torch.Tensor) -> tuple[list[torch.Size], list[torch.Size]]:
    """Input and output shape of every direct part of `module` (or of `module` itself)."""
    inputs: list[torch.Size] = []
    outputs: list[torch.Size] = []

    def record(_: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        inputs.append(args[0].shape[1:])
        outputs.append(out.shape[1:])

    parts = list(module.layers) if hasattr(module, "layers") else [module]
    hooks = [part.register_forward_hook(record) for part in parts]
    with torch.no_grad():
        module.eval()(x)
    for hook in hooks:
        hook.remove()
    return inputs, outputs


def _input(sig: OpSignature) -> torch.Tensor:
    if sig.kind in ("fc", "classifier"):
        return torch.randn(1, sig.in_c)
    return torch.randn(1, sig.in_c, sig.in_h, sig.in_w)


@pytest.mark.parametrize("sig", VARIETY, ids=str)
def test_every_layer_has_the_shapes_of_its_built_module(sig: OpSignature) -> None:
    module = build_op(sig, dropout=0.3)
    layers = op_layers(sig, dropout=0.3)
    units = _units(layers)
    parts = list(module.layers) if hasattr(module, "layers") else [module]
    inputs, outputs = _shapes(module, _input(sig))
    assert len(parts) == len(units) == len(inputs)
    for part, unit, shape_in, shape_out in zip(parts, units, inputs, outputs):
        layer = unit[-1]
        if isinstance(layer, Conv):
            conv = part[len(unit) - 1]
            assert isinstance(conv, nn.Conv2d)
            assert (
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size,
                conv.stride,
                conv.groups,
                conv.padding,
            ) == (
                layer.in_c,
                layer.out_c,
                (layer.kernel,) * 2,
                (layer.stride,) * 2,
                layer.groups,
                (layer.padding,) * 2,
            )
            assert isinstance(part[len(unit)], nn.BatchNorm2d) == layer.bn
            assert tuple(shape_in) == (layer.in_c, layer.in_h, layer.in_w)
            assert tuple(shape_out) == (layer.out_c, layer.out_h, layer.out_w)
            if len(unit) == 2:
                pad = unit[0]
                assert part[0].padding == (pad.before, pad.after, pad.before, pad.after)
        elif isinstance(layer, (ChannelShuffle, SqueezeExcite)):
            assert shape_in == shape_out == (layer.channels, layer.height, layer.width)
            if isinstance(layer, SqueezeExcite):
                assert part.reduce.out_channels == part.expand.in_channels == layer.squeeze
        elif isinstance(layer, GlobalPool):
            assert tuple(shape_in) == (layer.channels, layer.height, layer.width)
            assert tuple(shape_out) == (layer.channels,)
        else:
            assert isinstance(layer, Linear)
            assert tuple(shape_in) == (layer.in_c,) and tuple(shape_out) == (layer.out_c,)
            dropout = [m.p for m in part if isinstance(m, nn.Dropout)]
            assert dropout == ([layer.dropout] if layer.dropout else [])
    assert getattr(module, "use_shortcut", False) == any(
        isinstance(layer, ShortcutAdd) for layer in layers
    )


@pytest.mark.parametrize("sig", VARIETY, ids=str)
def test_each_layer_counts_what_its_built_module_holds_and_computes(sig: OpSignature) -> None:
    module = build_op(sig).eval()
    parts = list(module.layers) if hasattr(module, "layers") else [module]
    inputs, _ = _shapes(module, _input(sig))
    for part, unit, shape_in in zip(parts, _units(op_layers(sig)), inputs):
        assert sum(p.numel() for p in part.parameters()) == sum(map(layer_params, unit))
        assert module_macs(part, tuple(shape_in)) == sum(map(layer_macs, unit))
    assert op_params(sig) == sum(p.numel() for p in module.parameters())
    assert op_macs(sig) == module_macs(module, tuple(_input(sig).shape[1:]))


@pytest.mark.parametrize("sig", VARIETY, ids=str)
def test_feature_map_bytes_are_the_tensors_each_layer_reads_and_writes(sig: OpSignature) -> None:
    values = 0  # the layers' shapes are held to the module above; here the per-kind rule is
    for layer in op_layers(sig):
        if isinstance(layer, (Conv, ZeroPad)):
            values += layer.inputs + layer.outputs
        elif isinstance(layer, GlobalPool):
            values += layer.inputs + layer.channels
        elif isinstance(layer, Linear):
            values += layer.in_c + layer.out_c
        else:  # a shuffle copies (read, write); SE pools, then gates (read, read, write)
            values += {ChannelShuffle: 2, SqueezeExcite: 3, ShortcutAdd: 3}[type(layer)] * (
                layer.elements
            )
    assert feature_map_bytes(sig) == 4 * values


@pytest.mark.parametrize("sig", VARIETY, ids=str)
def test_cost_model_work_is_the_sum_of_its_layers(sig: OpSignature) -> None:
    layers = op_layers(sig)
    work = op_work(sig)
    copies = sum(isinstance(layer, (ZeroPad, ChannelShuffle)) for layer in layers)
    assert work["operator"] == 1 + copies
    convs = [layer for layer in layers if isinstance(layer, Conv)]
    conv_macs = sum(
        work.get(name, 0.0)
        for name in ("full_conv_macs", "pointwise_macs", "depthwise_s1_macs", "depthwise_s2_macs")
    )
    assert conv_macs == sum(layer_macs(conv) for conv in convs)
    assert conv_macs + work.get("linear_weight_bytes", 0.0) / 4 == op_macs(sig)
    moved = sum(
        layer.inputs + layer.outputs for layer in layers if isinstance(layer, (Conv, ZeroPad))
    )
    moved += sum(2 * layer.elements for layer in layers if isinstance(layer, ChannelShuffle))
    assert work.get("activation_bytes", 0.0) == 4 * moved
    gated = sum(layer.elements for layer in layers if isinstance(layer, SqueezeExcite))
    assert work.get("se_elements", 0.0) == gated
    costly = [
        layer
        for layer in layers
        if isinstance(layer, (Conv, Linear)) and layer.act in ("hswish", "swish")
    ]
    assert work.get("hswish_elements", 0.0) == sum(
        layer.outputs if isinstance(layer, Conv) else layer.out_c for layer in costly
    )


def test_cost_model_prices_the_overridden_middle_width() -> None:
    sig = OpSignature("mbconv", 14, 14, 40, 40, expansion=3, kernel=5, se_ratio=0.25, act="relu")
    work = op_work(sig, mid=100)
    assert work["depthwise_s1_macs"] == 14 * 14 * 100 * 25
    assert work["linear_weight_bytes"] == 4 * 2 * 100 * 24


# ---- saved weights keep loading -----------------------------------------------------------


def test_parameter_names_are_those_earlier_versions_saved() -> None:
    arch = Arch.from_string("stem_c16_k4_s2_hs:mb_e4_k2_s1_c16_g2_se0.25_hs:head_c32_f64_hs_d0.2")
    names = [name for name, _ in build_model(arch, (3, 32, 32), 10).named_parameters()]
    assert names == [
        "features.0.1.weight",
        "features.0.2.weight",
        "features.0.2.bias",
        "features.1.layers.0.0.weight",
        "features.1.layers.0.1.weight",
        "features.1.layers.0.1.bias",
        "features.1.layers.2.1.weight",
        "features.1.layers.2.2.weight",
        "features.1.layers.2.2.bias",
        "features.1.layers.3.reduce.weight",
        "features.1.layers.3.reduce.bias",
        "features.1.layers.3.expand.weight",
        "features.1.layers.3.expand.bias",
        "features.1.layers.4.0.weight",
        "features.1.layers.4.1.weight",
        "features.1.layers.4.1.bias",
        "features.2.0.weight",
        "features.2.1.weight",
        "features.2.1.bias",
        "classifier.0.0.weight",
        "classifier.0.0.bias",
        "classifier.1.1.weight",
        "classifier.1.1.bias",
    ]
