"""What an architecture holds at an input: its parameters, multiply-adds and the feature maps
it writes, and the limits on them.

Both are sums over the layers of its operators (`nas.search_spaces.ops.op_layers`), computed
from the genotype alone in about a millisecond, so they can run before every build: a mistake
is one clear line rather than gigabytes allocated. The tests hold the parameter count equal to
the built model's.
"""

from __future__ import annotations

from nas.errors import InputError
from nas.search_spaces import layers
from nas.search_spaces.arch import Arch
from nas.search_spaces.limits import (
    MAX_ACTIVATION_BYTES,
    MAX_PARAMS,
    check_input,
    limit_name,
)
from nas.search_spaces.ops import op_layers
from nas.search_spaces.signatures import InputShape, OpSignature, arch_signatures


def check_arch_fits(arch: Arch, input_shape: InputShape, num_classes: int) -> None:
    """`arch` at `input_shape` with `num_classes` within the parameter and memory limits."""
    check_input(input_shape)
    if num_classes < 1:
        raise InputError(f"the number of classes must be positive, got {num_classes}")
    where = "x".join(map(str, input_shape)) + f" with {num_classes:,} classes"
    sigs = arch_signatures(arch, input_shape, num_classes)
    params = sum(op_params(sig) for sig in sigs)
    if params > MAX_PARAMS:
        raise InputError(
            f"the architecture has {params:,} parameters at {where}, over the limit of "
            f"{MAX_PARAMS:,} ({limit_name('MAX_PARAMS')}): use narrower or fewer layers, or "
            f"fewer classes"
        )
    activation = 4 * sum(activation_values(sig) for sig in sigs)
    if activation > MAX_ACTIVATION_BYTES:
        raise InputError(
            f"the architecture writes {activation / 2**30:,.1f} GiB of activations per image "
            f"at {where}, over the limit of {MAX_ACTIVATION_BYTES / 2**30:g} GiB "
            f"({limit_name('MAX_ACTIVATION_BYTES')}): use a smaller input or narrower layers"
        )


def count_params(
    arch: Arch, input_shape: InputShape = (3, 224, 224), num_classes: int = 1000
) -> int:
    """Trainable parameters, computed from the genotype alone (no model is built).

    Cheap enough for the search to reject a candidate over a parameter budget before building
    it.
    """
    return sum(op_params(sig) for sig in arch_signatures(arch, input_shape, num_classes))


def op_params(sig: OpSignature) -> int:
    return sum(layer_params(layer) for layer in op_layers(sig))


def layer_params(layer: layers.Layer) -> int:
    if isinstance(layer, layers.Conv):
        return _conv_params(layer)
    if isinstance(layer, layers.SqueezeExcite):
        return _conv_params(layer.reduce) + _conv_params(layer.expand)
    if isinstance(layer, layers.Linear):
        return layer.in_c * layer.out_c + layer.out_c
    if isinstance(layer, layers.Branches):
        paths = sum(layer_params(inner) for path in layer.paths for inner in path)
        return paths + (2 * layer.out_c if layer.bn else 0)  # the merge's batch norm
    if isinstance(layer, _WITHOUT_WEIGHTS):
        return 0
    raise TypeError(f"no parameter count for layer {layer!r}")


_WITHOUT_WEIGHTS = (
    layers.ZeroPad,
    layers.ChannelShuffle,
    layers.GlobalPool,
    layers.ShortcutAdd,
    layers.Pool,
    layers.ChannelAggregate,
)
"""Layers that hold no parameters and whose work is copies or element-wise, counted by neither."""


def _conv_params(conv: layers.Conv) -> int:
    total = conv.in_c // conv.groups * conv.out_c * conv.kernel * conv.kernel
    if conv.bias:
        total += conv.out_c
    if conv.bn:
        total += 2 * conv.out_c  # scale and shift; the running statistics are buffers
    return total


def op_macs(sig: OpSignature) -> int:
    """Multiply-adds of one operator (see `nas.evaluators.flops` for what is counted)."""
    return sum(layer_macs(layer) for layer in op_layers(sig))


def layer_macs(layer: layers.Layer) -> int:
    if isinstance(layer, layers.Conv):
        return _conv_macs(layer)
    if isinstance(layer, layers.SqueezeExcite):
        return _conv_macs(layer.reduce) + _conv_macs(layer.expand)
    if isinstance(layer, layers.Linear):
        return layer.in_c * layer.out_c
    if isinstance(layer, layers.Branches):
        return sum(layer_macs(inner) for path in layer.paths for inner in path)
    if isinstance(layer, _WITHOUT_WEIGHTS):
        return 0  # element-wise work and copies, not counted
    raise TypeError(f"no multiply-add count for layer {layer!r}")


def _conv_macs(conv: layers.Conv) -> int:
    return conv.outputs * conv.in_c * conv.kernel * conv.kernel // conv.groups


def activation_values(sig: OpSignature) -> int:
    """Values of the feature maps one operator writes, layer by layer, for one image."""
    return sum(_written(layer) for layer in op_layers(sig))


def _written(layer: layers.Layer) -> int:
    """Values one layer writes; a branched layer writes its paths', its split's, its merge's
    (a hierarchical merge's sums too) and its batch norm's."""
    if isinstance(layer, (layers.Conv, layers.ZeroPad, layers.Pool, layers.ChannelAggregate)):
        return layer.outputs
    if isinstance(layer, (layers.ChannelShuffle, layers.SqueezeExcite, layers.ShortcutAdd)):
        return layer.elements
    if isinstance(layer, layers.GlobalPool):
        return layer.channels
    if isinstance(layer, layers.Linear):
        return layer.out_c
    if isinstance(layer, layers.Branches):
        total = sum(_written(inner) for path in layer.paths for inner in path)
        total += layer.inputs if layer.split else 0
        total += layer.outputs if layer.bn else 0
        if layer.merge == "add":
            return total + layer.outputs
        return total + layer.fused + layer.concatenated + (layer.outputs if layer.sliced else 0)
    raise TypeError(f"no activation count for layer {layer!r}")
