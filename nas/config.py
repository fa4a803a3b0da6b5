"""`SearchConfig`: everything a search needs, from flags and an optional YAML file, frozen.

One immutable object is what the driver, the study attributes and `--resume` compare: a resumed
search must be the same search (same space, target, budget and dataset) unless forced.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import click
import yaml

from nas.errors import InputError
from nas.evaluators.recipe import PRECISIONS
from nas.files import name_problem
from nas.search_spaces.limits import MAX_INPUT_SIZE, MIN_INPUT_SIZE, check_input_size
from nas.search_spaces.signatures import DEPLOY_CLASSES
from nas.storage import (
    DEFAULT_STORAGE_URL,
    OUTAGE_WINDOW_S,
    mask_password,
    normalize_storage_url,
)

_LIMITS = frozenset({"budget_mflops", "budget_params", "budget_ms", "trial_timeout_s"})
"""Settings whose absence means "no limit", which is what a user giving inf means."""
SAMPLERS = ("tpe", "nsga2", "random", "bands", "surrogate")
"""``bands`` is NSGA-II with every latency band from the space's fastest network to the budget
covered (`nas.reach`); ``surrogate`` chooses each candidate by the front it is expected to grow
per second of training, from one model of every trial (`nas.acquisition`), covering the same
bands; the others are Optuna's samplers alone (`nas.study.make_sampler`)."""
OBJECTIVES = ("pareto", "reward")
SCHEDULERS = ("median", "asha", "surrogate")
"""Early-stopping rules: the median of finished curves at least as fast, successive halving
over both objectives, or the surrogate's bound on the final accuracy against the finished
candidates at least as fast. Each name is a key of `nas.stopping.RULES`, which holds its rule
class."""
CONFIRM_WHERE = ("uncertain", "all")
"""Which front members and baselines confirm trains again: those within the noise of a
neighbour (`nas.confirm_choice`), or every one."""
DEFAULT_SAMPLER = "surrogate"  # chosen on NAS-Bench-Macro (BENCHMARKS.md, search strategies)

DEFAULT_BASELINES = 4
"""Zoo baselines a warm start trains at most, spread over the budget's latency range: enough to
give the search a yardstick at both ends and in between. Every one is trained in the search and
again in confirm, so the whole zoo under a generous budget (a dozen networks at 150 MFLOPs)
would cost more than the searched candidates of a short search; ``--baselines all`` trains
them all, as a benchmark against every hand-designed network does."""
ALL_BASELINES = "all"

DEFAULT_CONFIRM_SEEDS = {"fashion-mnist-mini": 1}
OTHER_CONFIRM_SEEDS = 2
"""Confirm seeds per dataset, and for any other. One more seed of the embedded quick start is
the fewest that still gives Welch's test two runs a side, and keeps the README's first command
short (BENCHMARKS.md, "Quick start"); a search on real data runs for hours, and two more seeds
(three in all) cost little beside it."""

PROXY_DEFAULTS: dict[str, dict[str, int]] = {
    "cifar10": {"epochs": 2, "proxy_resolution": 24, "min_final_map": 2},
    "cifar100": {"epochs": 2, "proxy_resolution": 24, "min_final_map": 2},
    "fashion-mnist-mini": {"epochs": 2, "limit_train": 6000},
    "imagefolder": {"epochs": 2, "min_final_map": 2},
}
"""The proxy a search gives each dataset unless told (docs/training.md, "Defaults"): chosen on
the proxy-ranking benchmark, where two epochs at 24x24 with the stride plan cost the least of
every proxy measured and were the only kind to order the zoo networks as the long reference
does. An image folder keeps its own resolution (its images may be of any size); the stride plan
frees nothing where the maps are already large. The embedded quick start trains two epochs
(at its own 28x28, strides as deployed) on 6,000 of its 9,000 training images, so that the
README's first command stays short with its confirm runs: after four epochs its candidates
were within two standard errors of each other (docs/training.md), so the longer proxy bought
time, not a ranking; 24x24 would save little at this size, and a third of the images (3,000)
left networks at chance after 46 steps (BENCHMARKS.md, "Quick start"). Any other dataset keeps
the recipe's defaults and trains on all its images."""


