"""The layers of one operator (`op_layers`): the anatomy that building, counting and pricing share.

The torch builder, the parameter and multiply-add counts, the latency tables' feature-map bytes
and the cost model's work terms are each a sum or a map over these layers (`nas.search_spaces.
layers`), so a count can never disagree with the module that runs. The fixed parts of a network
(stem, head, pooling, classifier) are described here; a block asks its kind
(`nas.search_spaces.kinds`).
"""

from __future__ import annotations

from functools import lru_cache

from nas.search_spaces.kinds import block_kind, is_block_kind
from nas.search_spaces.layers import (
    Branches,
    ChannelAggregate,
    ChannelShuffle,
    Conv,
    ConvKind,
    GlobalPool,
    Layer,
    Linear,
    Pool,
    ShortcutAdd,
    SqueezeExcite,
    ZeroPad,
    same,
)
from nas.search_spaces.signatures import OpSignature

__all__ = [
    "Branches",
    "ChannelAggregate",
    "ChannelShuffle",
    "Conv",
    "ConvKind",
    "GlobalPool",
    "Layer",
    "Linear",
    "Pool",
    "ShortcutAdd",
    "SqueezeExcite",
    "ZeroPad",
    "op_layers",
]


@lru_cache(maxsize=65536)
def op_layers(sig: OpSignature, mid: int | None = None, dropout: float = 0.0) -> tuple[Layer, ...]:
    """The layers of one operator, in execution order.

    `mid` overrides the expanded width of a block whose kind has one (fixed parts have none):
    the cost model prices published blocks whose middle width our channel rounding does not
    reproduce. `dropout` is the classifier's (linear or conv) training dropout; it costs nothing
    at inference, which is why signatures do not carry it. Cached, because the search counts the
    same few thousand operators over and over and the layers are immutable.
    """
    if sig.kind == "stem":
        bn = sig.extra_value("bn", True)
        stem = Conv(
            "full",
            sig.in_c,
            sig.out_c,
            sig.in_h,
            sig.in_w,
            sig.kernel,
            sig.stride,
            bn=bn,
            act=sig.act,
            bias=not bn,
            pad=sig.padding,
        )
        return same(stem) if sig.padding == "same" else (stem,)
    if sig.kind == "head":
        return same(Conv("pointwise", sig.in_c, sig.out_c, sig.in_h, sig.in_w, act=sig.act))
    if sig.kind == "conv_classifier":
        h, w, act = sig.in_h, sig.in_w, sig.act
        return (
            Conv(
                "pointwise",
                sig.in_c,
                sig.out_c,
                h,
                w,
                bn=False,
                act=act,
                bias=True,
                dropout=dropout,
            ),
        )
    if sig.kind == "pool":
        return (GlobalPool(sig.in_c, sig.in_h, sig.in_w),)
    if sig.kind == "fc":
        return (Linear(sig.in_c, sig.out_c, act=sig.act),)
    if sig.kind == "classifier":
        return (Linear(sig.in_c, sig.out_c, dropout=dropout),)
    if is_block_kind(sig.kind):
        return block_kind(sig.kind).layers(sig, mid)
    raise ValueError(f"unknown operator kind {sig.kind!r}")
