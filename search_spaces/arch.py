"""The genotype: what an architecture is, independent of torch, Optuna or any device.

An `Arch` is plain immutable data (stem, stages of inverted-residual blocks, head) so that it can
be hashed to deduplicate trials, shipped to a Ray worker as JSON, stored on an Optuna trial as a
one-line string, and rebuilt bit-for-bit later. Everything that costs something (channels, kernel,
stride, groups, squeeze-and-excitation, activation) lives here; everything that only matters for
training (initialisation, optimiser) does not.

The one-line notation follows timm's block strings::

    stem_c16_k3_s2_hs:mb_e1_k3_s1_c16_re:mb_e4_k3_s2_c24_re,mb_e3_k3_s1_c24_re:head_c960_f1280_hs_d0.2

Parts are separated by ``:`` (stem, one part per stage, head); blocks within a stage by ``,``.
Block tokens: ``e`` expansion ratio, ``k`` kernel, ``s`` stride, ``c`` output channels,
``g`` pointwise groups (omitted when 1), ``se`` squeeze-and-excitation ratio (omitted when 0), and
the activation (``re`` relu, ``r6`` relu6, ``hs`` hard-swish, ``sw`` swish).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from nas.errors import InputError
from nas.search_spaces.limits import check_blocks, check_channels, check_expansion

ACTIVATIONS: dict[str, str] = {"relu": "re", "relu6": "r6", "hswish": "hs", "swish": "sw"}
"""Activation name -> its token in arch strings."""

_ACT_BY_TOKEN = {token: name for name, token in ACTIVATIONS.items()}
MIN_KERNEL, MAX_KERNEL = 2, 7


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round `value` to the nearest multiple of `divisor`, never dropping more than 10%.

    This is the rounding of the TensorFlow MobileNet reference code that torchvision and timm
    copy; using the same rule is what lets the zoo reproduce published channel counts exactly.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _format_number(value: float) -> str:
    """Shortest text that parses back to exactly `value` (``6`` rather than ``6.0``)."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


@dataclass(frozen=True)
class Block:
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
        _check(
            isinstance(self.expansion, (int, float))
            and math.isfinite(self.expansion)
            and self.expansion > 0,
            f"block expansion must be a positive number, got {self.expansion!r}",
        )
        _check(
            isinstance(self.kernel, int) and MIN_KERNEL <= self.kernel <= MAX_KERNEL,
            f"block kernel must be an integer from {MIN_KERNEL} to {MAX_KERNEL}, got {self.kernel!r}",
        )
        _check(self.stride in (1, 2), f"block stride must be 1 or 2, got {self.stride!r}")
        _check(
            isinstance(self.out_channels, int) and self.out_channels > 0,
            f"block out_channels must be a positive integer, got {self.out_channels!r}",
        )
        check_channels("block out_channels", self.out_channels)
        check_expansion(self.expansion)
        _check(
            isinstance(self.groups, int)
            and self.groups >= 1
            and self.groups & (self.groups - 1) == 0,
            f"block groups must be a power of two (1, 2, 4, ...), got {self.groups!r}",
        )
        _check(
            isinstance(self.se_ratio, (int, float)) and 0 <= self.se_ratio < 1,
            f"block se_ratio must be in [0, 1), got {self.se_ratio!r}",
        )
        _check(
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

    def to_string(self) -> str:
        parts = [
            "mb",
            f"e{_format_number(self.expansion)}",
            f"k{self.kernel}",
            f"s{self.stride}",
            f"c{self.out_channels}",
        ]
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.se_ratio:
            parts.append(f"se{_format_number(self.se_ratio)}")
        parts.append(ACTIVATIONS[self.act])
        return "_".join(parts)


@dataclass(frozen=True)
class Stem:
    """The first full convolution (k x k, stride, batch norm, activation)."""

    channels: int
    kernel: int = 3
    stride: int = 2
    act: str = "relu"

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

    def to_string(self) -> str:
        return f"stem_c{self.channels}_k{self.kernel}_s{self.stride}_{ACTIVATIONS[self.act]}"


@dataclass(frozen=True)
class Head:
    """Everything after the last block: 1x1 conv, global pooling, optional feature mix, classifier.

    ``conv_channels`` 0 means no final 1x1 conv (pool the last block directly); ``fc_channels``
    0 means the classifier follows the pooling directly, as in MobileNetV2 and MnasNet, while
    MobileNetV3 puts a 1280-wide linear layer with activation in between.
    """

    conv_channels: int
    fc_channels: int = 0
    act: str = "relu"
    dropout: float = 0.2

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

    def to_string(self) -> str:
        parts = ["head", f"c{self.conv_channels}"]
        if self.fc_channels:
            parts.append(f"f{self.fc_channels}")
        parts += [ACTIVATIONS[self.act], f"d{_format_number(self.dropout)}"]
        return "_".join(parts)


@dataclass(frozen=True)
class Arch:
    """A whole network: stem, stages of blocks, head. Immutable and hashable."""

    stem: Stem
    stages: tuple[tuple[Block, ...], ...]
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
                where = f"stage {stage_index} block {block_index} ({block.to_string()})"
                check_channels(f"{where}: expanded channels", block.mid_channels(in_channels))
                for name, channels in (
                    ("input", in_channels),
                    ("expanded", block.mid_channels(in_channels)),
                    ("output", block.out_channels),
                ):
                    _check(
                        channels % block.groups == 0,
                        f"{where}: {name} channels {channels} are not divisible by "
                        f"groups={block.groups}",
                    )
                in_channels = block.out_channels

    @property
    def blocks(self) -> tuple[Block, ...]:
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
            "stages": [[asdict(block) for block in stage] for stage in self.stages],
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
                stages=tuple(tuple(Block(**block) for block in stage) for stage in data["stages"]),
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
            tuple(_parse_block(token) for token in part.split(",")) for part in parts[1:-1]
        )
        head = _parse_head(parts[-1])
        return cls(stem=stem, stages=stages, head=head)

    def __str__(self) -> str:
        return self.to_string()


