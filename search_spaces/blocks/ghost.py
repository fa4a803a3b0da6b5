"""The Ghost bottleneck of GhostNet (Han et al. 2020), as huawei-noah's ghostnet.pytorch and
timm's `ghostnet_*` build it.

A Ghost module makes half of its output channels with a 1x1 convolution (the primary features)
and the other half from those with a cheap depthwise 3x3 (the "ghosts"), concatenated and cut to
the output width. The bottleneck is a Ghost module with the activation up to the middle width,
a depthwise k x k + BN where it strides, optional squeeze-and-excitation, and a Ghost module
without activation down to the output width; the shortcut is the identity where the shape is
kept, else depthwise k x k + BN and 1x1 + BN. Arch-string token ``gb``: ``e`` expansion (middle
width ``make_divisible(cin * e, 4)``, GhostNet's rounding), ``k`` kernel, ``s`` stride, ``c``
output channels, ``se`` squeeze-and-excitation ratio (omitted when 0), then the activation,
e.g. ``gb_e3_k5_s2_c40_se0.25_re``.
"""

from __future__ import annotations

import math
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
from nas.search_spaces.layers import (
    Branches,
    Conv,
    Layer,
    ShortcutAdd,
    SqueezeExcite,
    same,
)
from nas.search_spaces.limits import check_channels, check_expansion
from nas.search_spaces.notation import check, make_divisible

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

GHOST = "ghost"
DIVISOR = 4
"""GhostNet rounds its middle and squeeze widths to multiples of 4 (MBConv: 8)."""
CHEAP_KERNEL = 3
"""The cheap operation's depthwise kernel (GhostNet's d = 3; its ratio s = 2 is fixed too)."""


@dataclass(frozen=True)
class GhostBlock(BlockSpec):
    """One Ghost bottleneck."""

    expansion: float
    kernel: int
    stride: int
    out_channels: int
    se_ratio: float = 0.0
    act: str = "relu"

    def __post_init__(self) -> None:
        check(
            isinstance(self.expansion, (int, float))
            and math.isfinite(self.expansion)
            and self.expansion > 0,
            f"ghost expansion must be a positive number, got {self.expansion!r}",
        )
        check_expansion(self.expansion)
        check_common("ghost", self.kernel, self.stride, self.out_channels, self.act)
        check(
            isinstance(self.se_ratio, (int, float)) and 0 <= self.se_ratio < 1,
            f"ghost se_ratio must be in [0, 1), got {self.se_ratio!r}",
        )
        object.__setattr__(self, "expansion", float(self.expansion))
        object.__setattr__(self, "se_ratio", float(self.se_ratio))

    def mid_channels(self, in_channels: int) -> int:
        """The middle width: the first Ghost module's output."""
        if self.expansion == 1.0:
            return in_channels
        return make_divisible(in_channels * self.expansion, DIVISOR)

    def check_input(self, in_channels: int, where: str) -> None:
        check_channels(f"{where}: middle channels", self.mid_channels(in_channels))


def ghost_module(in_c: int, out_c: int, height: int, width: int, act: str) -> tuple[Layer, ...]:
    """Primary 1x1 to ceil(out/2) channels, then the cheap depthwise 3x3 of those beside them."""
    primary = math.ceil(out_c / 2)
    cheap = Conv(
        "depthwise", primary, primary, height, width, CHEAP_KERNEL, groups=primary, act=act
    )
    return (
        Conv("pointwise", in_c, primary, height, width, act=act),
        Branches(((), (cheap,)), primary, height, width, out_c, height, width),
    )


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    block = sig.block
    assert isinstance(block, GhostBlock)
    mid = block.mid_channels(sig.in_c) if mid is None else mid
    h, w, oh, ow = sig.in_h, sig.in_w, sig.out_h, sig.out_w
    main: list[Layer] = list(ghost_module(sig.in_c, mid, h, w, sig.act))
    if sig.stride > 1:
        main += same(Conv("depthwise", mid, mid, h, w, sig.kernel, sig.stride, groups=mid))
    if block.se_ratio:
        main.append(SqueezeExcite(mid, make_divisible(mid * block.se_ratio, DIVISOR), oh, ow))
    main += ghost_module(mid, sig.out_c, oh, ow, "")
    if sig.stride == 1 and sig.in_c == sig.out_c:
        return (*main, ShortcutAdd(sig.out_c, oh, ow))
    shortcut = (
        *same(Conv("depthwise", sig.in_c, sig.in_c, h, w, sig.kernel, sig.stride, groups=sig.in_c)),
        Conv("pointwise", sig.in_c, sig.out_c, oh, ow),
    )
    return (Branches((tuple(main), shortcut), sig.in_c, h, w, sig.out_c, oh, ow, merge="add"),)


GHOST_KIND = register_block_kind(
    BlockKind(
        name=GHOST,
        token="gb",
        block=GhostBlock,
        params=(
            Param("e", "expansion", float),
            Param("k", "kernel", int),
            Param("s", "stride", int),
            Param("c", "out_channels", int),
            Param("se", "se_ratio", float, 0.0),
        ),
        layers=layers,
        choices=(
            Choice("expansion", float, lambda e: e > 0, "low", check_expansion),
            KERNEL_CHOICE,
            Choice("se_ratio", float, lambda r: 0 <= r < 1, "low"),
            ACTIVATION_CHOICE,
        ),
    )
)
