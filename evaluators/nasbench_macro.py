"""NAS-Bench-Macro's published results: an accuracy for every network of the `nasbench-macro`
space, looked up instead of trained.

Su et al. (CVPR 2021) trained each of the 6,561 networks of a MobileNetV2-block space on
CIFAR-10 three times (50 epochs; the figure kept per run is its best test accuracy, so it ranks
networks but is not an unbiased accuracy). The table ships with `nas` (Apache-2.0, its license
beside it), so a search over the space can be judged in seconds per trial against accuracies
nobody here measured, with pricing, the study, stopping rules and reports all real.

A network's key has one digit per layer: the index of the layer's choice in its stage's ``ops``
list (0 skip, 1 inverted residual e3 k3, 2 e6 k5), as the benchmark numbers them.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from nas.errors import InputError
from nas.evaluators.datasets import Dataset
from nas.search_spaces.arch import Arch
from nas.search_spaces.space import BlockOps, SearchSpace, load_space

SPACE = "nasbench-macro"
TABLE_FILE = "nasbench-macro_cifar10.json.gz"
TEST_IMAGES = 10_000
"""CIFAR-10's test split, which every published accuracy was scored on."""

RUNS = 3
PUBLISHED_RECIPE = {
    "epochs": 50,
    "batch_size": 256,
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "schedule": "cosine",
    "warmup_epochs": 0.0,
    "crop_padding": 4,
    "flip": True,
    "max_seconds": None,
}
"""How the published accuracies were trained (the benchmark's README), as a `Recipe`'s fields."""
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@dataclass(frozen=True)
class MacroResult:
    """One network's published row: three accuracies (fractions), their mean, params, MACs."""

    key: str
    runs: tuple[float, ...]
    mean: float
    params: int
    flops: int

    def accuracy(self, seed: int, mean: bool = False) -> float:
        """The run a training `seed` stands for (seed mod 3), or the three-run mean."""
        return self.mean if mean else self.runs[seed % len(self.runs)]


class NasBenchMacro:
    """The table, with the mapping between its keys and the space's architectures."""

    def __init__(self, rows: dict[str, dict[str, Any]], space: SearchSpace | None = None) -> None:
        self.rows = rows
        self.space = space or load_space(SPACE)
        self.ops = [_ops(stage.choices) for stage in self.space.stages]

    @classmethod
    def load(cls, path: str | Path | None = None) -> NasBenchMacro:
        """The shipped table, or a copy of the published JSON (optionally gzipped) at `path`."""
        return cls(_read(Path(path)) if path else _shipped())

    def __len__(self) -> int:
        return len(self.rows)

    def key_of(self, arch: Arch) -> str:
        params = self.space.params_of(arch)
        if params is None:
            raise InputError(f"{arch} is not a network of the {SPACE} space")
        digits = []
        for s, (stage, ops) in enumerate(zip(self.space.stages, self.ops)):
            digits += [str(ops.index(params[f"s{s}.b{b}.op"])) for b in range(stage.depth[0])]
        return "".join(digits)

    def arch_of(self, key: str) -> Arch:
        if key not in self.rows:
            raise InputError(f"{key!r} is not a key of NAS-Bench-Macro (8 digits of 0, 1, 2)")
        digits = iter(key)
        params = {
            f"s{s}.b{b}.op": ops[int(next(digits))]
            for s, (stage, ops) in enumerate(zip(self.space.stages, self.ops))
            for b in range(stage.depth[0])
        }
        return self.space.sample(_Fixed(params))

    def lookup(self, arch: Arch) -> MacroResult:
        key = self.key_of(arch)
        row = self.rows[key]
        return MacroResult(
            key=key,
            runs=tuple(acc / 100 for acc in row["test_acc"]),
            mean=row["mean_acc"] / 100,
            params=int(row["params"]),
            flops=int(row["flops"]),
        )


def described_dataset() -> Dataset:
    """What the looked-up accuracies were measured on, as a dataset with no images: CIFAR-10's
    shape, classes and statistics, so a study records where its numbers come from."""
    empty = torch.zeros((0, 3, 32, 32), dtype=torch.uint8)
    labels = torch.zeros(0, dtype=torch.int64)
    return Dataset(
        name=SPACE,
        train_images=empty,
        train_labels=labels,
        val_images=empty,
        val_labels=labels,
        test_images=empty,
        test_labels=labels,
        num_classes=10,
        channels=3,
        resolution=(32, 32),
        class_names=CIFAR10_CLASSES,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        hflip_ok=True,
        provenance="NAS-Bench-Macro's published CIFAR-10 test accuracies (no images)",
    )


class _Fixed:
    """Suggestions fixed in advance: what `SearchSpace.sample` turns into one architecture."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int) -> int:
        return self.params[name]


def _ops(choices: Any) -> tuple[str, ...]:
    if not isinstance(choices, BlockOps):
        raise InputError(f"the {SPACE} space must list each layer's candidates as 'ops'")
    return choices.templates


@cache
def _shipped() -> dict[str, dict[str, Any]]:
    data = resources.files("nas.evaluators") / "data" / TABLE_FILE
    return json.loads(gzip.decompress(data.read_bytes()))


def _read(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"NAS-Bench-Macro table {path} does not exist")
    raw = path.read_bytes()
    try:
        return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, ValueError) as error:
        raise InputError(f"NAS-Bench-Macro table {path} is not its JSON: {error}") from None
