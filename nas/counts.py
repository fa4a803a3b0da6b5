"""How many trials of a study were what: the one definition every output counts by.

A search's closing line, `nas report`'s title and report.md, the plots' legends and
``pareto.json`` all say how many candidates were trained, stopped early, over budget or on the
front. They read it from `StudyCounts.of`, so one study gives one set of numbers everywhere:

- ``searched``: searched candidates trained, to the end or stopped early (what --trials counts);
- ``baselines``: zoo baselines trained, to the end or stopped early (never counted by --trials);
- ``trained``: candidates trained to the end, baselines included (what the front is taken over);
- ``stopped_early``: candidates stopped before their last epoch, at a rung or by the median rule;
- ``over_budget``: candidates priced over a budget, hence never trained;
- ``failed``, ``interrupted``, ``duplicates``: the other outcomes (`nas.trials.Outcome`);
- ``confirm_runs``: finished runs of the front and baselines with other seeds (`nas.confirm`);
- ``front``: members of the Pareto front (`nas.front.pareto_rows`).

``searched + baselines == trained + stopped_early`` always holds: every candidate that trained
is either searched or a baseline, and either reached its last epoch or did not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from nas.front import pareto_rows
from nas.study import confirm_runs
from nas.trials import Outcome, TrialAttrs


@dataclass(frozen=True)
class StudyCounts:
    """The counts of one study; see the module's docstring for what each one holds."""

    searched: int = 0
    baselines: int = 0
    trained: int = 0
    stopped_early: int = 0
    over_budget: int = 0
    failed: int = 0
    interrupted: int = 0
    duplicates: int = 0
    confirm_runs: int = 0
    front: int = 0

    @classmethod
    def of(cls, study: optuna.Study) -> StudyCounts:
        """Count `study` as it stands: its trials, its confirm runs and its front."""
        outcomes: dict[Outcome, int] = {}
        searched = baselines = 0
        for trial in study.get_trials(deepcopy=False):
            attrs = TrialAttrs.of(trial)
            if attrs.outcome is None:
                continue
            outcomes[attrs.outcome] = outcomes.get(attrs.outcome, 0) + 1
            if attrs.outcome.counts:
                searched += attrs.baseline is None
                baselines += attrs.baseline is not None
        return cls(
            searched=searched,
            baselines=baselines,
            trained=outcomes.get(Outcome.TRAINED, 0),
            stopped_early=outcomes.get(Outcome.STOPPED, 0) + outcomes.get(Outcome.NOT_PROMOTED, 0),
            over_budget=outcomes.get(Outcome.INFEASIBLE, 0),
            failed=outcomes.get(Outcome.FAILED, 0),
            interrupted=outcomes.get(Outcome.INTERRUPTED, 0),
            duplicates=outcomes.get(Outcome.DUPLICATE, 0),
            confirm_runs=sum(len(runs) for runs in confirm_runs(study).values()),
            front=len(pareto_rows(study)),
        )

    def to_dict(self) -> dict[str, int]:
        """The counts as ``pareto.json`` holds them, under the names of the fields."""
        return dataclasses.asdict(self)

    def sentence(self) -> str:
        """The counts in one line, as the search's closing line and `nas report` print them.

        ``10 searched candidates + 4 zoo baselines trained (12 to the end, 2 stopped early);
        13 over budget (not trained), 0 failed``, then confirm runs and the rarer outcomes
        where there are any.
        """
        trained = _plural(self.searched, "searched candidate")
        if self.baselines:
            trained += f" + {_plural(self.baselines, 'zoo baseline')}"
        parts = [
            f"{trained} trained ({self.trained} to the end, {self.stopped_early} stopped early)",
            f"{self.over_budget} over budget (not trained)",
            f"{self.failed} failed",
        ]
        for n, one, many in (
            (self.interrupted, "interrupted", "interrupted"),
            (self.duplicates, "duplicate of a trained arch", "duplicates of a trained arch"),
            (self.confirm_runs, "confirm run", "confirm runs"),
        ):
            if n:
                parts.append(f"{n} {one if n == 1 else many}")
        return f"{parts[0]}; {', '.join(parts[1:])}"

    def front_title(self) -> str:
        """``3 of 12 trained to the end``: how the front is introduced wherever it is shown."""
        return f"{self.front} of {self.trained} trained to the end"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def baselines_planned(study: optuna.Study) -> int:
    """Zoo baselines the search trains: those trained already and those still queued.

    Counted by name, so a baseline queued again after a failure counts once.
    """
    names = set()
    for trial in study.get_trials(deepcopy=False):
        attrs = TrialAttrs.of(trial)
        waiting = trial.state is TrialState.WAITING
        if attrs.baseline is not None and (waiting or (attrs.outcome and attrs.outcome.counts)):
            names.add(attrs.baseline)
    return len(names)
