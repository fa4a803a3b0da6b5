"""Search spaces: which architectures a search may propose.

A space is a fixed skeleton (stem, head, the stride of each stage) with choices per stage (depth
range, output width, block kind) and per block (whatever the stage's block kind lets a space
choose: for MBConv, expansion, kernel, pointwise groups, SE ratio, activation). Spaces are YAML
files; the built-in ones ship in ``spaces/`` beside this module. A stage without ``kind`` holds
MBConv blocks.

`sample` asks an Optuna trial (anything with ``suggest_int`` and ``suggest_categorical``) for
one choice at a time under readable names such as ``s3.depth``, ``s3.width``, ``s3.b2.kernel``;
block parameters exist only for blocks within the sampled depth, so Optuna sees a conditional
space. A choice with a single option is not suggested at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import yaml

from nas.errors import InputError
from nas.search_spaces.arch import Arch, BlockSpec, Head, Stem
from nas.search_spaces.footprint import op_macs
from nas.search_spaces.kinds import DEFAULT_KIND, BlockKind, block_kind, block_kinds, kind_for_token
from nas.search_spaces.limits import check_channels
from nas.search_spaces.signatures import (
    DEPLOY_CLASSES,
    DEPLOY_INPUT,
    InputShape,
    OpSignature,
    block_signature,
    head_signatures,
    stem_signature,
)

DEFAULT_SPACE = "mobile"


class Suggester(Protocol):
    """The part of `optuna.trial.Trial` a space needs; keeps Optuna out of this package."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class BlockChoices:
    """Options for each block of a stage: the block kind, and per choice it declares, the values
    a block may take."""

    kind: str
    options: tuple[tuple[str, tuple[Any, ...]], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.options)

    def __getitem__(self, name: str) -> tuple[Any, ...]:
        return dict(self.options)[name]

    def combinations(self) -> list[dict[str, Any]]:
        values = [options for _, options in self.options]
        return [dict(zip(self.names, combo)) for combo in itertools.product(*values)]

    def count(self) -> int:
        total = 1
        for _, options in self.options:
            total *= len(options)
        return total

    def make(self, stride: int, out_channels: int, chosen: dict[str, Any]) -> BlockSpec:
        """The block these choices describe at a stage's stride and width."""
        return block_kind(self.kind).block(stride=stride, out_channels=out_channels, **chosen)

    def corner(self, cheap: bool) -> dict[str, Any]:
        """Each choice at its cheapest (or dearest) option, as the kind ranks them."""
        kind = block_kind(self.kind)
        chosen = {}
        for name, options in self.options:
            order = kind.choice(name).cheap
            if order is None:
                chosen[name] = options[0]
            else:
                chosen[name] = (min if cheap == (order == "low") else max)(options)
        return chosen

    def values_of(self, block: BlockSpec) -> dict[str, Any] | None:
        """The choices that made `block`, or None when it is of another kind."""
        if block.kind.name != self.kind:
            return None
        return {name: getattr(block, name) for name in self.names}


@dataclass(frozen=True)
class BlockOps:
    """A list of candidate blocks, one of which each block of a stage takes (FBNet's and
    NAS-Bench-Macro's layer-wise choice), possibly of different kinds.

    Each candidate is a block token without its stride and width, which the stage sets
    (``mb_e3_k3_re``, ``skip``); the trial suggests ``s<i>.b<j>.op`` among them.
    """

    templates: tuple[str, ...]

    @property
    def options(self) -> tuple[tuple[str, tuple[Any, ...]], ...]:
        return (("op", self.templates),)

    @property
    def names(self) -> tuple[str, ...]:
        return ("op",)

    @property
    def kind(self) -> str:
        return "/".join(sorted({kind_for_token(t).name for t in self.templates}))

    def __getitem__(self, name: str) -> tuple[Any, ...]:
        return dict(self.options)[name]

    def combinations(self) -> list[dict[str, Any]]:
        return [{"op": template} for template in self.templates]

    def count(self) -> int:
        return len(self.templates)

    def make(self, stride: int, out_channels: int, chosen: dict[str, Any]) -> BlockSpec:
        template = chosen["op"]
        return kind_for_token(template).parse(f"{template}_s{stride}_c{out_channels}")

    def corner(self, cheap: bool) -> dict[str, Any]:
        """The candidate with the fewest (or most) multiply-adds on a reference 8x8x64 map."""
        macs = [
            op_macs(block_signature(self.make(1, 64, {"op": t}), 8, 8, 64)) for t in self.templates
        ]
        best = (min if cheap else max)(range(len(macs)), key=macs.__getitem__)
        return {"op": self.templates[best]}

    def values_of(self, block: BlockSpec) -> dict[str, Any] | None:
        return {"op": template_of(block)}


