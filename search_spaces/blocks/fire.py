"""The Fire module of SqueezeNet (Iandola et al. 2016), as torchvision builds it.

A 1x1 "squeeze" convolution to a few channels, then two "expand" convolutions side by side on
its output, a 1x1 and a 3x3, each making half of the output channels, concatenated. Every
convolution has a bias and is followed by the activation; there is no batch norm, as in
SqueezeNet. Arch-string token ``fire``: ``q`` squeeze channels, ``c`` output channels (even),
``s`` stride (1: SqueezeNet strides with max pooling between its Fire modules), then the
activation, e.g. ``fire_q16_c128_re``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.search_spaces.kinds import (
    ACTIVATION_CHOICE,
    BlockKind,
    BlockSpec,
    Choice,
    Param,
    register_block_kind,
)
from nas.search_spaces.layers import Branches, Conv, Layer
from nas.search_spaces.limits import check_channels
from nas.search_spaces.notation import ACTIVATIONS, check

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

FIRE = "fire"
EXPAND_KERNEL = 3


@dataclass(frozen=True)
class FireBlock(BlockSpec):
    """One Fire module: squeeze to ``squeeze`` channels, expand to ``out_channels``."""

    squeeze: int
    out_channels: int
    stride: int = 1
    act: str = "relu"

    def __post_init__(self) -> None:
        check(
            isinstance(self.squeeze, int) and self.squeeze > 0,
            f"fire squeeze must be a positive integer, got {self.squeeze!r}",
        )
        check(
            isinstance(self.out_channels, int) and self.out_channels > 0,
            f"fire out_channels must be a positive integer, got {self.out_channels!r}",
        )
        check(
            self.out_channels % 2 == 0,
            f"fire out_channels must be even (half from each expand), got {self.out_channels}",
        )
        check(self.stride == 1, f"fire stride must be 1 (pool to stride), got {self.stride!r}")
        check(self.act in ACTIVATIONS, f"fire act must be one of {', '.join(ACTIVATIONS)}")
        check_channels("fire squeeze", self.squeeze)
        check_channels("fire out_channels", self.out_channels)


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    block = sig.block
    assert isinstance(block, FireBlock)
    squeeze = block.squeeze if mid is None else mid
    half, h, w, act = sig.out_c // 2, sig.in_h, sig.in_w, sig.act
    expand_1 = Conv("pointwise", squeeze, half, h, w, bn=False, bias=True, act=act)
    expand_3 = Conv("full", squeeze, half, h, w, EXPAND_KERNEL, bn=False, bias=True, act=act)
    return (
        Conv("pointwise", sig.in_c, squeeze, h, w, bn=False, bias=True, act=act),
        Branches(((expand_1,), (expand_3,)), squeeze, h, w, sig.out_c, h, w),
    )


FIRE_KIND = register_block_kind(
    BlockKind(
        name=FIRE,
        token="fire",
        block=FireBlock,
        params=(
            Param("q", "squeeze", int),
            Param("c", "out_channels", int),
            Param("s", "stride", int, 1),
        ),
        layers=layers,
        choices=(
            Choice("squeeze", int, lambda q: isinstance(q, int) and q > 0, "low"),
            ACTIVATION_CHOICE,
        ),
    )
)
