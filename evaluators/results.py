"""What a training run reports: one record per epoch, and the result a worker returns.

Both are plain data with `to_dict`/`from_dict` so they cross Ray and land in Optuna user
attributes as JSON without any pickling.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from nas.evaluators.uncertainty import correct_of, wilson_interval


class StoredValue(str, Enum):
    """An enum whose members print, format and serialise as the strings files store."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Status(StoredValue):
    """How a training run ended; the values are what results and checkpoints store."""

    OK = "ok"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch: what early stopping and learning-curve plots need.

    `seconds` is the epoch's wall time including its validation pass; `images_per_second`
    counts training images over the training steps only, so it measures the loop, not the
    evaluation. `val_count` is how many validation images the accuracy was measured on: what
    its uncertainty follows from (`nas.evaluators.uncertainty`). A run on the whole training
    split (final training) has no validation split: its accuracy and loss are None.
    """

    epoch: int
    val_accuracy: float | None
    val_loss: float | None
    train_loss: float
    seconds: float
    images_per_second: float
    lr: float = 0.0
    val_count: int = 0

    @property
    def val_correct(self) -> int:
        return correct_of(self.val_accuracy or 0.0, self.val_count)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass(frozen=True)
class TrialResult:
    """The outcome of training one candidate.

    `status` is `Status.OK` (all epochs ran), `Status.STOPPED` (the caller ended it early;
    `accuracy` is then that of the last finished epoch) or `Status.FAILED` (`error` says why: a
    NaN or infinite loss, the wall-time limit, or an exception from the model). A search records
    it on the trial as an `Outcome` (`nas.trials`), which also covers what never trained.

    `accuracy` is the validation accuracy after the final epoch, not the best epoch's. The
    schedules anneal the learning rate to almost zero, so the last epoch is nearly always the
    best; taking the maximum over a noisy curve would add an optimistic bias that grows with the
    number of epochs, and the final value is the one the returned weights actually have.
    `best_accuracy` is kept alongside for those who want it. A final training (no validation
    split, `nas.finalize`) has no `accuracy`; its `test_accuracy` is scored once, at the end.
    """

    status: Status
    accuracy: float | None
    curve: list[EpochRecord] = field(default_factory=list)
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    host: str = ""
    error: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    threads: int = 1
    input_shape: tuple[int, int, int] = (0, 0, 0)
    arch: str = ""
    best_accuracy: float | None = None
    test_accuracy: float | None = None
    val_count: int = 0
    """Validation images `accuracy` was measured on (0 when there is no accuracy)."""
    test_count: int = 0
    """Test images `test_accuracy` was measured on (0 when the test split was not scored)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def val_correct(self) -> int:
        return correct_of(self.accuracy or 0.0, self.val_count)

    @property
    def accuracy_interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of `accuracy`; None when there is none."""
        if self.accuracy is None or not self.val_count:
            return None
        return wilson_interval(self.val_correct, self.val_count)

    @property
    def test_correct(self) -> int:
        return correct_of(self.test_accuracy or 0.0, self.test_count)

    @property
    def test_interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of `test_accuracy`; None when the test split was not scored."""
        if self.test_accuracy is None or not self.test_count:
            return None
        return wilson_interval(self.test_correct, self.test_count)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        values["curve"] = [EpochRecord.from_dict(epoch) for epoch in data.get("curve", [])]
        if "input_shape" in values:
            values["input_shape"] = tuple(values["input_shape"])
        return cls(**values)
