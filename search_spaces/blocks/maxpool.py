"""Max pooling as a block: the k x k, stride-2 pooling ShuffleNet puts after its stem, and the
pooling SqueezeNet puts between its Fire modules.

It keeps the width (its output channels must equal its input's) and has no weights and no
activation. Arch-string token ``mp``: ``k`` kernel (odd), ``s`` stride, ``c`` channels, and
``p`` padding where it is not ``same`` (`nas.search_spaces.notation.PADDINGS`), e.g.
``mp_k3_s2_c24`` or SqueezeNet's ``mp_k3_s2_c96_pceil``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.search_spaces.kinds import BlockKind, BlockSpec, Choice, Param, register_block_kind
from nas.search_spaces.layers import Layer, Pool
from nas.search_spaces.limits import check_channels
from nas.search_spaces.notation import MAX_KERNEL, PADDINGS, check

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

MAXPOOL = "maxpool"


@dataclass(frozen=True)
class MaxPoolBlock(BlockSpec):
    """k x k max pooling at a stride, "same" padding unless `padding` says otherwise."""

    kernel: int
    stride: int
    out_channels: int
    padding: str = "same"

    def __post_init__(self) -> None:
        check(
            isinstance(self.kernel, int) and 1 <= self.kernel <= MAX_KERNEL and self.kernel % 2,
            f"maxpool kernel must be an odd integer from 1 to {MAX_KERNEL}, got {self.kernel!r}",
        )
        check(self.stride in (1, 2), f"maxpool stride must be 1 or 2, got {self.stride!r}")
        check(
            isinstance(self.out_channels, int) and self.out_channels > 0,
            f"maxpool out_channels must be a positive integer, got {self.out_channels!r}",
        )
        check(
            self.padding in PADDINGS,
            f"maxpool padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}",
        )
        check_channels("maxpool out_channels", self.out_channels)

    def check_input(self, in_channels: int, where: str) -> None:
        check(
            in_channels == self.out_channels,
            f"{where}: max pooling keeps the width, but it receives {in_channels} channels "
            f"and names {self.out_channels}",
        )

    def is_identity(self, in_channels: int) -> bool:
        return self.kernel == 1 and self.stride == 1


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    return (Pool("max", sig.kernel, sig.stride, sig.in_c, sig.in_h, sig.in_w, sig.padding),)


MAXPOOL_KIND = register_block_kind(
    BlockKind(
        name=MAXPOOL,
        token="mp",
        block=MaxPoolBlock,
        params=(
            Param("k", "kernel", int),
            Param("s", "stride", int),
            Param("c", "out_channels", int),
            Param("p", "padding", str, "same", keyed_at_default=False),
        ),
        layers=layers,
        choices=(
            Choice("kernel", int, lambda k: isinstance(k, int) and 1 <= k <= MAX_KERNEL and k % 2),
        ),
    )
)
