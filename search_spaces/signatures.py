"""Operator signatures: an architecture at a given input, cut into separately priced operators.

The torch builder assembles a network from these signatures and the latency tables key on them,
and both get them from `arch_signatures`: so a table entry always describes exactly the module
that runs, and the two can never disagree about shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nas.search_spaces.arch import Arch, Head
from nas.search_spaces.kinds import BlockSpec, block_kind, is_block_kind
from nas.search_spaces.notation import ACTIVATIONS

InputShape = tuple[int, int, int]
"""(channels, height, width) of the network input."""

DEPLOY_INPUT: InputShape = (3, 224, 224)
DEPLOY_CLASSES = 1000


@dataclass(frozen=True)
class OpSignature:
    """One priced operator: its kind plus every shape and choice that changes its cost.

    Kinds: ``stem`` (k x k conv + BN + act), ``head`` (1x1 conv + BN + act), ``pool`` (global
    average pooling), ``fc`` (linear + act on the pooled vector), ``classifier`` (the final
    linear layer), and every registered block kind (`nas.search_spaces.kinds`; ``mbconv`` is a
    whole inverted-residual block, including its shortcut). The named fields are the choices
    mobile blocks share; a block kind's other parameters travel in ``extra`` as sorted
    (name, value) pairs.
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
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def out_h(self) -> int:
        return math.ceil(self.in_h / self.stride)

    @property
    def out_w(self) -> int:
        return math.ceil(self.in_w / self.stride)

    def value(self, name: str) -> Any:
        """A block parameter by name, whether a named field or one of ``extra``."""
        for key, value in self.extra:
            if key == name:
                return value
        return getattr(self, name)

    @property
    def block(self) -> BlockSpec:
        """The block a block kind's signature stands for."""
        if not is_block_kind(self.kind):
            raise ValueError(f"a {self.kind} signature is not a block")
        kind = block_kind(self.kind)
        values = {name: self.value(name) for name in kind.signature_names}
        return kind.block(out_channels=self.out_c, **values)

    @property
    def key(self) -> str:
        """Stable text key, e.g. ``mbconv:56x56x24>40:e3:k5:s2:g1:se0.25:hs``."""
        parts = [self.kind, f"{self.in_h}x{self.in_w}x{self.in_c}>{self.out_c}"]
        if is_block_kind(self.kind):
            kind = block_kind(self.kind)
            values = {name: self.value(name) for name in kind.signature_names}
            return ":".join(parts + kind.key_parts(values))
        if self.kind == "stem":
            parts += [f"k{self.kernel}", f"s{self.stride}"]
        if self.act:
            parts.append(ACTIVATIONS[self.act])
        return ":".join(parts)

    def __str__(self) -> str:
        return self.key


_NAMED = ("stride", "expansion", "kernel", "groups", "se_ratio", "act")


def block_signature(block: BlockSpec, height: int, width: int, in_c: int) -> OpSignature:
    """The signature of `block` receiving `in_c` channels at `height` x `width`."""
    values = block.kind.signature_values(block)
    named = {name: value for name, value in values.items() if name in _NAMED}
    extra = tuple(sorted((name, v) for name, v in values.items() if name not in _NAMED))
    return OpSignature(
        block.kind.name, height, width, in_c, block.out_channels, **named, extra=extra
    )


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
        if block.is_identity(channels):
            continue  # nothing runs: nothing to build, count or price
        ops.append(block_signature(block, height, width, channels))
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
