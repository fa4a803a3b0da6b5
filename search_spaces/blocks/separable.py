"""The depthwise-separable convolution of MobileNetV1: depthwise k x k, then pointwise 1x1, each
followed by batch norm and the activation, with no shortcut.

It differs from an expansion-1 MBConv block in the activation after the 1x1 convolution (MBConv's
projection is linear) and in having no shortcut. Arch-string token ``ds``: ``k`` kernel, ``s``
stride, ``c`` output channels, then the activation, e.g. ``ds_k3_s2_c128_re``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.search_spaces.kinds import (
    ACTIVATION_CHOICE,
    KERNEL_CHOICE,
    BlockKind,
    BlockSpec,
    Param,
    register_block_kind,
)
from nas.search_spaces.layers import Conv, Layer, same
from nas.search_spaces.limits import check_channels
from nas.search_spaces.notation import ACTIVATIONS, MAX_KERNEL, MIN_KERNEL, check

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

SEPARABLE = "separable"


def check_common(name: str, kernel: int, stride: int, out_channels: int, act: str) -> None:
    """The checks every convolutional block kind shares: kernel, stride, width, activation."""
    check(
        isinstance(kernel, int) and MIN_KERNEL <= kernel <= MAX_KERNEL,
        f"{name} kernel must be an integer from {MIN_KERNEL} to {MAX_KERNEL}, got {kernel!r}",
    )
    check(stride in (1, 2), f"{name} stride must be 1 or 2, got {stride!r}")
    check(
        isinstance(out_channels, int) and out_channels > 0,
        f"{name} out_channels must be a positive integer, got {out_channels!r}",
    )
    check_channels(f"{name} out_channels", out_channels)
    check(act in ACTIVATIONS, f"{name} act must be one of {', '.join(ACTIVATIONS)}, got {act!r}")


@dataclass(frozen=True)
class SeparableBlock(BlockSpec):
    """Depthwise k x k with stride, then a 1x1 convolution to the output width."""

    kernel: int
    stride: int
    out_channels: int
    act: str = "relu"

    def __post_init__(self) -> None:
        check_common("separable", self.kernel, self.stride, self.out_channels, self.act)


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    """Depthwise then pointwise, both with batch norm and the activation (no middle width)."""
    return (
        *same(
            Conv(
                "depthwise",
                sig.in_c,
                sig.in_c,
                sig.in_h,
                sig.in_w,
                sig.kernel,
                sig.stride,
                groups=sig.in_c,
                act=sig.act,
            )
        ),
        Conv("pointwise", sig.in_c, sig.out_c, sig.out_h, sig.out_w, act=sig.act),
    )


SEPARABLE_KIND = register_block_kind(
    BlockKind(
        name=SEPARABLE,
        token="ds",
        block=SeparableBlock,
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
