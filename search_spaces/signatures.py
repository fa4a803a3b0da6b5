"""Operator signatures: an architecture at a given input, cut into separately priced operators.

The torch builder assembles a network from these signatures and the latency tables key on them,
and both get them from `arch_signatures`: so a table entry always describes exactly the module
that runs, and the two can never disagree about shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.errors import InputError
from nas.search_spaces.arch import Arch, Head, Stem
from nas.search_spaces.kinds import BlockSpec, block_kind, is_block_kind
from nas.search_spaces.notation import ACTIVATIONS, out_size

InputShape = tuple[int, int, int]
"""(channels, height, width) of the network input."""

DEPLOY_INPUT: InputShape = (3, 224, 224)
DEPLOY_CLASSES = 1000


@dataclass(frozen=True)
class OpSignature:
    """One priced operator: its kind plus every shape and choice that changes its cost.

    Kinds: ``stem`` (k x k conv + BN + act), ``head`` (1x1 conv + BN + act), ``pool`` (global
    average pooling), ``fc`` (linear + act on the pooled vector), ``classifier`` (the final
    linear layer), ``conv_classifier`` (the final layer as a 1x1 conv + bias + act before the
    pooling, as SqueezeNet has it), and every registered block kind (`nas.search_spaces.kinds`;
    ``mbconv`` is a whole inverted-residual block, including its shortcut). The named fields
    are the choices mobile blocks share; a block kind's other parameters travel in ``extra`` as
    sorted (name, value) pairs, and so do a stem's ``padding`` and ``bn`` where they are not
    the defaults. A ``padding`` there decides the output size (`out_size`).
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
        return out_size(self.in_h, self.kernel, self.stride, self.padding)

    @property
    def out_w(self) -> int:
        return out_size(self.in_w, self.kernel, self.stride, self.padding)

    @property
    def padding(self) -> str:
        """How the operator's window meets the border (`nas.search_spaces.notation.PADDINGS`)."""
        return self.extra_value("padding", "same")

    def extra_value(self, name: str, default: Any) -> Any:
        """One of ``extra`` by name, `default` where it is not there."""
        for key, value in self.extra:
            if key == name:
                return value
        return default

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
            if not self.extra_value("bn", True):
                parts.append("bn0")
            if self.padding != "same":
                parts.append(f"p{self.padding}")
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


def stem_signature(stem: Stem, input_shape: InputShape) -> OpSignature:
    """The signature of `stem` on an input of `input_shape`."""
    channels, height, width = input_shape
    extra = (("bn", False),) if not stem.bn else ()
    extra += (("padding", stem.padding),) if stem.padding != "same" else ()
    return OpSignature(
        "stem",
        height,
        width,
        channels,
        stem.channels,
        stride=stem.stride,
        kernel=stem.kernel,
        act=stem.act,
        extra=extra,
    )


def arch_signatures(
    arch: Arch, input_shape: InputShape = DEPLOY_INPUT, num_classes: int = DEPLOY_CLASSES
) -> list[OpSignature]:
    """Every operator of `arch` at `input_shape`, in execution order.

    An input so small that an unpadded window leaves nothing of it is an `InputError`.
    """
    ops = [_leaves_pixels(stem_signature(arch.stem, input_shape), input_shape)]
    height, width, channels = ops[-1].out_h, ops[-1].out_w, arch.stem.channels
    for block in arch.blocks:
        if block.is_identity(channels):
            continue  # nothing runs: nothing to build, count or price
        ops.append(_leaves_pixels(block_signature(block, height, width, channels), input_shape))
        height, width, channels = ops[-1].out_h, ops[-1].out_w, block.out_channels
    return ops + head_signatures(arch.head, height, width, channels, num_classes)


def _leaves_pixels(sig: OpSignature, input_shape: InputShape) -> OpSignature:
    if min(sig.out_h, sig.out_w) < 1:
        raise InputError(
            f"a {input_shape[1]}x{input_shape[2]} input is too small for this architecture: "
            f"its operator {sig.key} leaves no pixels of its {sig.in_h}x{sig.in_w} input; "
            f"use a larger input"
        )
    return sig


def head_signatures(
    head: Head, height: int, width: int, channels: int, num_classes: int
) -> list[OpSignature]:
    """The operators after the last block, which receives `channels` at `height` x `width`."""
    ops = []
    if head.conv_channels:
        ops.append(OpSignature("head", height, width, channels, head.conv_channels, act=head.act))
        channels = head.conv_channels
    if head.classifier == "conv":
        classify = OpSignature(
            "conv_classifier", height, width, channels, num_classes, act=head.act
        )
        return [*ops, classify, OpSignature("pool", height, width, num_classes, num_classes)]
    ops.append(OpSignature("pool", height, width, channels, channels))
    if head.fc_channels:
        ops.append(OpSignature("fc", 1, 1, channels, head.fc_channels, act=head.act))
        channels = head.fc_channels
    ops.append(OpSignature("classifier", 1, 1, channels, num_classes))
    return ops