def proxy_default(dataset: str, name: str, fallback: Any = None) -> Any:
    """The proxy setting `name` that `dataset` trains with unless told (`PROXY_DEFAULTS`)."""
    return PROXY_DEFAULTS.get(dataset, {}).get(name, fallback)


DEFAULT_FINAL_TOP = 3
"""Searched networks `nas finalize` trains unless told."""
DEFAULT_FINAL_EPOCHS = 30
"""Epochs of the final recipe: as `nas train`'s, several times the proxy's."""
DEFAULT_FINAL_SEEDS = 2
"""Seeds per finalized network: two give a spread across training seeds, not only the test
split's binomial noise."""

EVALUATORS = ("train", "table", "table-mean")
"""What --evaluator accepts (`nas.lookup`)."""
TABLE_CLASSES = 10
"""Classes of NAS-Bench-Macro's networks (CIFAR-10)."""

# Fields that define *which* search a study is; resuming with other values needs --force.
IDENTITY_FIELDS = (
    "space",
    "target",
    "budget_mflops",
    "budget_params",
    "budget_ms",
    "dataset",
    "objective",
    "target_ms",
    "input_size",
    "limit_train",
    "evaluator",
)
"""What makes two runs one search: a resume that changes any of these is refused without --force.
`limit_train` is here because candidates trained on different subsets would share one front."""


