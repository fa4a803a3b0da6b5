"""ESPNetV2's EESP unit (Mehta et al. 2019), as the authors' ``sacmehta/ESPNetv2`` builds it.

Reduce, split and transform, merge: a 1x1 convolution in ``b`` groups (+ BN + act) reduces the
input to n = c / b channels; ``b`` depthwise 3x3 convolutions on that, side by side, with
dilation rates growing 1, 2, 3, ... until the receptive field limit ``r`` (a branch whose
3 + 2i would pass it falls back to rate 1; the rates are sorted, as the reference sorts them)
and neither batch norm nor activation; hierarchical feature fusion (each branch's output added
to the sum of those before it) and the sums concatenated, then BN + act; a 1x1 convolution in
``b`` groups + BN back over all c channels. Where the shape is kept the input is added and the
activation follows the sum; at stride 1 with a new width the activation follows directly.

The stride-2 form is the reference's down-sampler without its input reinforcement (a second
path from the network's image, which a chain of blocks cannot reach): a 3x3 stride-2 average
pooling of the input concatenated before a strided unit that makes the channels the input
lacks, then the activation. The reference's PReLU is not among the activations `nas` offers;
the unit takes any of them (ReLU by default).

Arch-string token ``eesp``: ``b`` branches (4, ESPNetV2's choice everywhere, when omitted),
``r`` receptive field limit (odd, 3 to 17: ESPNetV2 uses 13, 11, 9, 7, 5 from its first
level to its last), ``s`` stride, ``c`` output channels, then the activation, e.g.
``eesp_r7_s1_c128_re`` or ``eesp_b2_r13_s2_c64_hs``.
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
from nas.search_spaces.layers import Branches, Conv, Layer, Pool
from nas.search_spaces.limits import check_channels
from nas.search_spaces.notation import ACTIVATIONS, check, out_size

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

EESP = "eesp"
KERNEL = 3
"""Every branch is a depthwise 3x3; the receptive field grows by dilation alone."""
MAX_BRANCHES = 8
MIN_RF, MAX_RF = 3, 17
"""Receptive field limits the reference maps to dilation rates (3x3 at rates 1 to 8)."""
SHORTCUT_POOL = 3
"""Kernel of the average pooling on the stride-2 form's shortcut."""


def _valid_branches(branches: object) -> bool:
    return isinstance(branches, int) and 1 <= branches <= MAX_BRANCHES


def _valid_rf(rf_limit: object) -> bool:
    return isinstance(rf_limit, int) and MIN_RF <= rf_limit <= MAX_RF and rf_limit % 2 == 1


