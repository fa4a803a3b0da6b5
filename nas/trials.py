"""What a trial of a search is: its outcome, and the user attributes the driver records on it.

Optuna's states say too little for a search: PRUNED covers a candidate that was over budget, one
stopped early and a duplicate of one already trained, and FAIL covers a crashed worker and an
interrupted driver. The driver therefore records an `Outcome` on every trial, beside what the
candidate cost and how it trained. It is the only writer (`write_attrs`); reports, exports, the
dashboard's user attributes and benchmarks read the same record back (`TrialAttrs.of`), so each
attribute's name is spelled in one place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.evaluators.results import Status, StoredValue, TrialResult

OUTCOME_ATTR = "outcome"
"""The user attribute that holds a trial's `Outcome`."""


class Outcome(StoredValue):
    """What became of a trial, beyond its Optuna state. The values are what studies store."""

    TRAINED = "trained"
    STOPPED = "stopped_early"
    NOT_PROMOTED = "not_promoted"
    """Stopped at a rung of successive halving (`--scheduler asha`), with that rung's result."""
    INFEASIBLE = "infeasible"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    DUPLICATE = "duplicate"

    @property
    def counts(self) -> bool:
        """Whether the trial counts toward --trials: the candidate was trained, fully or not."""
        return self in (Outcome.TRAINED, Outcome.STOPPED, Outcome.NOT_PROMOTED)

    @property
    def has_model(self) -> bool:
        """Whether a trained model stands behind the trial (its own, or a trained twin's)."""
        return self.counts or self is Outcome.DUPLICATE

    @property
    def words(self) -> str:
        """How a report names trials with this outcome."""
        return _WORDS[self]

    @classmethod
    def of_status(cls, status: Status) -> Outcome:
        """The outcome of a trial whose training run ended with `status`."""
        return {Status.OK: cls.TRAINED, Status.STOPPED: cls.STOPPED, Status.FAILED: cls.FAILED}[
            status
        ]

    @classmethod
    def parse(cls, value: Any) -> Outcome | None:
        """A stored value as an outcome; None for a trial without one (or written by hand)."""
        try:
            return cls(value)
        except ValueError:
            return None


_WORDS = {
    Outcome.TRAINED: "trained",
    Outcome.STOPPED: "stopped early",
    Outcome.NOT_PROMOTED: "not promoted past a rung",
    Outcome.DUPLICATE: "duplicates of a trained arch",
    Outcome.INFEASIBLE: "over budget (priced, never trained)",
    Outcome.FAILED: "failed",
    Outcome.INTERRUPTED: "interrupted",
}