@dataclass(frozen=True)
class SearchConfig:
    """A whole search. Defaults run the embedded dataset to completion in minutes on 2 cores."""

    budget_mflops: float | None = None
    budget_params: int | None = None
    budget_ms: float | None = None
    target: str = "armv8"
    space: str = "mobile"
    dataset: str = "fashion-mnist-mini"
    data_dir: str | None = None
    limit_train: int | None = None
    """Train on at most this many images; 0: all; None: the dataset's default
    (`PROXY_DEFAULTS`)."""
    trials: int = 10
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    early_stopping: bool = True
    scheduler: str = "median"
    reduction_factor: int = 3
    """eta of --scheduler asha: one candidate in eta goes on from each rung."""
    proxy_resolution: int | None = None
    """Train candidates at this input side (every split resized); 0: the data's own; None: the
    dataset's default (`PROXY_DEFAULTS`)."""
    min_final_map: int | None = None
    """The proxy's stride plan (`Recipe.min_final_map`); 0: train the strides as deployed; None:
    the dataset's default (`PROXY_DEFAULTS`)."""
    workers: int | None = None
    cpus_per_trial: int = 1
    gpus_per_trial: float = 0.0
    precision: str | None = None
    """Training precision (`Recipe.precision`); None: auto with --gpus-per-trial, else float32."""
    ray_address: str | None = None
    storage: str = DEFAULT_STORAGE_URL
    study: str | None = None
    artifact_dir: str | None = None
    resume: bool = False
    force: bool = False
    sampler: str = DEFAULT_SAMPLER
    objective: str = "pareto"
    target_ms: float | None = None
    reward_exponent: float = -0.07
    seed: int = 0
    out: str | None = None
    warm_start: bool = True
    baselines: int | str = DEFAULT_BASELINES
    """The warm start's zoo networks within the budget, at most this many, spread over latency
    (`nas.proposals.spread_over_latency`); ``"all"``: every one."""
    max_retries: int = 1
    input_size: int = 224
    trial_timeout_s: float | None = None
    storage_outage_s: float = OUTAGE_WINDOW_S
    """How long the driver waits out an unreachable database before it stops (resumable)."""
    confirm_seeds: int | None = None
    """More training seeds per front member and baseline after the search; None: per dataset."""
    confirm_where: str = "uncertain"
    """Which front members and baselines get them (`CONFIRM_WHERE`)."""
    finalize: int = 0
    """Searched networks to finalize after the search (`nas.finalize`); 0: none."""
    final_epochs: int = DEFAULT_FINAL_EPOCHS
    final_seeds: int = DEFAULT_FINAL_SEEDS
    evaluator: str = "train"
    """How a candidate's accuracy is had: trained (``train``), or looked up in NAS-Bench-Macro's
    published results, one run chosen by the training seed (``table``) or their mean
    (``table-mean``); see `nas.lookup`."""

    def __post_init__(self) -> None:
        self._check_numbers()
        self._check_choices()
        self._check_names_and_sizes()
        object.__setattr__(self, "storage", normalize_storage_url(self.storage))

    def _check_numbers(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                limitless = " (leave it out for no limit)" if name in _LIMITS else ""
                raise InputError(
                    f"--{name.replace('_', '-')} must be positive, got {value}{limitless}"
                )

        for name in (
            "budget_mflops",
            "budget_params",
            "budget_ms",
            "trials",
            "epochs",
            "batch_size",
            "lr",
            "workers",
            "cpus_per_trial",
            "target_ms",
            "input_size",
            "trial_timeout_s",
            "final_epochs",
            "final_seeds",
        ):
            positive(name)
        if self.limit_train is not None and self.limit_train < 0:
            raise InputError(
                f"--limit-train must be a number of images, or 0 for all, got {self.limit_train}"
            )
        if not 0 <= self.storage_outage_s < math.inf:
            raise InputError(
                f"--storage-outage-s must be a number of seconds >= 0, got {self.storage_outage_s}"
            )
        if not math.isfinite(self.reward_exponent):
            raise InputError(f"--reward-exponent must be a number, got {self.reward_exponent}")
        if self.reduction_factor < 2:
            raise InputError(f"--reduction-factor must be >= 2, got {self.reduction_factor}")
        resolution = self.proxy_resolution
        if resolution is not None and resolution != 0 and resolution < 4:
            raise InputError(
                f"--proxy-resolution must be >= 4 (or 0: the data's own), got {resolution}"
            )
        if self.min_final_map is not None and not 0 <= self.min_final_map <= MAX_INPUT_SIZE:
            raise InputError(
                f"--min-final-map must be from 0 to {MAX_INPUT_SIZE} pixels (a map no larger "
                f"than the input), got {self.min_final_map:,}"
            )
        if self.finalize < 0:
            raise InputError(f"--finalize must be >= 0, got {self.finalize}")
        check_gpus_per_trial(self.gpus_per_trial)
        if self.baselines != ALL_BASELINES and not (
            isinstance(self.baselines, int) and self.baselines >= 0
        ):
            raise InputError(
                f"--baselines must be a whole number >= 0 or {ALL_BASELINES}, got {self.baselines!r}"
            )
        if self.confirm_seeds is not None and self.confirm_seeds < 0:
            raise InputError(f"--confirm-seeds must be >= 0, got {self.confirm_seeds}")
        if self.max_retries < 0:
            raise InputError(f"--max-retries must be >= 0, got {self.max_retries}")
        if not 0 <= self.seed < 2**32:
            raise InputError(
                f"--seed must be from 0 to {2**32 - 1} (numpy's and torch's seeds are 32-bit), "
                f"got {self.seed}"
            )

    def _check_choices(self) -> None:
        for flag, value, allowed in (
            ("evaluator", self.evaluator, EVALUATORS),
            ("scheduler", self.scheduler, SCHEDULERS),
            ("sampler", self.sampler, SAMPLERS),
            ("objective", self.objective, OBJECTIVES),
            ("confirm where", self.confirm_where, CONFIRM_WHERE),
        ):
            if value not in allowed:
                raise InputError(f"unknown {flag} {value!r}; choose one of {', '.join(allowed)}")
        if self.looks_up and self.finalize:
            raise InputError(
                f"--finalize trains networks on images, which --evaluator {self.evaluator} never "
                f"reads: leave --finalize out"
            )
        if self.objective == "reward" and self.target_ms is None:
            raise InputError(
                "--objective reward needs --target-ms (the latency the MnasNet "
                "reward acc * (ms / target_ms)^w aims at)"
            )

    def _check_names_and_sizes(self) -> None:
        if self.study and (problem := name_problem(self.study)):
            raise InputError(
                f"--study {self.study!r} {problem}: a study's name is also its results "
                f"folder (results/<study>/); use letters, digits, '-', '_' and '.'"
            )
        check_input_size(self.input_size)
        if self.input_size < MIN_INPUT_SIZE:
            raise InputError(
                f"--input-size must be at least {MIN_INPUT_SIZE}, as for every other command, "
                f"got {self.input_size}"
            )
        if self.proxy_resolution:
            check_input_size(self.proxy_resolution, "--proxy-resolution")

    @property
    def study_name(self) -> str:
        """The study this configuration names: given, or derived from what defines the search."""
        if self.study:
            return self.study
        parts = [Path(self.space).stem, Path(self.target).stem]
        if self.budget_mflops:
            parts.append(f"{_name_number(self.budget_mflops)}mflops")
        if self.budget_params:
            parts.append(f"{_name_number(self.budget_params)}params")
        if self.budget_ms:
            parts.append(f"{_name_number(self.budget_ms)}ms")
        parts.append(self.evaluator if self.looks_up else self.dataset)
        if self.objective == "reward":
            parts.append(f"reward{_name_number(self.target_ms)}ms")
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts))

    @property
    def seeds_to_confirm(self) -> int:
        """--confirm-seeds, or the dataset's default (`DEFAULT_CONFIRM_SEEDS`)."""
        if self.confirm_seeds is not None:
            return self.confirm_seeds
        return DEFAULT_CONFIRM_SEEDS.get(self.dataset, OTHER_CONFIRM_SEEDS)

    def proxy_setting(self, name: str, fallback: Any = None) -> Any:
        """`name` (epochs, proxy_resolution, min_final_map) as given, else the dataset's
        default (`PROXY_DEFAULTS`), else `fallback`."""
        given = getattr(self, name)
        return given if given is not None else proxy_default(self.dataset, name, fallback)

    @property
    def deploy_input(self) -> tuple[int, int, int]:
        return (3, self.input_size, self.input_size)

    @property
    def looks_up(self) -> bool:
        """Whether accuracies are read from a published table instead of trained."""
        return self.evaluator != "train"

    @property
    def deploy_classes(self) -> int:
        """Classes of the deployed classifier that cost is priced with: ImageNet's 1000, or
        CIFAR-10's 10 for the table evaluator, whose published FLOPs count a 10-way one."""
        return TABLE_CLASSES if self.looks_up else DEPLOY_CLASSES

    def to_dict(self, mask: bool = True) -> dict[str, Any]:
        """JSON-able form; the storage password is masked unless asked otherwise."""
        data = dataclasses.asdict(self)
        if mask:
            data["storage"] = mask_password(self.storage)
        return data

    def identity(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in IDENTITY_FIELDS}


