"""The ShuffleNetV1 unit (Zhang et al. 2018), as megvii's ShuffleNet-Series builds it.

A grouped 1x1 convolution to a quarter of the output width with the activation, a channel
shuffle across the groups, a depthwise k x k + BN (with the stride), a grouped 1x1 + BN, then
the input merged back and the activation applied: added where the shape is kept (stride 1),
concatenated after a 3x3 stride-2 average pooling where it halves (the branch then makes only
the channels the input lacks). Arch-string token ``sv1``: ``k`` kernel, ``s`` stride, ``c``
output channels, ``g`` groups of the 1x1 convolutions, ``gi`` groups of the first one where it
differs (ShuffleNetV1 leaves the network's first unit's ungrouped: ``gi1``), then the
activation, e.g. ``sv1_k3_s2_c240_g3_gi1_re``.
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
    Choice,
    Param,
    register_block_kind,
)
from nas.search_spaces.layers import Branches, ChannelShuffle, Conv, Layer, Pool, same
from nas.search_spaces.notation import check

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

SHUFFLEV1 = "shufflev1"
BOTTLENECK = 4
"""The middle width is the output width over this (ShuffleNetV1's bottleneck ratio 1/4)."""
SHORTCUT_POOL = 3
"""Kernel of the average pooling on the strided unit's shortcut."""


@dataclass(frozen=True)
class ShuffleV1Block(BlockSpec):
    """One ShuffleNetV1 unit."""

    kernel: int
    stride: int
    out_channels: int
    groups: int
    first_groups: int = 0
    act: str = "relu"

    def __post_init__(self) -> None:
        check_common("shufflev1", self.kernel, self.stride, self.out_channels, self.act)
        for name, value, least in (
            ("groups", self.groups, 1),
            ("first_groups", self.first_groups, 0),
        ):
            check(
                isinstance(value, int) and value >= least,
                f"shufflev1 {name} must be an integer of at least {least}, got {value!r}",
            )

    @property
    def mid(self) -> int:
        return self.out_channels // BOTTLENECK

    @property
    def expand_groups(self) -> int:
        """Groups of the first 1x1 convolution."""
        return self.first_groups or self.groups

    def branch_channels(self, in_channels: int) -> int:
        """What the branch makes: everything, or where it halves, what the input lacks."""
        return self.out_channels - in_channels if self.stride == 2 else self.out_channels

    def check_input(self, in_channels: int, where: str) -> None:
        if self.stride == 1:
            check(
                in_channels == self.out_channels,
                f"{where}: a stride-1 ShuffleNetV1 unit adds its input, so it needs "
                f"{self.out_channels} input channels, not {in_channels}",
            )
        else:
            check(
                self.out_channels > in_channels,
                f"{where}: a stride-2 ShuffleNetV1 unit concatenates its pooled input, so its "
                f"{self.out_channels} output channels must exceed its {in_channels} input channels",
            )
        for name, channels, groups in (
            ("input", in_channels, self.expand_groups),
            ("middle", self.mid, self.expand_groups),
            ("middle", self.mid, self.groups),
            ("branch output", self.branch_channels(in_channels), self.groups),
        ):
            check(
                channels > 0 and channels % groups == 0,
                f"{where}: {name} channels {channels} are not divisible by {groups} groups",
            )


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    block = sig.block
    assert isinstance(block, ShuffleV1Block)
    mid = block.mid if mid is None else mid
    h, w, oh, ow = sig.in_h, sig.in_w, sig.out_h, sig.out_w
    branch: list[Layer] = [
        Conv("pointwise", sig.in_c, mid, h, w, groups=block.expand_groups, act=sig.act)
    ]
    if block.groups > 1:
        branch.append(ChannelShuffle(block.groups, mid, h, w))
    branch += same(Conv("depthwise", mid, mid, h, w, sig.kernel, sig.stride, groups=mid))
    out = block.branch_channels(sig.in_c)
    branch.append(Conv("pointwise", mid, out, oh, ow, groups=block.groups))
    if sig.stride == 1:
        shortcut: tuple[Layer, ...] = ()
        merge = "add"
    else:
        shortcut = (Pool("avg", SHORTCUT_POOL, 2, sig.in_c, h, w),)
        merge = "concat"
    return (
        Branches(
            (shortcut, tuple(branch)), sig.in_c, h, w, sig.out_c, oh, ow, merge=merge, act=sig.act
        ),
    )


SHUFFLEV1_KIND = register_block_kind(
    BlockKind(
        name=SHUFFLEV1,
        token="sv1",
        block=ShuffleV1Block,
        params=(
            Param("k", "kernel", int),
            Param("s", "stride", int),
            Param("c", "out_channels", int),
            Param("g", "groups", int),
            Param("gi", "first_groups", int, 0),
        ),
        layers=layers,
        choices=(
            KERNEL_CHOICE,
            Choice("groups", int, lambda g: isinstance(g, int) and g >= 1, "high"),
            ACTIVATION_CHOICE,
        ),
    )
)
