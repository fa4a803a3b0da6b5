"""The kinds of work inside an operator, and the shape each occurrence has.

A table entry prices a whole operator (a stem, a block), but how far its price can be trusted
depends on what the operator is made of: a depthwise convolution that the data behind the table
timed at these sizes, or a channel split that nothing ever timed. So each operator is cut into
the layers it is built from (`nas.search_spaces.ops.op_layers`), and each layer is named by a
kind a person recognises, with the shape that changes its cost: the feature-map side it works
at, its channels, and its kernel and stride where it has them. `nas.evaluators.latency.evidence`
compares these with the shapes the table's data covered.
"""

from __future__ import annotations

from dataclasses import dataclass

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

KINDS: tuple[str, ...] = (
    "conv kxk",
    "grouped conv kxk",
    "pointwise",
    "grouped pointwise",
    "depthwise",
    "dilated depthwise",
    "zero pad",
    "squeeze-excite",
    "relu",
    "relu6",
    "hswish",
    "swish",
    "shortcut add",
    "batch norm",
    "channel shuffle",
    "channel split",
    "concat",
    "slice",
    "max pool",
    "avg pool",
    "channel max",
    "channel mean",
    "global pool",
    "linear",
)
"""Every kind, in the order reports list them: convolutions, then what runs beside them.

Every element-wise sum of two feature maps is a ``shortcut add`` (the same work, whether the
input comes back or ESPNetV2's branches are fused); ``batch norm`` is one that follows a merge
and so cannot fold into a convolution."""


@dataclass(frozen=True)
class KindUse:
    """One occurrence of a kind inside one operator, with the shape that changes its cost."""

    kind: str
    side: int
    """The larger side of the feature map it reads (1 for a layer on the pooled vector)."""
    channels: int
    """The channels it reads (a concatenation: the channels it writes)."""
    kernel: int | None = None
    stride: int | None = None
    out_channels: int | None = None
    """The channels it writes, where they can differ from those it reads (convolutions,
    linear layers)."""


def kind_uses(sig: OpSignature) -> tuple[KindUse, ...]:
    """The kinds `sig` is made of, one use per layer (an activation is a use of its own)."""
    uses: list[KindUse] = []
    for layer in op_layers(sig):
        _layer(uses, layer)
    return tuple(uses)


def _layer(uses: list[KindUse], layer: Layer) -> None:
    if isinstance(layer, Conv):
        _conv(uses, layer)
    elif isinstance(layer, ZeroPad):
        side = max(layer.height, layer.width)
        uses.append(KindUse("zero pad", side, layer.channels, kernel=layer.kernel))
    elif isinstance(layer, ChannelShuffle):
        side = max(layer.height, layer.width)
        uses.append(KindUse("channel shuffle", side, layer.channels))
    elif isinstance(layer, SqueezeExcite):
        uses.append(KindUse("squeeze-excite", max(layer.height, layer.width), layer.channels))
    elif isinstance(layer, Linear):
        uses.append(KindUse("linear", 1, layer.in_c, out_channels=layer.out_c))
        _activation(uses, layer.act, 1, layer.out_c)
    elif isinstance(layer, GlobalPool):
        uses.append(KindUse("global pool", max(layer.height, layer.width), layer.channels))
    elif isinstance(layer, ShortcutAdd):
        uses.append(KindUse("shortcut add", max(layer.height, layer.width), layer.channels))
    elif isinstance(layer, Pool):
        side = max(layer.height, layer.width)
        uses.append(KindUse(f"{layer.mode} pool", side, layer.channels, layer.kernel, layer.stride))
    elif isinstance(layer, ChannelAggregate):
        side = max(layer.height, layer.width)
        uses.append(KindUse(f"channel {layer.mode}", side, layer.channels * layer.ratio))
    elif isinstance(layer, Branches):
        _branches(uses, layer)
    else:
        raise TypeError(f"no operator kind for layer {layer!r}")


def _conv(uses: list[KindUse], conv: Conv) -> None:
    if conv.kind == "depthwise":
        kind = "dilated depthwise" if conv.dilation > 1 else "depthwise"
    elif conv.kind == "pointwise":
        kind = "grouped pointwise" if conv.groups > 1 else "pointwise"
    else:
        kind = "grouped conv kxk" if conv.groups > 1 else "conv kxk"
    side = max(conv.in_h, conv.in_w)
    uses.append(KindUse(kind, side, conv.in_c, conv.kernel, conv.stride, conv.out_c))
    _activation(uses, conv.act, max(conv.out_h, conv.out_w), conv.out_c)


def _activation(uses: list[KindUse], act: str, side: int, channels: int) -> None:
    if act:
        uses.append(KindUse(act, side, channels))


def _branches(uses: list[KindUse], layer: Branches) -> None:
    side = max(layer.height, layer.width)
    if layer.split:
        uses.append(KindUse("channel split", side, layer.in_c))
    for path in layer.paths:
        for inner in path:
            _layer(uses, inner)
    out_side = max(layer.out_h, layer.out_w)
    if layer.merge == "add":
        uses.append(KindUse("shortcut add", out_side, layer.out_c))
    else:
        concatenated = layer.concatenated // (layer.out_h * layer.out_w)
        if layer.merge == "hierarchical":  # every path's output summed with those before it
            width = concatenated // len(layer.paths)
            uses += [KindUse("shortcut add", out_side, width)] * (len(layer.paths) - 1)
        uses.append(KindUse("concat", out_side, concatenated))
        if layer.sliced:
            uses.append(KindUse("slice", out_side, concatenated))
    if layer.bn:
        uses.append(KindUse("batch norm", out_side, layer.out_c))
    _activation(uses, layer.act, out_side, layer.out_c)
