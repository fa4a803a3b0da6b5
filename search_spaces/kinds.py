"""Block kinds: what a kind of block declares, and the registry that every other part asks.

A block kind (MBConv, MobileNetV1's depthwise-separable block, the ShuffleNetV1 and V2 units, the
Ghost bottleneck, the shuffle-only block, SqueezeNet's Fire module, ESPNetV2's EESP unit, skip,
max pooling: `search_spaces/blocks/`) is one
module that builds one `BlockKind`: its parameters and their arch-string tokens, its anatomy
in layers (from which the torch module, the multiply-add and parameter counts, the feature-map
bytes and the latency cost model all follow), and the choices a search space may make for it.
The arch string parser, the signatures, the builder, the counts, the latency tables and the
spaces look a kind up here by its token or its name and never name one themselves, so adding a
kind is one new module plus `register_block_kind`.

Built-in kinds load on first use; kinds a separate distribution ships are found through the entry
point group ``nas.block_kinds`` (each entry point names a `BlockKind` object).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from nas.errors import InputError
from nas.search_spaces.notation import (
    ACTIVATIONS,
    MAX_KERNEL,
    MIN_KERNEL,
    check,
    format_value,
    require,
    split_token,
    take_fields,
)

if TYPE_CHECKING:
    from torch import nn

    from nas.search_spaces.layers import Layer
    from nas.search_spaces.signatures import OpSignature

BUILTIN_KINDS = (
    "nas.search_spaces.blocks.mbconv",
    "nas.search_spaces.blocks.skip",
    "nas.search_spaces.blocks.separable",
    "nas.search_spaces.blocks.shufflev1",
    "nas.search_spaces.blocks.shufflev2",
    "nas.search_spaces.blocks.ghost",
    "nas.search_spaces.blocks.maxpool",
    "nas.search_spaces.blocks.shuffleonly",
    "nas.search_spaces.blocks.fire",
    "nas.search_spaces.blocks.eesp",
)
"""Modules whose import registers the kinds that ship with `nas`."""

ENTRY_POINT_GROUP = "nas.block_kinds"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a parameter every arch string must give."""


@dataclass(frozen=True)
class Param:
    """One parameter of a block: its token in arch strings and its attribute on the block.

    A parameter whose value equals its default is left out of the arch string (``g1`` never
    appears); every parameter but the output channels appears in the operator's table key,
    except that one with ``keyed_at_default`` False appears there only where it differs from
    its default: so a parameter added to a kind later leaves the keys, and the measured
    entries, of every block that keeps its default as they were.
    """

    token: str
    name: str
    type: type
    default: Any = REQUIRED
    keyed_at_default: bool = True


@dataclass(frozen=True)
class Choice:
    """A per-block choice a search space may offer for a kind (``kernel: [3, 5]``).

    ``valid`` checks one option; ``bound`` applies a limit of `nas.search_spaces.limits` and
    raises its message; ``cheap`` says which end of the options is cheaper in multiply-adds
    ("low", "high", or None when the first option serves for both corners).
    """

    name: str
    type: type
    valid: Callable[[Any], bool]
    cheap: str | None = "low"
    bound: Callable[[Any], None] | None = None


KERNEL_CHOICE = Choice("kernel", int, lambda k: MIN_KERNEL <= k <= MAX_KERNEL, "low")
"""The depthwise kernel choice most kinds offer, the smaller kernel the cheaper."""
ACTIVATION_CHOICE = Choice("act", str, lambda a: a in ACTIVATIONS, None)
"""The activation choice every kind with an activation offers."""


class BlockSpec:
    """Base of every kind's block: a frozen dataclass with at least ``stride`` and
    ``out_channels`` (and ``act`` where the kind has an activation)."""

    kind_name: ClassVar[str] = ""
    stride: int
    out_channels: int

    @property
    def kind(self) -> BlockKind:
        return block_kind(self.kind_name)

    def check_input(self, in_channels: int, where: str) -> None:
        """Refuse an input width this block cannot take (e.g. one its groups do not divide)."""

    def is_identity(self, in_channels: int) -> bool:
        """Whether the block passes `in_channels` through untouched: such a block is no
        operator at all (nothing to build, count or price)."""
        return False

    def to_string(self) -> str:
        return self.kind.format(self)


