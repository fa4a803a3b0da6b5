"""The genotype: what an architecture is, independent of torch, Optuna or any device.

An `Arch` is plain immutable data (stem, stages of blocks, head) so that it can
be hashed to deduplicate trials, shipped to a Ray worker as JSON, stored on an Optuna trial as a
one-line string, and rebuilt bit-for-bit later. Everything that costs something (channels, kernel,
stride, groups, squeeze-and-excitation, activation) lives here; everything that only matters for
training (initialisation, optimiser) does not.

The one-line notation follows timm's block strings::

    stem_c16_k3_s2_hs:mb_e1_k3_s1_c16_re:mb_e4_k3_s2_c24_re,mb_e3_k3_s1_c24_re:head_c960_f1280_hs_d0.2

Parts are separated by ``:`` (stem, one part per stage, head); blocks within a stage by ``,``.
A block token starts with its kind's prefix (``mb`` for `nas.search_spaces.blocks.mbconv`, whose
docstring lists its fields); every kind is looked up in `nas.search_spaces.kinds`. Activations
are ``re`` relu, ``r6`` relu6, ``hs`` hard-swish, ``sw`` swish. A stem that does not pad says
``pvalid`` and one without batch norm ``bn0``; a head that classifies with a convolution before
the pooling says ``clsconv``: SqueezeNet's ``stem_c96_k7_s2_pvalid_bn0_re`` and
``head_c0_clsconv_re_d0.5``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from nas.errors import InputError
from nas.search_spaces.blocks.mbconv import Block
from nas.search_spaces.kinds import DEFAULT_KIND, BlockSpec, block_kind, kind_for_token
from nas.search_spaces.limits import check_blocks, check_channels
from nas.search_spaces.notation import (
    ACTIVATIONS,
    MAX_KERNEL,
    MIN_KERNEL,
    format_number,
    make_divisible,
    require,
    split_token,
    take_fields,
)
from nas.search_spaces.notation import check as _check

__all__ = [
    "ACTIVATIONS",
    "MAX_KERNEL",
    "MIN_KERNEL",
    "Arch",
    "Block",
    "BlockSpec",
    "Head",
    "Stem",
    "make_divisible",
]


STEM_PADDINGS = ("same", "valid")
"""How a stem may pad (`nas.search_spaces.notation.PADDINGS`; a convolution has no ceil mode)."""
CLASSIFIERS = ("linear", "conv")
"""What a head may classify with (`Head.classifier`)."""


@dataclass(frozen=True)
class Stem:
    """The first full convolution (k x k, stride, batch norm, activation).

    ``padding`` ``valid`` pads nothing, as SqueezeNet's stem; ``bn`` False leaves out the batch
    norm and gives the convolution a bias instead, as SqueezeNet has it.
    """

    channels: int
    kernel: int = 3
    stride: int = 2
    act: str = "relu"
    padding: str = "same"
    bn: bool = True

    def __post_init__(self) -> None:
        _check(
            isinstance(self.channels, int) and self.channels > 0,
            f"stem channels must be a positive integer, got {self.channels!r}",
        )
        check_channels("stem channels", self.channels)
        _check(
            isinstance(self.kernel, int) and 1 <= self.kernel <= MAX_KERNEL,
            f"stem kernel must be an integer from 1 to {MAX_KERNEL}, got {self.kernel!r}",
        )
        _check(self.stride in (1, 2), f"stem stride must be 1 or 2, got {self.stride!r}")
        _check(
            self.act in ACTIVATIONS,
            f"stem act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}",
        )
        _check(
            self.padding in STEM_PADDINGS,
            f"stem padding must be one of {', '.join(STEM_PADDINGS)}, got {self.padding!r}",
        )
        _check(isinstance(self.bn, bool), f"stem bn must be true or false, got {self.bn!r}")

    def to_string(self) -> str:
        parts = ["stem", f"c{self.channels}", f"k{self.kernel}", f"s{self.stride}"]
        if self.padding != "same":
            parts.append(f"p{self.padding}")
        if not self.bn:
            parts.append("bn0")
        return "_".join([*parts, ACTIVATIONS[self.act]])


@dataclass(frozen=True)
class Head:
    """Everything after the last block: 1x1 conv, global pooling, optional feature mix, classifier.

    ``conv_channels`` 0 means no final 1x1 conv (pool the last block directly); ``fc_channels``
    0 means the classifier follows the pooling directly, as in MobileNetV2 and MnasNet, while
    MobileNetV3 puts a 1280-wide linear layer with activation in between. ``classifier``
    ``linear`` classifies the pooled vector; ``conv`` classifies every position with a 1x1
    convolution (with bias, then the head's activation) and pools the class scores, as
    SqueezeNet does, so it takes no ``fc_channels``. ``dropout`` is on the classifier's input
    either way.
    """

    conv_channels: int
    fc_channels: int = 0
    act: str = "relu"
    dropout: float = 0.2
    classifier: str = "linear"

    def __post_init__(self) -> None:
        _check(
            isinstance(self.conv_channels, int) and self.conv_channels >= 0,
            f"head conv_channels must be a non-negative integer, got {self.conv_channels!r}",
        )
        _check(
            isinstance(self.fc_channels, int) and self.fc_channels >= 0,
            f"head fc_channels must be a non-negative integer, got {self.fc_channels!r}",
        )
        check_channels("head conv_channels", self.conv_channels)
        check_channels("head fc_channels", self.fc_channels)
        _check(
            self.act in ACTIVATIONS,
            f"head act must be one of {', '.join(ACTIVATIONS)}, got {self.act!r}",
        )
        _check(
            isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1,
            f"head dropout must be in [0, 1), got {self.dropout!r}",
        )
        object.__setattr__(self, "dropout", float(self.dropout))
        _check(
            self.classifier in CLASSIFIERS,
            f"head classifier must be one of {', '.join(CLASSIFIERS)}, got {self.classifier!r}",
        )
        _check(
            self.classifier == "linear" or not self.fc_channels,
            "a head with a conv classifier pools the class scores, so it takes no fc_channels "
            f"(got {self.fc_channels})",
        )

    def to_string(self) -> str:
        parts = ["head", f"c{self.conv_channels}"]
        if self.fc_channels:
            parts.append(f"f{self.fc_channels}")
        if self.classifier != "linear":
            parts.append(f"cls{self.classifier}")
        parts += [ACTIVATIONS[self.act], f"d{format_number(self.dropout)}"]
        return "_".join(parts)


@dataclass(frozen=True)
class Arch:
    """A whole network: stem, stages of blocks, head. Immutable and hashable."""

    stem: Stem
    stages: tuple[tuple[BlockSpec, ...], ...]
    head: Head

    def __post_init__(self) -> None:
        stages = tuple(tuple(stage) for stage in self.stages)
        object.__setattr__(self, "stages", stages)
        _check(
            len(stages) > 0 and all(len(stage) > 0 for stage in stages),
            "an architecture needs at least one stage and every stage at least one block",
        )
        check_blocks(sum(len(stage) for stage in stages))
        in_channels = self.stem.channels
        for stage_index, stage in enumerate(stages):
            for block_index, block in enumerate(stage):
                _check(
                    isinstance(block, BlockSpec),
                    f"stage {stage_index} block {block_index} is not a block: {block!r}",
                )
                where = f"stage {stage_index} block {block_index} ({block.to_string()})"
                block.check_input(in_channels, where)
                in_channels = block.out_channels

    @property
    def blocks(self) -> tuple[BlockSpec, ...]:
        return tuple(block for stage in self.stages for block in stage)

    @property
    def out_channels(self) -> int:
        """Channels that reach the classifier's input."""
        if self.head.fc_channels:
            return self.head.fc_channels
        if self.head.conv_channels:
            return self.head.conv_channels
        return self.blocks[-1].out_channels

    # ---- JSON -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "stem": asdict(self.stem),
            "stages": [[block.kind.to_dict(block) for block in stage] for stage in self.stages],
            "head": asdict(self.head),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Arch:
        """Rebuild from `to_dict` output; unknown or missing fields are an `InputError`."""
        if not isinstance(data, dict):
            raise InputError(f"an architecture must be a JSON object, got {type(data).__name__}")
        missing = {"stem", "stages", "head"} - set(data)
        if missing:
            raise InputError(f"architecture JSON lacks {', '.join(sorted(missing))}")
        try:
            return cls(
                stem=Stem(**data["stem"]),
                stages=tuple(
                    tuple(_block_from_dict(block) for block in stage) for stage in data["stages"]
                ),
                head=Head(**data["head"]),
            )
        except TypeError as error:  # unexpected or missing keyword in a part
            raise InputError(f"architecture JSON: {error}") from None

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"architecture JSON is not valid JSON: {error}") from None
        return cls.from_dict(data)

    # ---- one-line string ------------------------------------------------------------------

    def to_string(self) -> str:
        stages = [",".join(block.to_string() for block in stage) for stage in self.stages]
        return ":".join([self.stem.to_string(), *stages, self.head.to_string()])

    @classmethod
    def from_string(cls, text: str) -> Arch:
        """Parse the one-line notation; a malformed string names the offending token."""
        parts = text.strip().split(":")
        if len(parts) < 3:
            raise InputError(
                f"arch string {text!r} needs a stem, at least one stage and a head separated by ':'"
            )
        stem = _parse_stem(parts[0])
        stages = tuple(
            tuple(kind_for_token(token).parse(token) for token in part.split(","))
            for part in parts[1:-1]
        )
        head = _parse_head(parts[-1])
        return cls(stem=stem, stages=stages, head=head)

    def network_key(self) -> str:
        """The arch string without the blocks that pass their input through untouched.

        Two architectures with one key are one network (a skip that changes no shape is no
        operator, wherever it sits), so a search trains it once.
        """
        channels, stages = self.stem.channels, []
        for stage in self.stages:
            kept = []
            for block in stage:
                if not block.is_identity(channels):
                    kept.append(block.to_string())
                channels = block.out_channels
            stages.append(",".join(kept))
        return ":".join([self.stem.to_string(), *stages, self.head.to_string()])

    def __str__(self) -> str:
        return self.to_string()


