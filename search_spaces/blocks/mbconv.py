"""The inverted-residual block (MBConv) of MobileNetV2/V3 and MnasNet, with ShuffleNet's
grouped pointwise convolutions and channel shuffle as an option.

Arch-string token ``mb``: ``e`` expansion ratio, ``k`` kernel, ``s`` stride, ``c`` output
channels, ``g`` pointwise groups (omitted when 1), ``se`` squeeze-and-excitation ratio (omitted
when 0), then the activation, e.g. ``mb_e6_k5_s2_c40_g2_se0.25_hs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas.search_spaces.kinds import (
    ACTIVATION_CHOICE,
    KERNEL_CHOICE,
    BlockKind,
    BlockSpec,
    Choice,
    Param,
    register_block_kind,
)
from nas.search_spaces.layers import ChannelShuffle, Conv, Layer, ShortcutAdd, SqueezeExcite, same
from nas.search_spaces.limits import check_channels, check_expansion
from nas.search_spaces.notation import (
    ACTIVATIONS,
    MAX_KERNEL,
    MIN_KERNEL,
    check,
    make_divisible,
)

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

MBCONV = "mbconv"
"""The operator kind of these blocks in signatures and latency-table keys."""


@dataclass(frozen=True)
class Block(BlockSpec):
    """One inverted-residual (MBConv) block.

    1x1 expansion to ``make_divisible(cin * expansion)`` channels (omitted when expansion is 1),
    depthwise k x k with stride, optional squeeze-and-excitation, 1x1 linear projection, and an
    identity shortcut when the stride is 1 and channels match. With ``groups > 1`` both 1x1
    convolutions are grouped and a channel shuffle mixes the groups before the depthwise conv,
    as in ShuffleNet.
    """

    expansion: float
    kernel: int
    stride: int
    out_channels: int
    groups: int = 1
    se_ratio: float = 0.0
    act: str = "relu"

    def __post_init__(self) -> None:
        check(
            isinstance(self.expansion, (int, float))
            and math.isfinite(self.expansion)
            and self.expansion > 0,
            f"block expansion must be a positive number, got {self.expansion!r}",
        )
        check(
            isinstance(self.kernel, int) and MIN_KERNEL <= self.kernel <= MAX_KERNEL,
            f"block kernel must be an integer from {MIN_KERNEL} to {MAX_KERNEL}, got {self.kernel!r}",
        )
        check(self.stride in (1, 2), f"block stride must be 1 or 2, got {self.stride!r}")
        check(
            isinstance(self.out_channels, int) and self.out_channels > 0,
            f"block out_channels must be a positive integer, got {self.out_channels!r}",
        )
        check_channels("block out_channels", self.out_channels)
        check_expansion(self.expansion)
        check(
            _power_of_two(self.groups),
            f"block groups must be a power of two (1, 2, 4, ...), got {self.groups!r}",
        )
        check(
            isinstance(self.se_ratio, (int, float)) and 0 <= self.se_ratio < 1,
            f"block se_ratio must be in [0, 1), got {self.se_ratio!r}",
        )
        check(
            self.act in ACTIVATIONS,
            f"block act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}",
        )
        # Canonical float types keep hashing and JSON round trips exact (6 == 6.0 already).
        object.__setattr__(self, "expansion", float(self.expansion))
        object.__setattr__(self, "se_ratio", float(self.se_ratio))

    def mid_channels(self, in_channels: int) -> int:
        """Channels after the expansion (the depthwise width)."""
        if self.expansion == 1.0:
            return in_channels
        return make_divisible(in_channels * self.expansion)

    def se_channels(self, in_channels: int) -> int:
        """Squeeze width of the SE module: a share of the expanded channels, as in MobileNetV3."""
        if not self.se_ratio:
            return 0
        return make_divisible(self.mid_channels(in_channels) * self.se_ratio)

    def has_shortcut(self, in_channels: int) -> bool:
        return self.stride == 1 and in_channels == self.out_channels

    def check_input(self, in_channels: int, where: str) -> None:
        mid = self.mid_channels(in_channels)
        check_channels(f"{where}: expanded channels", mid)
        for name, channels in (
            ("input", in_channels),
            ("expanded", mid),
            ("output", self.out_channels),
        ):
            check(
                channels % self.groups == 0,
                f"{where}: {name} channels {channels} are not divisible by groups={self.groups}",
            )


def _power_of_two(groups: Any) -> bool:
    return isinstance(groups, int) and groups >= 1 and groups & (groups - 1) == 0


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    """The block's layers; the squeeze width follows `mid` when it is overridden."""
    block = sig.block
    assert isinstance(block, Block)
    mid = block.mid_channels(sig.in_c) if mid is None else mid
    result: list[Layer] = []
    if block.expansion != 1.0:
        result += same(
            Conv("pointwise", sig.in_c, mid, sig.in_h, sig.in_w, groups=block.groups, act=block.act)
        )
    if block.groups > 1:
        result.append(ChannelShuffle(block.groups, mid, sig.in_h, sig.in_w))
    result += same(
        Conv(
            "depthwise",
            mid,
            mid,
            sig.in_h,
            sig.in_w,
            block.kernel,
            block.stride,
            groups=mid,
            act=block.act,
        )
    )
    if block.se_ratio:
        result.append(
            SqueezeExcite(mid, make_divisible(mid * block.se_ratio), sig.out_h, sig.out_w)
        )
    result += same(Conv("pointwise", mid, sig.out_c, sig.out_h, sig.out_w, groups=block.groups))
    if block.has_shortcut(sig.in_c):
        result.append(ShortcutAdd(sig.out_c, sig.out_h, sig.out_w))
    return tuple(result)


def check_stage(
    choices: dict[str, tuple], in_widths: tuple[int, ...], widths: tuple[int, ...]
) -> tuple[str, str] | None:
    """Grouped 1x1 convs need every width a block can see, and every expanded width, divisible
    by its groups."""
    for groups in choices["groups"]:
        for width in (*in_widths, *widths):
            expanded = [Block(e, 3, 1, width).mid_channels(width) for e in choices["expansion"]]
            for channels in (width, *expanded):
                if channels % groups:
                    return "groups", f"option {groups} does not divide {channels} channels"
    return None


MBCONV_KIND = register_block_kind(
    BlockKind(
        name=MBCONV,
        token="mb",
        block=Block,
        params=(
            Param("e", "expansion", float),
            Param("k", "kernel", int),
            Param("s", "stride", int),
            Param("c", "out_channels", int),
            Param("g", "groups", int, 1),
            Param("se", "se_ratio", float, 0.0),
        ),
        layers=layers,
        choices=(
            Choice("expansion", float, lambda e: e > 0, "low", check_expansion),
            KERNEL_CHOICE,
            Choice("groups", int, _power_of_two, "high"),
            Choice("se_ratio", float, lambda r: 0 <= r < 1, "low"),
            ACTIVATION_CHOICE,
        ),
        check_stage=check_stage,
    )
)