@dataclass(frozen=True)
class BlockKind:
    """Everything `nas` needs to know about one kind of block.

    ``layers(sig, mid)`` is the block's anatomy at a signature; ``mid`` overrides an expanded
    width for kinds that have one (the cost model prices published blocks whose middle width the
    channel rounding does not reproduce). ``build(sig)``, when given, is the torch module;
    without it the builder runs the layers in sequence, adding the input when the last layer is
    a `ShortcutAdd`. ``check_stage(choices, in_widths, widths)`` returns (field, message) when a
    space's options cannot all be built.
    """

    name: str
    token: str
    block: type[BlockSpec]
    params: tuple[Param, ...]
    layers: Callable[[OpSignature, int | None], tuple[Layer, ...]]
    choices: tuple[Choice, ...] = ()
    build: Callable[[OpSignature], nn.Module] | None = None
    check_stage: (
        Callable[[dict[str, tuple], tuple[int, ...], tuple[int, ...]], tuple[str, str] | None]
        | None
    ) = None

    @cached_property
    def has_act(self) -> bool:
        return any(f.name == "act" for f in dataclasses.fields(self.block))  # type: ignore[arg-type]

    @cached_property
    def key_params(self) -> tuple[Param, ...]:
        """The parameters a table key names (the output channels are in its shape part)."""
        return tuple(p for p in self.params if p.name != "out_channels")

    @cached_property
    def signature_names(self) -> tuple[str, ...]:
        """What a signature of this kind holds besides its shape: the key parameters and act."""
        names = tuple(p.name for p in self.key_params)
        return (*names, "act") if self.has_act else names

    # ---- arch strings ---------------------------------------------------------------------

    def format(self, block: BlockSpec) -> str:
        parts = [self.token]
        for param in self.params:
            value = getattr(block, param.name)
            if param.default is REQUIRED or value != param.default:
                parts.append(f"{param.token}{format_value(value)}")
        if self.has_act:
            parts.append(ACTIVATIONS[block.act])  # type: ignore[attr-defined]
        return "_".join(parts)

    def parse(self, token: str) -> BlockSpec:
        allowed = {param.token: param.type for param in self.params}
        fields, act = take_fields(token, split_token(token, self.token), allowed, self.has_act)
        require(token, fields, " ".join(p.token for p in self.params if p.default is REQUIRED))
        values = {param.name: fields[param.token] for param in self.params if param.token in fields}
        if act is not None:
            values["act"] = act
        try:
            return self.block(**values)
        except InputError as error:
            raise InputError(f"arch token {token!r}: {error}") from None

    # ---- JSON -------------------------------------------------------------------------------

    def to_dict(self, block: BlockSpec) -> dict[str, Any]:
        data = dataclasses.asdict(block)  # type: ignore[call-overload]
        if self.name != DEFAULT_KIND:
            data["kind"] = self.name
        return data

    def from_dict(self, data: dict[str, Any]) -> BlockSpec:
        return self.block(**data)

    # ---- signatures -------------------------------------------------------------------------

    def signature_values(self, block: BlockSpec) -> dict[str, Any]:
        """The block's parameters as a signature holds them (all but its output channels)."""
        return {name: getattr(block, name) for name in self.signature_names}

    def key_parts(self, values: dict[str, Any]) -> list[str]:
        parts = [
            f"{p.token}{format_value(values[p.name])}"
            for p in self.key_params
            if p.keyed_at_default or values[p.name] != p.default
        ]
        if self.has_act:
            parts.append(ACTIVATIONS[values["act"]])
        return parts

    # ---- spaces -------------------------------------------------------------------------------

    def choice(self, name: str) -> Choice:
        return next(choice for choice in self.choices if choice.name == name)


DEFAULT_KIND = "mbconv"
"""The kind of a block that names none (every block before kinds existed)."""

_BY_NAME: dict[str, BlockKind] = {}
_BY_TOKEN: dict[str, BlockKind] = {}
_loaded = False


def register_block_kind(kind: BlockKind) -> BlockKind:
    """Make `kind` known to every part of `nas`; its name and token must be new."""
    existing = _BY_NAME.get(kind.name) or _BY_TOKEN.get(kind.token)
    if existing is not None and existing != kind:
        raise ValueError(
            f"block kind {kind.name!r} (token {kind.token!r}) clashes with the registered "
            f"kind {existing.name!r} (token {existing.token!r})"
        )
    check(kind.token not in ("stem", "head"), f"block token {kind.token!r} is reserved")
    kind.block.kind_name = kind.name
    _BY_NAME[kind.name] = kind
    _BY_TOKEN[kind.token] = kind
    return kind


def unregister_block_kind(name: str) -> None:
    kind = _BY_NAME.pop(name)
    del _BY_TOKEN[kind.token]


@contextmanager
def registered(kind: BlockKind) -> Iterator[BlockKind]:
    """`kind` registered for the duration of a ``with`` block (tests, notebooks)."""
    register_block_kind(kind)
    try:
        yield kind
    finally:
        unregister_block_kind(kind.name)


def _load() -> None:
    """Import the built-in kinds and the installed plug-ins once, on first lookup."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_KINDS:
        importlib.import_module(module)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        register_block_kind(entry.load())


def block_kinds() -> dict[str, BlockKind]:
    """Every registered kind by name."""
    _load()
    return dict(_BY_NAME)


def is_block_kind(name: str) -> bool:
    """Whether operator kind `name` is a block (rather than a stem, head, pool or classifier)."""
    _load()
    return name in _BY_NAME


def block_kind(name: str) -> BlockKind:
    """The kind called `name`; an unknown name is an `InputError` listing the known ones."""
    _load()
    try:
        return _BY_NAME[name]
    except KeyError:
        raise InputError(
            f"unknown block kind {name!r} (known: {', '.join(sorted(_BY_NAME))})"
        ) from None


def kind_for_token(token: str) -> BlockKind:
    """The kind whose arch-string tokens start with ``<prefix>_`` as `token` does."""
    _load()
    prefix = token.strip().split("_", 1)[0]
    kind = _BY_TOKEN.get(prefix)
    if kind is None:
        raise InputError(
            f"arch token {token!r} should start with a block prefix "
            f"({', '.join(sorted(p + '_' for p in _BY_TOKEN))})"
        )
    return kind
