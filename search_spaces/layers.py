"""The layers an operator is made of: plain data that building, counting and pricing share.

The torch builder, the parameter and multiply-add counts, the latency tables' feature-map bytes
and the cost model's work terms all need the anatomy of an operator (which convolutions, in what
order, at which widths and resolutions, which paths run side by side, where a pad, a shuffle, a
split or a concatenation copies a tensor). Each block kind describes its anatomy in these layers
(`nas.search_spaces.ops.op_layers`), and each of those consumers is a sum or a map over them that
only decides what it counts per kind of layer: so a new block kind made of these layers is
built, counted and priced with no other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nas.search_spaces.notation import out_size

ConvKind = Literal["full", "pointwise", "depthwise"]


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution, optionally followed by batch norm and activation.

    ``kind`` says how it mixes channels, since runtimes execute the three at very different
    speeds: ``full`` is the dense k x k convolution of the stem (whatever its kernel),
    ``pointwise`` a 1x1 over all or grouped channels, ``depthwise`` one k x k filter per channel.
    ``dilation`` spaces a depthwise filter's taps that many pixels apart (ESPNetV2's branches):
    the same multiply-adds over a wider window, which runtimes execute by another kernel, so
    the latency tables name it apart (an odd kernel only, padded to keep "same" sizes).
    ``pad`` is ``same`` (the output keeps the input's size divided by the stride) or ``valid``
    (no padding, as SqueezeNet's stem; see `nas.search_spaces.notation.PADDINGS`). ``dropout``
    is a classifier's training dropout on its input, which costs nothing at inference.
    """

    kind: ConvKind
    in_c: int
    out_c: int
    in_h: int
    in_w: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    bn: bool = True
    act: str = ""
    bias: bool = False
    pad: str = "same"
    dropout: float = 0.0
    dilation: int = 1

    def __post_init__(self) -> None:
        if self.dilation != 1 and (self.kernel % 2 == 0 or self.pad != "same"):
            raise ValueError(f"a dilated convolution needs an odd kernel and same padding: {self}")

    @property
    def out_h(self) -> int:
        return out_size(self.in_h, self.kernel, self.stride, self.pad)

    @property
    def out_w(self) -> int:
        return out_size(self.in_w, self.kernel, self.stride, self.pad)

    @property
    def padding(self) -> int:
        """Padding on every side that the convolution applies itself.

        An even kernel cannot be padded symmetrically, so it gets none here and a `ZeroPad`
        before it instead.
        """
        if self.pad != "same":
            return 0
        return self.dilation * (self.kernel // 2) if self.kernel % 2 else 0

    @property
    def inputs(self) -> int:
        """Elements of the input feature map."""
        return self.in_h * self.in_w * self.in_c

    @property
    def outputs(self) -> int:
        """Elements of the output feature map."""
        return self.out_h * self.out_w * self.out_c


@dataclass(frozen=True)
class ZeroPad:
    """The explicit zero padding in front of an even-kernel convolution.

    Like TensorFlow's "same" padding it puts the extra row and column on the right and bottom,
    so that even kernels keep the spatial size at stride 1 and halve it (rounding up) at
    stride 2, exactly like odd ones. It is a real copy of the tensor, which is why it is a layer.
    """

    kernel: int
    height: int
    width: int
    channels: int

    @property
    def before(self) -> int:
        """Rows (and columns) added at the top (and left)."""
        return (self.kernel - 1) // 2

    @property
    def after(self) -> int:
        """Rows (and columns) added at the bottom (and right)."""
        return self.kernel - 1 - self.before

    @property
    def inputs(self) -> int:
        return self.height * self.width * self.channels

    @property
    def outputs(self) -> int:
        """Elements of the padded tensor."""
        return (self.height + self.kernel - 1) * (self.width + self.kernel - 1) * self.channels


@dataclass(frozen=True)
class ChannelShuffle:
    """Interleaving channels across groups (ShuffleNet), so grouped 1x1 convs still mix them."""

    groups: int
    channels: int
    height: int
    width: int

    @property
    def elements(self) -> int:
        return self.height * self.width * self.channels


@dataclass(frozen=True)
class SqueezeExcite:
    """MobileNetV3 squeeze-and-excitation: pool, `reduce`, `expand`, hard-sigmoid gate, multiply.

    ``channels`` wide at ``height`` x ``width``, squeezed to ``squeeze`` channels in between.
    """

    channels: int
    squeeze: int
    height: int
    width: int

    @property
    def reduce(self) -> Conv:
        """The 1x1 convolution on the pooled vector down to the squeeze width."""
        return Conv("pointwise", self.channels, self.squeeze, 1, 1, bn=False, act="relu", bias=True)

    @property
    def expand(self) -> Conv:
        """The 1x1 convolution back to the full width, whose output the gate turns to scales."""
        return Conv("pointwise", self.squeeze, self.channels, 1, 1, bn=False, bias=True)

    @property
    def elements(self) -> int:
        """Elements of the tensor that is pooled and then gated."""
        return self.height * self.width * self.channels


@dataclass(frozen=True)
class GlobalPool:
    """Global average pooling of a feature map to one value per channel."""

    channels: int
    height: int
    width: int

    @property
    def inputs(self) -> int:
        return self.height * self.width * self.channels


@dataclass(frozen=True)
class Linear:
    """A fully connected layer (with bias) on the pooled vector, optional dropout before it."""

    in_c: int
    out_c: int
    act: str = ""
    dropout: float = 0.0


@dataclass(frozen=True)
class ShortcutAdd:
    """The identity shortcut: the operator's input added to the output of the layers before."""

    channels: int
    height: int
    width: int

    @property
    def elements(self) -> int:
        return self.height * self.width * self.channels


@dataclass(frozen=True)
class Pool:
    """A k x k max or average pooling (odd kernels): the max pooling after ShuffleNet's stem, the
    average pooling on ShuffleNetV1's strided shortcut (the padding counted in the average, as
    torch and ONNX do by default), SqueezeNet's max pooling between its Fire modules.

    ``pad`` is one of `nas.search_spaces.notation.PADDINGS`: ``same`` pads k // 2 on every side,
    ``valid`` and ``ceil`` pad nothing (``ceil`` is torch's ``ceil_mode``, as SqueezeNet pools).
    """

    mode: Literal["max", "avg"]
    kernel: int
    stride: int
    channels: int
    height: int
    width: int
    pad: str = "same"

    @property
    def out_h(self) -> int:
        return out_size(self.height, self.kernel, self.stride, self.pad)

    @property
    def out_w(self) -> int:
        return out_size(self.width, self.kernel, self.stride, self.pad)

    @property
    def padding(self) -> int:
        """Padding on every side that the pooling applies itself."""
        return self.kernel // 2 if self.pad == "same" else 0

    @property
    def inputs(self) -> int:
        return self.height * self.width * self.channels

    @property
    def outputs(self) -> int:
        return self.out_h * self.out_w * self.channels


@dataclass(frozen=True)
class ChannelAggregate:
    """A parameter-free reduction of every ``ratio`` neighbouring channels to one, by their
    maximum or mean: how the shuffle-only block reaches its output width without a dense 1x1.

    It reads ``channels * ratio`` channels and writes ``channels`` at ``height`` x ``width``.
    """

    mode: Literal["max", "mean"]
    ratio: int
    channels: int
    height: int
    width: int

    @property
    def inputs(self) -> int:
        return self.height * self.width * self.channels * self.ratio

    @property
    def outputs(self) -> int:
        return self.height * self.width * self.channels


@dataclass(frozen=True)
class Branches:
    """Paths that run side by side on one input and are merged: the branched blocks.

    ``paths`` are layer sequences, an empty one being the identity. With ``split`` the input is
    cut along channels into those widths, one part per path (ShuffleNetV2's channel split);
    without, every path reads the whole input. ``merge`` is ``concat`` (the paths' outputs
    stacked along channels, of which the first ``out_c`` are kept, as a Ghost module keeps
    them) or ``add`` (a residual whose shortcut is a path of its own); ``act`` follows the
    merge (ShuffleNetV1's ReLU after the sum). Splitting, concatenating
    and slicing compute nothing but copy tensors in a deployed graph, which is why the counts
    and prices see them.

    ``merge`` may also be ``hierarchical`` (ESPNetV2's hierarchical feature fusion): each path's
    output is added to the sum of those before it, and the running sums are concatenated, so
    the paths must write equal widths. ``bn`` is a batch norm on the merged output, before
    ``act``: it cannot fold into a convolution once the paths are summed, so it is a layer of
    its own in a deployed graph.
    """

    paths: tuple[tuple[Layer, ...], ...]
    in_c: int
    height: int
    width: int
    out_c: int
    out_h: int
    out_w: int
    split: tuple[int, ...] = ()
    merge: Literal["concat", "add", "hierarchical"] = "concat"
    act: str = ""
    bn: bool = False

    @property
    def inputs(self) -> int:
        """Elements of the input feature map (what a channel split copies)."""
        return self.height * self.width * self.in_c

    @property
    def outputs(self) -> int:
        """Elements of the merged output."""
        return self.out_h * self.out_w * self.out_c

    @property
    def concatenated(self) -> int:
        """Elements the paths write before a concatenation keeps the first ``out_c`` channels."""
        widths = self.split or (self.in_c,) * len(self.paths)
        channels = sum(out_channels(path, width) for path, width in zip(self.paths, widths))
        return self.out_h * self.out_w * channels

    @property
    def sliced(self) -> bool:
        """Whether a concatenation keeps fewer channels than its paths write."""
        return self.merge == "concat" and self.concatenated > self.outputs

    @property
    def fused(self) -> int:
        """Elements the sums of a ``hierarchical`` merge write (every path's but the first)."""
        if self.merge != "hierarchical":
            return 0
        return self.concatenated * (len(self.paths) - 1) // len(self.paths)


Layer = (
    Conv
    | ZeroPad
    | ChannelShuffle
    | SqueezeExcite
    | GlobalPool
    | Linear
    | ShortcutAdd
    | Pool
    | ChannelAggregate
    | Branches
)


def out_channels(path: tuple[Layer, ...], in_c: int) -> int:
    """Channels a sequence of block layers leaves, given the `in_c` it receives."""
    for layer in reversed(path):
        if isinstance(layer, (Conv, Branches, Linear)):
            return layer.out_c
        if isinstance(layer, ChannelAggregate):
            return layer.channels
    return in_c  # only shape-keeping layers (or none): the width it received


def same(conv: Conv) -> tuple[Layer, ...]:
    """`conv` with "same" padding: even kernels need an explicit pad in front."""
    if conv.kernel % 2:
        return (conv,)
    return ZeroPad(conv.kernel, conv.in_h, conv.in_w, conv.in_c), conv