# ---- token parsing ------------------------------------------------------------------------


def _split_token(token: str, prefix: str) -> list[str]:
    pieces = token.strip().split("_")
    if pieces[0] != prefix:
        raise InputError(f"arch token {token!r} should start with '{prefix}_'")
    return pieces[1:]


def _take_fields(token: str, pieces: list[str], allowed: dict[str, type]) -> tuple[dict, str]:
    """Read ``<letters><number>`` fields and the activation token; reject anything else."""
    fields: dict[str, Any] = {}
    act: str | None = None
    for piece in pieces:
        if piece in _ACT_BY_TOKEN:
            if act is not None:
                raise InputError(f"arch token {token!r} names two activations")
            act = _ACT_BY_TOKEN[piece]
            continue
        key = next((k for k in sorted(allowed, key=len, reverse=True) if piece.startswith(k)), None)
        if key is None:
            raise InputError(
                f"arch token {token!r}: unknown field {piece!r} (expected one of "
                f"{', '.join(sorted(allowed))} followed by a number, or an activation "
                f"{'/'.join(_ACT_BY_TOKEN)})"
            )
        if key in fields:
            raise InputError(f"arch token {token!r}: field {key!r} given twice")
        try:
            fields[key] = allowed[key](piece[len(key) :])
        except ValueError:
            raise InputError(
                f"arch token {token!r}: {piece!r} is not '{key}' followed by a "
                f"{allowed[key].__name__}"
            ) from None
    if act is None:
        raise InputError(f"arch token {token!r} lacks an activation ({'/'.join(_ACT_BY_TOKEN)})")
    return fields, act


def _require(token: str, fields: dict, names: str) -> None:
    missing = [name for name in names.split() if name not in fields]
    if missing:
        raise InputError(f"arch token {token!r} lacks field(s) {', '.join(missing)}")


def _parse_block(token: str) -> Block:
    fields, act = _take_fields(
        token,
        _split_token(token, "mb"),
        {"e": float, "k": int, "s": int, "c": int, "g": int, "se": float},
    )
    _require(token, fields, "e k s c")
    try:
        return Block(
            expansion=fields["e"],
            kernel=fields["k"],
            stride=fields["s"],
            out_channels=fields["c"],
            groups=fields.get("g", 1),
            se_ratio=fields.get("se", 0.0),
            act=act,
        )
    except InputError as error:
        raise InputError(f"arch token {token!r}: {error}") from None


def _parse_stem(token: str) -> Stem:
    fields, act = _take_fields(token, _split_token(token, "stem"), {"c": int, "k": int, "s": int})
    _require(token, fields, "c k s")
    try:
        return Stem(channels=fields["c"], kernel=fields["k"], stride=fields["s"], act=act)
    except InputError as error:
        raise InputError(f"arch token {token!r}: {error}") from None


def _parse_head(token: str) -> Head:
    fields, act = _take_fields(token, _split_token(token, "head"), {"c": int, "f": int, "d": float})
    _require(token, fields, "c")
    try:
        return Head(
            conv_channels=fields["c"],
            fc_channels=fields.get("f", 0),
            act=act,
            dropout=fields.get("d", 0.2),
        )
    except InputError as error:
        raise InputError(f"arch token {token!r}: {error}") from None
