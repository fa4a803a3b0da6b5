"""The ShuffleNetV2 unit (Ma et al. 2018), as torchvision's `shufflenet_v2_x*` builds it.

Where the shape is kept (stride 1, same width) the input is split in two halves along channels:
one passes through untouched, the other goes through 1x1 + BN + act, depthwise k x k + BN, 1x1
+ BN + act; the halves are concatenated and a channel shuffle with two groups mixes them.
Where the shape changes (stride 2, or a new width) both branches read the whole input: one is
depthwise k x k + BN then 1x1 + BN + act, the other the three layers above, each giving half of
the output channels. Arch-string token ``sv2``: ``k`` kernel, ``s`` stride, ``c`` output
channels (even), then the activation, e.g. ``sv2_k3_s2_c116_re``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.search_spaces.blocks.separable import check_common
from nas.search_spaces.kinds import (
    ACTIVATION_CHOICE,
    KERNEL_CHOICE,
    BlockKind,
    BlockSpec,
    Param,
    register_block_kind,
)
from nas.search_spaces.layers import Branches, ChannelShuffle, Conv, Layer, same
from nas.search_spaces.notation import check

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

SHUFFLEV2 = "shufflev2"


@dataclass(frozen=True)
class ShuffleV2Block(BlockSpec):
    """One ShuffleNetV2 unit; half of its output channels come from each branch."""

    kernel: int
    stride: int
    out_channels: int
    act: str = "relu"

    def __post_init__(self) -> None:
        check_common("shufflev2", self.kernel, self.stride, self.out_channels, self.act)
        check(
            self.out_channels % 2 == 0,
            f"shufflev2 out_channels must be even (half come from each branch), "
            f"got {self.out_channels}",
        )


def _depthwise(
    channels: int, height: int, width: int, kernel: int, stride: int
) -> tuple[Layer, ...]:
    return same(
        Conv("depthwise", channels, channels, height, width, kernel, stride, groups=channels)
    )


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    """The split form where the shape is kept, the two-branch form where it changes."""
    half = sig.out_c // 2
    h, w, oh, ow = sig.in_h, sig.in_w, sig.out_h, sig.out_w
    split = sig.stride == 1 and sig.in_c == sig.out_c
    main_in = half if split else sig.in_c
    main = (
        Conv("pointwise", main_in, half, h, w, act=sig.act),
        *_depthwise(half, h, w, sig.kernel, sig.stride),
        Conv("pointwise", half, half, oh, ow, act=sig.act),
    )
    if split:
        paths: tuple[tuple[Layer, ...], ...] = ((), main)
    else:
        side = (
            *_depthwise(sig.in_c, h, w, sig.kernel, sig.stride),
            Conv("pointwise", sig.in_c, half, oh, ow, act=sig.act),
        )
        paths = (side, main)
    return (
        Branches(paths, sig.in_c, h, w, sig.out_c, oh, ow, split=(half, half) if split else ()),
        ChannelShuffle(2, sig.out_c, oh, ow),
    )


SHUFFLEV2_KIND = register_block_kind(
    BlockKind(
        name=SHUFFLEV2,
        token="sv2",
        block=ShuffleV2Block,
        params=(
            Param("k", "kernel", int),
            Param("s", "stride", int),
            Param("c", "out_channels", int),
        ),
        layers=layers,
        choices=(
            KERNEL_CHOICE,
            ACTIVATION_CHOICE,
        ),
    )
)
