"""The skip block: a layer a search may leave out.

Where shapes match (stride 1, same width) it is the identity and costs nothing; where they do not
it is the cheapest layer that can change them, a 1x1 convolution with batch norm at the block's
stride, as in ResNet's projection shortcuts and NAS-Bench-Macro's identity choice. Arch-string
token ``skip``: ``s`` stride, ``c`` output channels, e.g. ``skip_s2_c64``; it has no activation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.search_spaces.kinds import BlockKind, BlockSpec, Param, register_block_kind
from nas.search_spaces.layers import Conv, Layer
from nas.search_spaces.limits import check_channels
from nas.search_spaces.notation import check

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

SKIP = "skip"


@dataclass(frozen=True)
class SkipBlock(BlockSpec):
    """The identity, or a 1x1 projection with batch norm where stride or width change."""

    stride: int
    out_channels: int

    def __post_init__(self) -> None:
        check(self.stride in (1, 2), f"skip stride must be 1 or 2, got {self.stride!r}")
        check(
            isinstance(self.out_channels, int) and self.out_channels > 0,
            f"skip out_channels must be a positive integer, got {self.out_channels!r}",
        )
        check_channels("skip out_channels", self.out_channels)

    def is_identity(self, in_channels: int) -> bool:
        return self.stride == 1 and in_channels == self.out_channels


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    """No layer at all for the identity (which `arch_signatures` leaves out); the projection
    otherwise."""
    if sig.stride == 1 and sig.in_c == sig.out_c:
        return ()
    return (Conv("pointwise", sig.in_c, sig.out_c, sig.in_h, sig.in_w, stride=sig.stride),)


SKIP_KIND = register_block_kind(
    BlockKind(
        name=SKIP,
        token="skip",
        block=SkipBlock,
        params=(Param("s", "stride", int), Param("c", "out_channels", int)),
        layers=layers,
    )
)
