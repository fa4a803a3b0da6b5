"""The shuffle-only block of the mobile-network survey (Hozak & Paliy 2024): no dense 1x1
convolution at all, only grouped convolutions with channel shuffles between them, and the
output width reached by a parameter-free aggregation over neighbouring channels.

``n`` grouped k x k convolutions (the first with the stride) widen the input to ``c * r``
channels, each followed by BN, the activation and a channel shuffle across its ``g`` groups, so
that every group sees every other; then each ``r`` neighbouring channels (from different groups,
after the shuffle) are reduced to one by their maximum or mean. The input is added back where
the shape is kept. Arch-string token ``so``: ``k`` kernel (1 to 7; 1, 2 and 3 are the survey's),
``s`` stride, ``c`` output channels, ``g`` groups, ``n`` convolutions (2 when omitted), ``r``
channels aggregated into one (2 when omitted; 1: none), ``a`` aggregation ``max`` or ``mean``
(``max`` when omitted), then the activation, e.g. ``so_k3_s2_c40_g4_amean_re``.
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
from nas.search_spaces.layers import (
    ChannelAggregate,
    ChannelShuffle,
    Conv,
    Layer,
    ShortcutAdd,
    same,
)
from nas.search_spaces.limits import check_channels
from nas.search_spaces.notation import ACTIVATIONS, MAX_KERNEL, check

if TYPE_CHECKING:
    from nas.search_spaces.signatures import OpSignature

SHUFFLE_ONLY = "shuffleonly"
AGGREGATIONS = ("max", "mean")
MAX_CONVS = 4
MAX_RATIO = 8


@dataclass(frozen=True)
class ShuffleOnlyBlock(BlockSpec):
    """Grouped convolutions and shuffles, then an aggregation to the output width."""

    kernel: int
    stride: int
    out_channels: int
    groups: int
    convs: int = 2
    ratio: int = 2
    aggregate: str = "max"
    act: str = "relu"

    def __post_init__(self) -> None:
        check(
            isinstance(self.kernel, int) and 1 <= self.kernel <= MAX_KERNEL,
            f"shuffleonly kernel must be an integer from 1 to {MAX_KERNEL}, got {self.kernel!r}",
        )
        check(self.stride in (1, 2), f"shuffleonly stride must be 1 or 2, got {self.stride!r}")
        check(
            isinstance(self.out_channels, int) and self.out_channels > 0,
            f"shuffleonly out_channels must be a positive integer, got {self.out_channels!r}",
        )
        check(
            isinstance(self.groups, int) and self.groups >= 1,
            f"shuffleonly groups must be a positive integer, got {self.groups!r}",
        )
        check(
            isinstance(self.convs, int) and 1 <= self.convs <= MAX_CONVS,
            f"shuffleonly convs must be an integer from 1 to {MAX_CONVS}, got {self.convs!r}",
        )
        check(
            isinstance(self.ratio, int) and 1 <= self.ratio <= MAX_RATIO,
            f"shuffleonly ratio must be an integer from 1 to {MAX_RATIO}, got {self.ratio!r}",
        )
        check(
            self.aggregate in AGGREGATIONS,
            f"shuffleonly aggregate must be {' or '.join(AGGREGATIONS)}, got {self.aggregate!r}",
        )
        check(
            self.act in ACTIVATIONS,
            f"shuffleonly act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}",
        )
        check_channels("shuffleonly out_channels", self.out_channels)
        check_channels("shuffleonly widened channels", self.mid)

    @property
    def mid(self) -> int:
        """Width of the grouped convolutions, before the aggregation."""
        return self.out_channels * self.ratio

    def check_input(self, in_channels: int, where: str) -> None:
        for name, channels in (("input", in_channels), ("widened", self.mid)):
            check(
                channels % self.groups == 0,
                f"{where}: {name} channels {channels} are not divisible by groups={self.groups}",
            )


def layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    block = sig.block
    assert isinstance(block, ShuffleOnlyBlock)
    mid = block.mid if mid is None else mid
    kind = "pointwise" if block.kernel == 1 else "full"
    result: list[Layer] = []
    in_c, height, width, stride = sig.in_c, sig.in_h, sig.in_w, sig.stride
    for _ in range(block.convs):
        result += same(
            Conv(kind, in_c, mid, height, width, block.kernel, stride, block.groups, act=sig.act)
        )
        in_c, height, width, stride = mid, sig.out_h, sig.out_w, 1
        if block.groups > 1:
            result.append(ChannelShuffle(block.groups, mid, height, width))
    if block.ratio > 1:
        result.append(ChannelAggregate(block.aggregate, block.ratio, sig.out_c, height, width))  # type: ignore[arg-type]
    if sig.stride == 1 and sig.in_c == sig.out_c:
        result.append(ShortcutAdd(sig.out_c, height, width))
    return tuple(result)


SHUFFLE_ONLY_KIND = register_block_kind(
    BlockKind(
        name=SHUFFLE_ONLY,
        token="so",
        block=ShuffleOnlyBlock,
        params=(
            Param("k", "kernel", int),
            Param("s", "stride", int),
            Param("c", "out_channels", int),
            Param("g", "groups", int),
            Param("n", "convs", int, 2),
            Param("r", "ratio", int, 2),
            Param("a", "aggregate", str, "max"),
        ),
        layers=layers,
        choices=(
            Choice("kernel", int, lambda k: isinstance(k, int) and 1 <= k <= MAX_KERNEL, "low"),
            Choice("groups", int, lambda g: isinstance(g, int) and g >= 1, "high"),
            Choice("convs", int, lambda n: isinstance(n, int) and 1 <= n <= MAX_CONVS, "low"),
            Choice("ratio", int, lambda r: isinstance(r, int) and 1 <= r <= MAX_RATIO, "low"),
            Choice("aggregate", str, lambda a: a in AGGREGATIONS, None),
            ACTIVATION_CHOICE,
        ),
    )
)