def dilations(branches: int, rf_limit: int) -> tuple[int, ...]:
    """The branches' dilation rates, in the reference's order: the i-th branch would see
    3 + 2i pixels, or 3 where that passes `rf_limit`; sorted by what they see."""
    sizes = sorted(size if size <= rf_limit else KERNEL for size in range(3, 3 + 2 * branches, 2))
    return tuple((size - 1) // 2 for size in sizes)


@dataclass(frozen=True)
class EESPBlock(BlockSpec):
    """One EESP unit, or at stride 2 the down-sampler built around one."""

    rf_limit: int
    stride: int
    out_channels: int
    branches: int = 4
    act: str = "relu"

    def __post_init__(self) -> None:
        check(
            _valid_branches(self.branches),
            f"eesp branches must be an integer from 1 to {MAX_BRANCHES}, got {self.branches!r}",
        )
        check(
            _valid_rf(self.rf_limit),
            f"eesp rf_limit must be an odd integer from {MIN_RF} to {MAX_RF}, "
            f"got {self.rf_limit!r}",
        )
        check(self.stride in (1, 2), f"eesp stride must be 1 or 2, got {self.stride!r}")
        check(
            isinstance(self.out_channels, int) and self.out_channels > 0,
            f"eesp out_channels must be a positive integer, got {self.out_channels!r}",
        )
        check_channels("eesp out_channels", self.out_channels)
        check(
            self.act in ACTIVATIONS,
            f"eesp act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}",
        )

    def unit_channels(self, in_channels: int) -> int:
        """What the EESP unit makes: everything, or at stride 2 what the pooled input lacks."""
        return self.out_channels - in_channels if self.stride == 2 else self.out_channels

    def check_input(self, in_channels: int, where: str) -> None:
        if self.stride == 2:
            check(
                self.out_channels > in_channels,
                f"{where}: a stride-2 EESP unit concatenates its pooled input, so its "
                f"{self.out_channels} output channels must exceed its {in_channels} input channels",
            )
        made = self.unit_channels(in_channels)
        # The reducing 1x1 runs in one group per branch, on the input and to the reduced width.
        for name, channels in (
            ("input", in_channels),
            ("unit", made),
            ("reduced", made // self.branches),
        ):
            check(
                channels > 0 and channels % self.branches == 0,
                f"{where}: {name} channels {channels} are not divisible by "
                f"{self.branches} branches",
            )


def unit(
    in_c: int, out_c: int, height: int, width: int, stride: int, block: EESPBlock, act: str
) -> tuple[Layer, ...]:
    """Reduce, split and transform, fuse, expand: the unit up to its shortcut, with `act` on
    its last convolution (empty where a shortcut comes first)."""
    branches = block.branches
    reduced = out_c // branches
    out_h, out_w = out_size(height, KERNEL, stride), out_size(width, KERNEL, stride)
    paths = tuple(
        (
            Conv(
                "depthwise",
                reduced,
                reduced,
                height,
                width,
                KERNEL,
                stride,
                groups=reduced,
                bn=False,
                dilation=rate,
            ),
        )
        for rate in dilations(branches, block.rf_limit)
    )
    return (
        Conv("pointwise", in_c, reduced, height, width, groups=branches, act=block.act),
        Branches(
            paths,
            reduced,
            height,
            width,
            out_c,
            out_h,
            out_w,
            merge="hierarchical",
            act=block.act,
            bn=True,
        ),
        Conv("pointwise", out_c, out_c, out_h, out_w, groups=branches, act=act),
    )


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    """The unit with its shortcut: added where the shape is kept, pooled and concatenated where
    it halves. `mid` does not apply (the reduced width follows from the output and branches)."""
    block = sig.block
    assert isinstance(block, EESPBlock)
    h, w, oh, ow = sig.in_h, sig.in_w, sig.out_h, sig.out_w
    if sig.stride == 2:
        made = unit(sig.in_c, block.unit_channels(sig.in_c), h, w, 2, block, "")
        pooled = (Pool("avg", SHORTCUT_POOL, 2, sig.in_c, h, w),)
        return (Branches((pooled, made), sig.in_c, h, w, sig.out_c, oh, ow, act=sig.act),)
    if sig.in_c != sig.out_c:
        return unit(sig.in_c, sig.out_c, h, w, 1, block, sig.act)
    main = unit(sig.in_c, sig.out_c, h, w, 1, block, "")
    return (Branches((main, ()), sig.in_c, h, w, sig.out_c, oh, ow, merge="add", act=sig.act),)


EESP_KIND = register_block_kind(
    BlockKind(
        name=EESP,
        token="eesp",
        block=EESPBlock,
        params=(
            Param("b", "branches", int, 4),
            Param("r", "rf_limit", int),
            Param("s", "stride", int),
            Param("c", "out_channels", int),
        ),
        layers=layers,
        choices=(
            # More branches make narrower, more grouped 1x1 convolutions: fewer multiply-adds.
            Choice("branches", int, _valid_branches, "high"),
            # The receptive field changes the dilation, not the work.
            Choice("rf_limit", int, _valid_rf, None),
            ACTIVATION_CHOICE,
        ),
    )
)