# ---- token parsing ------------------------------------------------------------------------


def _block_from_dict(data: dict[str, Any]) -> BlockSpec:
    """A block from its JSON; one without a ``kind`` is an MBConv block, as every block was."""
    if not isinstance(data, dict):
        raise InputError(f"a block must be a JSON object, got {type(data).__name__}")
    fields = dict(data)
    return block_kind(fields.pop("kind", DEFAULT_KIND)).from_dict(fields)


def _parse_stem(token: str) -> Stem:
    allowed = {"c": int, "k": int, "s": int, "p": str, "bn": int}
    fields, act = take_fields(token, split_token(token, "stem"), allowed)
    require(token, fields, "c k s")
    bn = fields.get("bn", 1)
    if bn not in (0, 1):
        raise InputError(f"arch token {token!r}: 'bn' must be 0 (no batch norm) or 1, got {bn}")
    try:
        return Stem(
            channels=fields["c"],
            kernel=fields["k"],
            stride=fields["s"],
            act=act,
            padding=fields.get("p", "same"),
            bn=bool(bn),
        )
    except InputError as error:
        raise InputError(f"arch token {token!r}: {error}") from None


def _parse_head(token: str) -> Head:
    allowed = {"c": int, "f": int, "d": float, "cls": str}
    fields, act = take_fields(token, split_token(token, "head"), allowed)
    require(token, fields, "c")
    try:
        return Head(
            conv_channels=fields["c"],
            fc_channels=fields.get("f", 0),
            act=act,
            dropout=fields.get("d", 0.2),
            classifier=fields.get("cls", "linear"),
        )
    except InputError as error:
        raise InputError(f"arch token {token!r}: {error}") from None