def template_of(block: BlockSpec) -> str:
    """`block`'s token without its stride and width: what a `BlockOps` candidate names."""
    pieces = block.to_string().split("_")
    for field in (f"s{block.stride}", f"c{block.out_channels}"):
        pieces.remove(field)
    return "_".join(pieces)


@dataclass(frozen=True)
class StageSpace:
    """One stage: how many blocks, how wide, at which stride, built from which block choices."""

    depth: tuple[int, int]
    widths: tuple[int, ...]
    stride: int
    choices: BlockChoices | BlockOps


@dataclass(frozen=True)
class SearchSpace:
    name: str
    description: str
    stem: Stem
    head: Head
    stages: tuple[StageSpace, ...]

    # ---- sampling -------------------------------------------------------------------------

    def sample(self, trial: Suggester) -> Arch:
        """One architecture from the trial's suggestions (names like ``s3.b2.kernel``)."""

        def pick(name: str, options: tuple) -> Any:
            return options[0] if len(options) == 1 else trial.suggest_categorical(name, options)

        stages = []
        for s, stage in enumerate(self.stages):
            low, high = stage.depth
            depth = low if low == high else trial.suggest_int(f"s{s}.depth", low, high)
            width = pick(f"s{s}.width", stage.widths)
            blocks = []
            for b in range(depth):
                chosen = {
                    name: pick(f"s{s}.b{b}.{name}", options)
                    for name, options in stage.choices.options
                }
                blocks.append(stage.choices.make(stage.stride if b == 0 else 1, width, chosen))
            stages.append(tuple(blocks))
        return Arch(stem=self.stem, stages=tuple(stages), head=self.head)

    def params_of(self, arch: Arch) -> dict[str, Any] | None:
        """The suggestions that make `sample` return `arch`, or None if the space cannot.

        Used to enqueue known networks (the zoo) as the first trials of a study.
        """
        if arch.stem != self.stem or arch.head != self.head or len(arch.stages) != len(self.stages):
            return None
        params: dict[str, Any] = {}
        for s, (stage, blocks) in enumerate(zip(self.stages, arch.stages)):
            low, high = stage.depth
            width = blocks[0].out_channels
            if not low <= len(blocks) <= high or width not in stage.widths:
                return None
            if low != high:
                params[f"s{s}.depth"] = len(blocks)
            if len(stage.widths) > 1:
                params[f"s{s}.width"] = width
            for b, block in enumerate(blocks):
                values = stage.choices.values_of(block)
                if values is None:
                    return None
                if block.out_channels != width or block.stride != (stage.stride if b == 0 else 1):
                    return None
                for name, options in stage.choices.options:
                    value = values[name]
                    if value not in options:
                        return None
                    if len(options) > 1:
                        params[f"s{s}.b{b}.{name}"] = value
        return params

    # ---- enumeration ----------------------------------------------------------------------

    def size(self) -> int:
        """How many distinct architectures the space holds."""
        total = 1
        for stage in self.stages:
            per_block = stage.choices.count()
            low, high = stage.depth
            total *= len(stage.widths) * sum(per_block**d for d in range(low, high + 1))
        return total

    def signatures(
        self, input_shape: InputShape = DEPLOY_INPUT, num_classes: int = DEPLOY_CLASSES
    ) -> list[OpSignature]:
        """Every distinct operator any architecture of the space can contain, sorted by key.

        Strides are fixed per stage, so each stage sees one resolution; its first block can
        receive any width of the previous stage, its repeated blocks only its own width.
        """
        stem = stem_signature(self.stem, input_shape)
        found = {stem.key: stem}
        height, width, in_widths = stem.out_h, stem.out_w, (self.stem.channels,)
        for stage in self.stages:
            for in_c, out_c, combo in itertools.product(
                in_widths, stage.widths, stage.choices.combinations()
            ):
                block = stage.choices.make(stage.stride, out_c, combo)
                first = block_signature(block, height, width, in_c)
                if not block.is_identity(in_c):
                    found[first.key] = first
                block = stage.choices.make(1, out_c, combo)
                if stage.depth[1] > 1 and not block.is_identity(out_c):
                    repeat = block_signature(block, first.out_h, first.out_w, out_c)
                    found[repeat.key] = repeat
            height, width = -(-height // stage.stride), -(-width // stage.stride)
            in_widths = stage.widths
        for last_c in in_widths:
            for sig in head_signatures(self.head, height, width, last_c, num_classes):
                found[sig.key] = sig
        return [found[key] for key in sorted(found)]

    # ---- extremes ---------------------------------------------------------------------------

    def cheapest(self) -> Arch:
        """The architecture with the fewest multiply-adds (each choice at its cheapest)."""
        return self._extreme(cheap=True)

    def dearest(self) -> Arch:
        """The architecture with the most multiply-adds (each choice at its dearest)."""
        return self._extreme(cheap=False)

    def _extreme(self, cheap: bool) -> Arch:
        pick = min if cheap else max
        stages = []
        for stage in self.stages:
            width = pick(stage.widths)
            combo = stage.choices.corner(cheap)
            depth = stage.depth[0] if cheap else stage.depth[1]
            stages.append(
                tuple(
                    stage.choices.make(stage.stride if b == 0 else 1, width, combo)
                    for b in range(depth)
                )
            )
        return Arch(stem=self.stem, stages=tuple(stages), head=self.head)

    # ---- description ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The space in its YAML form (what `load_space` reads)."""
        from dataclasses import asdict

        return {
            "name": self.name,
            "description": self.description,
            "stem": asdict(self.stem),
            "head": asdict(self.head),
            "stages": [
                {
                    "depth": list(stage.depth),
                    "width": list(stage.widths),
                    "stride": stage.stride,
                    **(
                        {}
                        if isinstance(stage.choices, BlockOps) or stage.choices.kind == DEFAULT_KIND
                        else {"kind": stage.choices.kind}
                    ),
                    **(
                        {"ops": list(stage.choices.templates)}
                        if isinstance(stage.choices, BlockOps)
                        else {name: list(options) for name, options in stage.choices.options}
                    ),
                }
                for stage in self.stages
            ],
        }


# ---- loading ------------------------------------------------------------------------------


def builtin_spaces() -> dict[str, Path]:
    """Name -> YAML file of every space shipped with the package."""
    folder = resources.files("nas.search_spaces") / "spaces"
    return {
        Path(str(entry)).stem: Path(str(entry))
        for entry in folder.iterdir()
        if str(entry).endswith(".yaml")
    }


def load_space(name_or_path: str | Path = DEFAULT_SPACE) -> SearchSpace:
    """A built-in space by name, or a YAML file by path."""
    text = str(name_or_path)
    spaces = builtin_spaces()
    if text in spaces:
        path = spaces[text]
    else:
        path = Path(text)
        if not path.is_file():
            raise InputError(
                f"unknown search space {text!r}: give a built-in name "
                f"({', '.join(sorted(spaces))}) or the path of a YAML file"
            )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InputError(f"search space {path}: invalid YAML ({_one_line(error)})") from None
    except UnicodeDecodeError:
        raise InputError(f"search space {path} is not UTF-8 text (YAML)") from None
    except RecursionError:  # the YAML reader gives up on thousands of nested levels
        raise InputError(f"search space {path} is nested too deeply to be a space (YAML)") from None
    return space_from_dict(data, source=str(path))


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def space_from_dict(data: Any, source: str = "<dict>") -> SearchSpace:
    """Validate and build a space; every error names the file and the offending field."""
    reader = _Reader(source)
    data = reader.mapping(
        data, "", {"name", "description", "stem", "head", "stages", "block_choices"}
    )
    every_choice = {choice.name for kind in block_kinds().values() for choice in kind.choices}
    defaults = reader.mapping(data.get("block_choices", {}), "block_choices", every_choice)
    stem = reader.build(
        Stem, reader.mapping(data.get("stem"), "stem", {f.name for f in fields(Stem)}), "stem"
    )
    head = reader.build(
        Head, reader.mapping(data.get("head"), "head", {f.name for f in fields(Head)}), "head"
    )
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        reader.fail("stages", "must be a non-empty list of stages")
    stages = tuple(reader.stage(raw, f"stages[{i}]", defaults) for i, raw in enumerate(raw_stages))
    name = data.get("name") or Path(source).stem
    if not isinstance(name, str):
        reader.fail("name", "must be a string")
    space = SearchSpace(
        name=name,
        description=str(data.get("description", "")).strip(),
        stem=stem,
        head=head,
        stages=stages,
    )
    reader.check_stages(space)
    reader.check_limits(space)
    return space


class _Reader:
    """Field-by-field validation that names the file and the field in every message."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> None:
        raise InputError(f"search space {self.source}: {where or 'top level'} {message}")

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict:
        if not isinstance(value, dict):
            self.fail(where, "must be a mapping")
        unknown = set(value) - allowed
        if unknown:
            self.fail(
                where,
                f"has unknown field(s) {', '.join(sorted(map(str, unknown)))} "
                f"(allowed: {', '.join(sorted(allowed))})",
            )
        return value

    def build(self, cls: type, values: dict, where: str) -> Any:
        try:
            return cls(**values)
        except InputError as error:
            self.fail(where, f"is invalid: {error}")
        except TypeError as error:
            self.fail(where, f"is invalid: {error}")

    def options(self, value: Any, where: str, kind: type, check) -> tuple:
        values = value if isinstance(value, list) else [value]
        if not values:
            self.fail(where, "must list at least one option")
        out = []
        for i, item in enumerate(values):
            ok_type = isinstance(item, kind) or (kind is float and isinstance(item, int))
            if isinstance(item, bool) or not ok_type or not check(item):
                self.fail(f"{where}[{i}]", f"has invalid value {item!r}")
            out.append(float(item) if kind is float else item)
        if len(set(out)) != len(out):
            self.fail(where, f"lists an option twice: {values!r}")
        return tuple(out)

    def stage(self, raw: Any, where: str, defaults: dict) -> StageSpace:
        if isinstance(raw, dict) and "ops" in raw:
            raw = self.mapping(raw, where, {"depth", "width", "stride", "ops"})
            kind = None
        else:
            kind = self.kind(raw, where)
            raw = self.mapping(
                raw, where, {"depth", "width", "stride", "kind", *(c.name for c in kind.choices)}
            )
        for required in ("depth", "width", "stride"):
            if required not in raw:
                self.fail(where, f"lacks field '{required}'")
        depth = raw["depth"]
        depth = (depth, depth) if isinstance(depth, int) else depth
        if (
            not isinstance(depth, list | tuple)
            or len(depth) != 2
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in depth)
            or not 1 <= depth[0] <= depth[1]
        ):
            self.fail(f"{where}.depth", f"must be an integer >= 1 or [min, max], got {depth!r}")
        widths = self.options(raw["width"], f"{where}.width", int, lambda w: w > 0)
        self.within(f"{where}.width", lambda: [check_channels("width", w) for w in widths])
        if raw["stride"] not in (1, 2):
            self.fail(f"{where}.stride", f"must be 1 or 2, got {raw['stride']!r}")
        if kind is None:
            return StageSpace(
                depth=tuple(depth),
                widths=widths,
                stride=raw["stride"],
                choices=self.ops(raw["ops"], f"{where}.ops"),
            )
        chosen: dict[str, tuple] = {}
        for choice in kind.choices:
            value = raw.get(choice.name, defaults.get(choice.name))
            if value is None:
                self.fail(
                    where,
                    f"has no '{choice.name}' options (set it on the stage or in block_choices)",
                )
            options = self.options(value, f"{where}.{choice.name}", choice.type, choice.valid)
            if choice.bound is not None:
                bound = choice.bound
                self.within(f"{where}.{choice.name}", lambda: [bound(v) for v in options])
            chosen[choice.name] = options
        return StageSpace(
            depth=tuple(depth),
            widths=widths,
            stride=raw["stride"],
            choices=BlockChoices(kind.name, tuple(chosen.items())),
        )

    def ops(self, value: Any, where: str) -> BlockOps:
        """Candidate tokens, each checked by parsing it at a placeholder stride and width, and
        written the canonical way (``mb_k3_e3_re`` becomes ``mb_e3_k3_re``)."""
        templates = self.options(value, where, str, lambda t: bool(t.strip()))
        canonical = []
        for i, template in enumerate(templates):
            try:
                canonical.append(template_of(BlockOps((template,)).make(1, 8, {"op": template})))
            except InputError as error:
                self.fail(f"{where}[{i}]", f"is not a block without stride and width: {error}")
        if len(set(canonical)) != len(canonical):
            self.fail(where, f"lists a block twice: {list(templates)!r}")
        return BlockOps(tuple(canonical))

    def kind(self, raw: Any, where: str) -> BlockKind:
        name = raw.get("kind", DEFAULT_KIND) if isinstance(raw, dict) else DEFAULT_KIND
        if not isinstance(name, str):
            self.fail(f"{where}.kind", f"must be the name of a block kind, got {name!r}")
        try:
            return block_kind(name)
        except InputError as error:
            self.fail(f"{where}.kind", f"is invalid: {error}")
            raise

    def within(self, where: str, check: Callable[[], object]) -> None:
        """Run a check of `nas.search_spaces.limits`, naming the file and field if it fails."""
        try:
            check()
        except InputError as error:
            self.fail(where, f"is out of bounds: {error}")

    def check_limits(self, space: SearchSpace) -> None:
        """The space's widest, deepest architecture within the structural limits (channels of
        the expanded layers, number of blocks); parameters and memory depend on the input and
        are checked when a search knows it."""
        self.within("stages at their widest and deepest", space.dearest)

    def check_stages(self, space: SearchSpace) -> None:
        """Every option of a stage buildable at every width it can receive, as its kind says."""
        in_widths = (space.stem.channels,)
        for i, stage in enumerate(space.stages):
            if isinstance(stage.choices, BlockOps):
                self.check_ops(f"stages[{i}].ops", stage, in_widths)
                in_widths = stage.widths
                continue
            check_stage = block_kind(stage.choices.kind).check_stage
            if check_stage is not None:
                problem = check_stage(dict(stage.choices.options), in_widths, stage.widths)
                if problem is not None:
                    self.fail(f"stages[{i}].{problem[0]}", problem[1])
            else:  # a kind with no rule of its own: build every option at every width
                self.check_blocks(f"stages[{i}]", stage, in_widths)
            in_widths = stage.widths

    def check_blocks(self, where: str, stage: StageSpace, in_widths: tuple[int, ...]) -> None:
        """Every combination of a stage's choices buildable at its stride and widths, from
        every width its first block can receive (ShuffleNet units, for one, need widths their
        groups divide, and a stride-1 unit its input's width)."""
        for combo in stage.choices.combinations():
            for width in stage.widths:
                # the first block gets the stride and the previous width; the others neither
                for stride, widths in ((stage.stride, in_widths), (1, (width,))):
                    try:
                        block = stage.choices.make(stride, width, combo)
                        for in_width in widths:
                            block.check_input(in_width, f"from {in_width} channels")
                    except InputError as error:
                        self.fail(where, f"cannot build every option: {error}")

    def check_ops(self, where: str, stage: StageSpace, in_widths: tuple[int, ...]) -> None:
        """Every candidate buildable at every width the stage's blocks can receive."""
        for combo in stage.choices.combinations():
            for stride, widths in ((stage.stride, in_widths), (1, stage.widths)):
                for width in stage.widths:
                    block = stage.choices.make(stride, width, combo)
                    for in_width in widths:
                        try:
                            block.check_input(in_width, f"{combo['op']} from {in_width} channels")
                        except InputError as error:
                            self.fail(where, f"is invalid: {error}")