GPU_UNIT = 1e-4
"""Ray counts a fraction of a GPU in steps of this size and refuses anything finer."""


def check_gpus_per_trial(gpus: float) -> None:
    """--gpus-per-trial as Ray will accept it: 0, a fraction of one GPU, or whole GPUs."""
    if gpus < 0:
        raise InputError(f"--gpus-per-trial must be >= 0, got {gpus:g}")
    if 0 < gpus < GPU_UNIT:
        raise InputError(
            f"--gpus-per-trial {gpus:g}: Ray counts GPUs in steps of {GPU_UNIT:g}; ask for at "
            f"least that (0.25 puts four trials on one GPU)"
        )
    if gpus > 1 and not float(gpus).is_integer():
        raise InputError(
            f"--gpus-per-trial {gpus:g}: above 1 it must be a whole number (Ray gives a task a "
            f"fraction of one GPU or whole GPUs)"
        )


def _name_number(value: float) -> str:
    """A budget as a study name writes it: as ``:g`` does (``150``, ``0.5``, ``1e-05``), which
    keeps the names of existing studies, except where ``:g`` needs a positive exponent: there
    the whole number (``5000000``, since a name's '+' would become '-' and read ``5e-06``), or
    the exponent without its '+' (``1e20``)."""
    text = f"{value:g}"
    if "e+" not in text:
        return text
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value)).replace("e+", "e")


FIELD_NAMES = {f.name for f in fields(SearchConfig)}


