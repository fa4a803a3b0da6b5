"""Operator signatures: an architecture at a given input, cut into separately priced operators.

The torch builder assembles a network from these signatures and the latency tables key on them,
and both get them from `arch_signatures`: so a table entry always describes exactly the module
that runs, and the two can never disagree about shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nas.search_spaces.arch import ACTIVATIONS, Arch, Block, Head, _format_number, make_divisible

InputShape = tuple[int, int, int]
"""(channels, height, width) of the network input."""

DEPLOY_INPUT: InputShape = (3, 224, 224)
DEPLOY_CLASSES = 1000


@dataclass(frozen=True)
class OpSignature:
    """One priced operator: its kind plus every shape and choice that changes its cost.

    Kinds: ``stem`` (k x k conv + BN + act), ``mbconv`` (a whole inverted-residual block,
    including its shortcut), ``head`` (1x1 conv + BN + act), ``pool`` (global average pooling),
    ``fc`` (linear + act on the pooled vector), ``classifier`` (the final linear layer).
    """

    kind: str
    in_h: int
    in_w: int
    in_c: int
    out_c: int
    stride: int = 1
    expansion: float = 1.0
    kernel: int = 1
    groups: int = 1
    se_ratio: float = 0.0
    act: str = ""

    @property
    def out_h(self) -> int:
        return math.ceil(self.in_h / self.stride)

    @property
    def out_w(self) -> int:
        return math.ceil(self.in_w / self.stride)

    @property
    def block(self) -> Block:
        """The `Block` an ``mbconv`` signature stands for."""
        if self.kind != "mbconv":
            raise ValueError(f"a {self.kind} signature is not a block")
        return Block(
            expansion=self.expansion,
            kernel=self.kernel,
            stride=self.stride,
            out_channels=self.out_c,
            groups=self.groups,
            se_ratio=self.se_ratio,
            act=self.act,
        )

    @property
    def mid_c(self) -> int:
        """Expanded (depthwise) channels of an ``mbconv``; the input channels otherwise."""
        if self.kind != "mbconv" or self.expansion == 1.0:
            return self.in_c
        return make_divisible(self.in_c * self.expansion)

    @property
    def key(self) -> str:
        """Stable text key, e.g. ``mbconv:56x56x24>40:e3:k5:s2:g1:se0.25:hs``."""
        parts = [self.kind, f"{self.in_h}x{self.in_w}x{self.in_c}>{self.out_c}"]
        if self.kind in ("stem", "mbconv"):
            parts += [f"k{self.kernel}", f"s{self.stride}"]
        if self.kind == "mbconv":
            parts[2:2] = [f"e{_format_number(self.expansion)}"]
            parts += [f"g{self.groups}", f"se{_format_number(self.se_ratio)}"]
        if self.act:
            parts.append(ACTIVATIONS[self.act])
        return ":".join(parts)

    def __str__(self) -> str:
        return self.key


def arch_signatures(
    arch: Arch, input_shape: InputShape = DEPLOY_INPUT, num_classes: int = DEPLOY_CLASSES
) -> list[OpSignature]:
    """Every operator of `arch` at `input_shape`, in execution order."""
    channels, height, width = input_shape
    stem = arch.stem
    ops = [
        OpSignature(
            "stem",
            height,
            width,
            channels,
            stem.channels,
            stride=stem.stride,
            kernel=stem.kernel,
            act=stem.act,
        )
    ]
    height, width, channels = ops[-1].out_h, ops[-1].out_w, stem.channels
    for block in arch.blocks:
        ops.append(
            OpSignature(
                "mbconv",
                height,
                width,
                channels,
                block.out_channels,
                stride=block.stride,
                expansion=block.expansion,
                kernel=block.kernel,
                groups=block.groups,
                se_ratio=block.se_ratio,
                act=block.act,
            )
        )
        height, width, channels = ops[-1].out_h, ops[-1].out_w, block.out_channels
    return ops + head_signatures(arch.head, height, width, channels, num_classes)


def head_signatures(
    head: Head, height: int, width: int, channels: int, num_classes: int
) -> list[OpSignature]:
    """The operators after the last block, which receives `channels` at `height` x `width`."""
    ops = []
    if head.conv_channels:
        ops.append(OpSignature("head", height, width, channels, head.conv_channels, act=head.act))
        channels = head.conv_channels
    ops.append(OpSignature("pool", height, width, channels, channels))
    if head.fc_channels:
        ops.append(OpSignature("fc", 1, 1, channels, head.fc_channels, act=head.act))
        channels = head.fc_channels
    ops.append(OpSignature("classifier", 1, 1, channels, num_classes))
    return ops