@dataclass(frozen=True)
class TrialAttrs:
    """Every user attribute a search records on a trial; None where it was not recorded.

    Written in stages: when the trial is queued (zoo name, retry), priced (arch and costs),
    and finished (outcome, accuracy, curve and where it trained).
    """

    # Queued: what the trial must run, when it is not whatever the sampler suggests.
    zoo: str | None = None
    baseline: str | None = None
    """The zoo network the warm start queued this trial as. Baselines are trained beside the
    search and enter the sampler's history, but do not count toward --trials."""
    retry_of: int | None = None
    attempt: int | None = None
    retry_reason: str | None = None
    # Priced, at the deployment input (cost_input), before anything trains.
    arch: str | None = None
    arch_json: dict[str, Any] | None = None
    mflops: float | None = None
    params: int | None = None
    latency_ms: float | None = None
    target: str | None = None
    latency_n_measured: int | None = None
    latency_n_modelled: int | None = None
    violations: list[float] | None = None
    cost_input: list[int] | None = None
    proxy_input: list[int] | None = None
    nas_version: str | None = None
    driver_seconds: float | None = None
    # Finished.
    outcome: Outcome | None = None
    accuracy: float | None = None
    val_count: int | None = None
    val_correct: int | None = None
    accuracy_interval: list[float] | None = None
    """95% Wilson interval of `accuracy` over its `val_count` validation images."""
    curve: list[dict[str, Any]] | None = None
    recipe: dict[str, Any] | None = None
    seed: int | None = None
    train_seconds: float | None = None
    images_per_second: float | None = None
    worker_host: str | None = None
    worker_node: str | None = None
    worker_device: dict[str, Any] | None = None
    """What the candidate trained on: type (cpu, cuda), and a GPU's name, capability, CUDA and
    cuDNN versions (`nas.evaluators.device.describe_device`); and its precision, the recipe's
    with ``auto`` resolved for that device."""
    wall_seconds: float | None = None
    error: str | None = None
    duplicate_of: int | None = None
    # A confirm run (in the companion study): the search trial it trains again, with `seed`.
    confirms: int | None = None
    # A final run (in the final study): the search trial it trains on the whole training split
    # (None for a zoo network the search never trained), scored once on the test split.
    finalizes: int | None = None
    test_accuracy: float | None = None
    test_count: int | None = None
    test_correct: int | None = None
    test_interval: list[float] | None = None
    """95% Wilson interval of `test_accuracy` over its `test_count` test images."""

    @classmethod
    def of(cls, trial: FrozenTrial | optuna.Trial) -> TrialAttrs:
        """The record of `trial`; attributes this version does not know are left out."""
        return cls.from_dict(trial.user_attrs)

    @classmethod
    def from_dict(cls, attrs: dict[str, Any]) -> TrialAttrs:
        values = {key: value for key, value in attrs.items() if key in _NAMES}
        if OUTCOME_ATTR in values:
            values[OUTCOME_ATTR] = Outcome.parse(values[OUTCOME_ATTR])
        return cls(**values)

    @property
    def counts_toward_trials(self) -> bool:
        """A searched candidate that was trained (fully or stopped early), not a baseline."""
        return bool(self.outcome and self.outcome.counts) and self.baseline is None

    @property
    def accuracies(self) -> list[float]:
        """Validation accuracy after each epoch, in order."""
        return [epoch["val_accuracy"] for epoch in self.curve or []]


_NAMES = frozenset(field.name for field in dataclasses.fields(TrialAttrs))


def check_names(values: dict[str, Any]) -> dict[str, Any]:
    """`values` unchanged, once every key is known to be a `TrialAttrs` field."""
    unknown = set(values) - _NAMES
    if unknown:
        raise TypeError(f"not trial attributes: {', '.join(sorted(unknown))}")
    return values


def result_attrs(result: TrialResult, outcome: Outcome | None = None) -> dict[str, Any]:
    """What a training run measured, as the attributes its trial records.

    The outcome follows the run's status unless the caller knows better (a run stopped early
    by the driver, a failure the driver retries).
    """
    interval, test_interval = result.accuracy_interval, result.test_interval
    tested = (
        {
            "test_accuracy": result.test_accuracy,
            "test_count": result.test_count,
            "test_correct": result.test_correct,
            "test_interval": [round(bound, 6) for bound in test_interval],
        }
        if test_interval
        else {}
    )
    return check_names(
        {
            "outcome": outcome or Outcome.of_status(result.status),
            "accuracy": result.accuracy,
            "val_count": result.val_count,
            "val_correct": result.val_correct if interval else None,
            "accuracy_interval": [round(bound, 6) for bound in interval] if interval else None,
            "curve": [epoch.to_dict() for epoch in result.curve],
            "train_seconds": result.train_seconds,
            "images_per_second": result.images_per_second,
            **tested,
            **({"error": result.error} if result.error else {}),
        }
    )


def write_attrs(trial: optuna.Trial, **values: Any) -> None:
    """Record exactly these attributes on a running trial (None is recorded as null)."""
    for key, value in check_names(values).items():
        trial.set_user_attr(key, value)


def write_frozen_attrs(study: optuna.Study, trial: FrozenTrial, **values: Any) -> None:
    """The same for a trial that is no longer running in this process (one a dead driver left)."""
    for key, value in check_names(values).items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)