class BaselineCount(click.ParamType):
    """A whole number >= 0, or ``all``: how many zoo baselines the warm start trains."""

    name = "N|all"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, bool):
            self.fail(f"expected a whole number or {ALL_BASELINES}, got {value!r}", param, ctx)
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        if text == ALL_BASELINES:
            return ALL_BASELINES
        try:
            return int(text)
        except ValueError:
            self.fail(f"expected a whole number or {ALL_BASELINES}, got {value!r}", param, ctx)


SETTING_TYPES: dict[str, click.ParamType] = {
    "budget_mflops": click.FLOAT,
    "budget_params": click.INT,
    "budget_ms": click.FLOAT,
    "target": click.STRING,
    "space": click.STRING,
    "dataset": click.STRING,
    "data_dir": click.STRING,
    "limit_train": click.INT,
    "trials": click.INT,
    "epochs": click.INT,
    "batch_size": click.INT,
    "lr": click.FLOAT,
    "early_stopping": click.BOOL,
    "scheduler": click.Choice(SCHEDULERS),
    "reduction_factor": click.INT,
    "proxy_resolution": click.INT,
    "min_final_map": click.INT,
    "workers": click.INT,
    "cpus_per_trial": click.INT,
    "gpus_per_trial": click.FLOAT,
    "precision": click.Choice(PRECISIONS),
    "ray_address": click.STRING,
    "storage": click.STRING,
    "study": click.STRING,
    "artifact_dir": click.STRING,
    "resume": click.BOOL,
    "force": click.BOOL,
    "sampler": click.Choice(SAMPLERS),
    "objective": click.Choice(OBJECTIVES),
    "target_ms": click.FLOAT,
    "reward_exponent": click.FLOAT,
    "seed": click.INT,
    "out": click.STRING,
    "warm_start": click.BOOL,
    "baselines": BaselineCount(),
    "max_retries": click.INT,
    "input_size": click.INT,
    "trial_timeout_s": click.FLOAT,
    "storage_outage_s": click.FLOAT,
    "confirm_seeds": click.INT,
    "confirm_where": click.Choice(CONFIRM_WHERE),
    "finalize": click.INT,
    "final_epochs": click.INT,
    "final_seeds": click.INT,
    "evaluator": click.Choice(EVALUATORS),
}
"""The type of every setting. `nas search` declares its flags with these, and a config file's
values are converted by the same types, so a flag and a YAML key always mean the same."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a YAML file; keys are flag names with '-' or '_'. Unknown keys are errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise InputError(
            f"config file {path}: invalid YAML ({' '.join(str(error).split())})"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"config file {path} is not UTF-8 text (YAML)") from None
    if not isinstance(data, dict):
        raise InputError(f"config file {path}: expected a mapping of settings")
    settings = {str(key).replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(settings) - FIELD_NAMES)
    if unknown:
        raise InputError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return settings


def build_config(file_settings: dict[str, Any], flag_settings: dict[str, Any]) -> SearchConfig:
    """Merge settings (flags win over the file) into a validated config."""
    merged = {**file_settings, **flag_settings}
    typed = {name: _coerce(name, value) for name, value in merged.items()}
    try:
        return SearchConfig(**typed)
    except TypeError as error:
        raise InputError(f"invalid search settings: {error}") from None


def _coerce(name: str, value: Any) -> Any:
    """Give a setting its type, or say which setting is wrong and why.

    YAML has already typed the value; what click would convert silently from it is refused,
    since it is almost always a mistake: a boolean where a number belongs (``trials: yes``) or
    a fraction where a whole number does (``epochs: 2.5`` would train 2).
    """
    kind = SETTING_TYPES.get(name)
    if value is None or kind is None:
        return value
    if isinstance(value, bool) and kind in (click.INT, click.FLOAT):
        raise InputError(f"setting {name} must be a number, got {value!r}")
    if kind is click.INT and isinstance(value, float) and not value.is_integer():
        raise InputError(f"setting {name} must be a whole number, got {value!r}")
    try:
        return kind.convert(value, None, None)
    except click.BadParameter as error:
        raise InputError(f"setting {name}: {error.message}") from None
