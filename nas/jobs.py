"""A candidate out on a worker: what the driver knows of it between dispatch and its last record.

Proposals make jobs (`nas.proposals`), the driver streams epochs into them, stopping rules judge
them (`nas.stopping`) and the recorder writes them to the study (`nas.recorder`); each of those
reads this one record, so none of them needs another.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import optuna

from nas.evaluators.results import EpochRecord, Status, TrialResult
from nas.pricing import Price
from nas.search_spaces.arch import Arch
from nas.trials import TrialAttrs


@dataclass
class Job:
    """A candidate out on a worker."""

    trial: optuna.Trial
    arch: Arch
    price: Price
    attempt: int
    baseline: str | None = None
    """The zoo network's name when the candidate is a baseline the search must beat."""
    dispatched: float = field(default_factory=time.monotonic)
    curve: list[EpochRecord] = field(default_factory=list)
    host: str | None = None
    node_id: str | None = None
    device: dict[str, Any] | None = None
    """Where the worker runs, once it has streamed a record."""

    @property
    def searched(self) -> bool:
        """Whether the candidate counts toward --trials (a baseline does not)."""
        return self.baseline is None

    def partial_result(self) -> TrialResult:
        """What a candidate stopped early is recorded with: its last epoch, as a finished one is."""
        last = self.curve[-1]
        return TrialResult(
            status=Status.STOPPED,
            accuracy=last.val_accuracy,
            curve=list(self.curve),
            train_seconds=round(sum(epoch.seconds for epoch in self.curve), 3),
            images_per_second=last.images_per_second,
            host=self.host or "",
            val_count=last.val_count,
        )

    def note(self) -> str:
        """What the monitor says of the job beside its arch: a baseline, a retry."""
        notes = []
        if self.baseline:
            notes.append(f"baseline {self.baseline}")
        if self.attempt > 1:
            retry_of = TrialAttrs.of(self.trial).retry_of
            notes.append(f"attempt {self.attempt}, retry of trial {retry_of}")
        return ", ".join(notes)

    def curve_attr(self) -> list[dict[str, Any]]:
        """The epochs streamed so far, as the trial's `curve` attribute stores them."""
        return [epoch.to_dict() for epoch in self.curve]
