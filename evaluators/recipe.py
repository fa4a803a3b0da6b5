"""The proxy training recipe: every knob that changes a trial's accuracy, in one frozen record.

A recipe travels with each candidate to its worker and is stored with each result, so a trial can
be re-run from its arch string, recipe and seed alone. The defaults are the proxy the search uses,
chosen by measurement (docs/training.md): a ~150-MFLOP candidate trains on the shipped
fashion-mnist-mini in about 30 s on two free cores; how well it ranks against five times longer
training is in BENCHMARKS.md.

This module is the record and its rules. Which recipe the search, confirm, finalize and
`nas train` use, the per-dataset defaults included, is decided in one place: `nas.recipes`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any

from nas.errors import InputError
from nas.search_spaces.arch import Arch
from nas.search_spaces.signatures import InputShape

SCHEDULES = ("cosine", "onecycle")

PRECISIONS = ("float32", "bfloat16", "float16", "auto")
"""Training precisions (`nas.evaluators.device.resolve_precision` says what ``auto`` becomes)."""


@dataclass(frozen=True)
class Recipe:
    """How a candidate is trained.

    Attributes:
        epochs: passes over the training split.
        batch_size: training batch; the last incomplete batch of an epoch is dropped so batch
            norm never sees a batch of one.
        lr: peak learning rate of the schedule (SGD). 0.1 measured as good as 0.2 on mid-size
            candidates and up to 3.6 points better on the largest; 0.4 collapses.
        momentum, nesterov: SGD momentum.
        weight_decay: L2 on convolution and linear weights only; batch-norm parameters and biases
            are exempt, since decaying them only fights the normalisation.
        label_smoothing: cross-entropy label smoothing on the training loss (validation loss is
            plain cross-entropy).
        schedule: ``cosine`` (linear warm-up over `warmup_epochs`, then cosine to zero) or
            ``onecycle`` (warm-up from lr/25 over `warmup_epochs`, cosine down to lr/2.5e4).
        warmup_epochs: length of the warm-up, in epochs (fractions allowed), but never more
            than a third of the run, so `epochs=1` still anneals.
        seed: initialisation, shuffling, augmentation and dropout all derive from it.
        threads: torch intra-op threads; the worker's CPU share.
        max_seconds: wall-time limit of the whole run (None: no limit); passing it fails the run.
        eval_batch_size: batch size of validation and test passes (no gradients, so larger).
        augment: random crop after zero padding of `crop_padding` pixels (None: an eighth of
            the height).
        flip: random horizontal flips, only where the dataset says flips keep the label.
        stem_stride1_below: give the stem stride 1 when the proxy input's shorter side is below
            this many pixels (0: never). Without it a network designed for 224x224 reduces a
            28x28 input to 1x1 by its last stage, so its late kernels and SE blocks see a single
            pixel and the proxy cannot tell them apart. See docs/training.md for the measurement.
        resolution: train at this input side, resizing every split first (None: the
            dataset's own). With `min_final_map` it sets the proxy's geometry: which map sizes
            each stage of the deployed network sees while it is trained.
        min_final_map: the stride plan. Turn the first stride-2 steps (stem first, then
            stage by stage) into stride 1, as few as needed for the last stage's maps to be at
            least this many pixels on their shorter side (0: never). A 224x224 skeleton ends
            at 7x7; at 32x32 it ends at 1x1, where its last kernels and SE blocks see one
            pixel. The leading steps go, so every later stage sees its deployed map divided
            by one constant. Supersedes `stem_stride1_below`, which is kept for recorded
            recipes.
        channels_last: NHWC memory format, which oneDNN runs about twice as fast on CPU.
        bn_momentum: batch-norm running-statistics momentum during proxy training. The
            builder's 0.01 suits ImageNet schedules of 100k+ steps; after the few hundred steps
            of a proxy it leaves the statistics near their initial values and validation in eval
            mode near chance. It only changes the running estimates, never the training forward.
        precision: ``float32``, or mixed precision: ``bfloat16``, or ``float16`` with dynamic
            loss scaling; ``auto`` is float32 on a CPU and, on a GPU, bfloat16 where the GPU
            runs it natively, float16 otherwise. A run records the precision it used in the
            recipe of its result. float32 is the default: the CPU loop's figures and
            reproducibility rest on it.
    """

    epochs: int = 4
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    schedule: str = "onecycle"
    warmup_epochs: float = 1.0
    seed: int = 0
    threads: int = 2
    max_seconds: float | None = 1800.0
    eval_batch_size: int = 500
    augment: bool = True
    crop_padding: int | None = None
    flip: bool = True
    stem_stride1_below: int = 0
    resolution: int | None = None
    min_final_map: int = 0
    channels_last: bool = True
    bn_momentum: float = 0.1
    precision: str = "float32"

    # Long: one check per field, each naming the field and its bounds, in field order.
    def __post_init__(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise InputError(f"recipe: {message}")

        check(
            _is_int(self.epochs) and self.epochs >= 1, f"epochs must be >= 1, got {self.epochs!r}"
        )
        check(
            _is_int(self.batch_size) and self.batch_size >= 2,
            f"batch_size must be >= 2 (batch norm needs two images), got {self.batch_size!r}",
        )
        check(
            _is_int(self.eval_batch_size) and self.eval_batch_size >= 1,
            f"eval_batch_size must be >= 1, got {self.eval_batch_size!r}",
        )
        check(_is_number(self.lr) and self.lr > 0, f"lr must be a positive number, got {self.lr!r}")
        check(
            _is_number(self.momentum) and 0 <= self.momentum < 1,
            f"momentum must be in [0, 1), got {self.momentum!r}",
        )
        check(not (self.nesterov and self.momentum == 0), "nesterov needs a non-zero momentum")
        check(
            _is_number(self.weight_decay) and self.weight_decay >= 0,
            f"weight_decay must be >= 0, got {self.weight_decay!r}",
        )
        check(
            _is_number(self.label_smoothing) and 0 <= self.label_smoothing < 1,
            f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}",
        )
        check(
            self.schedule in SCHEDULES,
            f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}",
        )
        check(
            _is_number(self.warmup_epochs) and self.warmup_epochs >= 0,
            f"warmup_epochs must be >= 0, got {self.warmup_epochs!r}",
        )
        check(
            _is_int(self.seed) and self.seed >= 0,
            f"seed must be an integer >= 0, got {self.seed!r}",
        )
        check(
            _is_int(self.threads) and self.threads >= 1,
            f"threads must be >= 1, got {self.threads!r}",
        )
        check(
            self.max_seconds is None or (_is_number(self.max_seconds) and self.max_seconds > 0),
            f"max_seconds must be positive or None, got {self.max_seconds!r}",
        )
        check(
            self.crop_padding is None or (_is_int(self.crop_padding) and self.crop_padding >= 0),
            f"crop_padding must be >= 0 or None, got {self.crop_padding!r}",
        )
        check(
            _is_int(self.stem_stride1_below) and self.stem_stride1_below >= 0,
            f"stem_stride1_below must be >= 0, got {self.stem_stride1_below!r}",
        )
        check(
            self.resolution is None or (_is_int(self.resolution) and self.resolution >= 4),
            f"resolution must be an integer >= 4 or None, got {self.resolution!r}",
        )
        check(
            _is_int(self.min_final_map) and self.min_final_map >= 0,
            f"min_final_map must be >= 0, got {self.min_final_map!r}",
        )
        check(
            _is_number(self.bn_momentum) and 0 < self.bn_momentum <= 1,
            f"bn_momentum must be in (0, 1], got {self.bn_momentum!r}",
        )
        check(
            self.precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
        )
        for name in ("nesterov", "augment", "flip", "channels_last"):
            check(isinstance(getattr(self, name), bool), f"{name} must be true or false")
        for name in (
            "lr",
            "momentum",
            "weight_decay",
            "label_smoothing",
            "warmup_epochs",
            "bn_momentum",
        ):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.max_seconds is not None:
            object.__setattr__(self, "max_seconds", float(self.max_seconds))

    def replace(self, **changes: Any) -> Recipe:
        """A copy with `changes`; None values are ignored, so CLI flags can be passed as they come."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def changes_from(self, recorded: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
        """'field old -> new' for each field where this recipe differs from `recorded` (a
        recipe's `to_dict`; fields it lacks had their defaults), fields in `ignore` aside."""
        before = Recipe.from_dict(recorded).to_dict()
        return [
            f"{key} {before.get(key)!r} -> {value!r}"
            for key, value in self.to_dict().items()
            if key not in ignore and before.get(key) != value
        ]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """Rebuild a recorded recipe; fields it lacks take today's defaults, unknown ones fail."""
        if not isinstance(data, dict):
            raise InputError(f"a recipe must be a JSON object, got {type(data).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"recipe: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def proxy_input(self, input_shape: InputShape) -> InputShape:
        """The input this recipe trains at, for data of `input_shape` (its resolution applied)."""
        if self.resolution is None:
            return input_shape
        return (input_shape[0], self.resolution, self.resolution)

    def proxy_arch(self, arch: Arch, input_shape: InputShape) -> Arch:
        """`arch` as this recipe trains it on data of `input_shape` (its stride plan applied)."""
        _, height, width = self.proxy_input(input_shape)
        if arch.stem.stride != 1 and min(height, width) < self.stem_stride1_below:
            arch = dataclasses.replace(arch, stem=dataclasses.replace(arch.stem, stride=1))
        return free_leading_strides(arch, min(height, width), self.min_final_map)


def final_map(arch: Arch, side: int) -> int:
    """Side of the last stage's maps for an input of `side` pixels (each stride-2 rounds up)."""
    for stride in _strides(arch):
        side = math.ceil(side / stride)
    return side


def free_leading_strides(arch: Arch, side: int, min_final_map: int) -> Arch:
    """`arch` with its first stride-2 steps made stride 1 until its last maps reach `min_final_map`.

    The stem's stride comes first, then each block's in order. Strides that are already 1 are
    left alone, and a network whose last maps are already large enough comes back unchanged.
    """
    if min_final_map <= 0:
        return arch
    while final_map(arch, side) < min_final_map and any(s > 1 for s in _strides(arch)):
        arch = _drop_first_stride(arch)
    return arch


def _strides(arch: Arch) -> list[int]:
    return [arch.stem.stride, *(block.stride for block in arch.blocks)]


def _drop_first_stride(arch: Arch) -> Arch:
    if arch.stem.stride > 1:
        return dataclasses.replace(arch, stem=dataclasses.replace(arch.stem, stride=1))
    stages = [list(stage) for stage in arch.stages]
    for stage in stages:
        for index, block in enumerate(stage):
            if block.stride > 1:
                stage[index] = dataclasses.replace(block, stride=1)
                return dataclasses.replace(arch, stages=tuple(tuple(s) for s in stages))
    return arch


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))
