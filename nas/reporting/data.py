"""Everything a report shows, read once from a study: the trained trials, the front, the zoo.

The plots and the summary draw from this one record, so the PNG, the HTML and the Markdown
cannot disagree about which trials are on the front or where a zoo network sits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import optuna

from nas.counts import StudyCounts
from nas.coverage import Coverage
from nas.errors import InputError
from nas.front import TrainedRow, mark_ties, pareto_front, trained_rows
from nas.latency_order import CloseInLatency, close_in_latency
from nas.search_spaces.zoo import ZOO
from nas.storage import mask_password
from nas.study import count_outcomes
from nas.study_attrs import DatasetInfo, StudyAttrs
from nas.trials import TrialAttrs


@dataclass(frozen=True)
class ZooMark:
    """A hand-designed network placed on the plots for comparison.

    `trial` is set when the study trained it (then it has an accuracy); otherwise only its cost
    is known, and the plots mark it on the cost axes alone. `latency_ms` is None when the
    study's latency table cannot be loaded here or cannot price the network.
    """

    name: str
    arch: str
    mflops: float
    latency_ms: float | None
    trial: int | None = None
    accuracy: float | None = None
    accuracy_interval: tuple[float, float] | None = None


@dataclass(frozen=True)
class ReportData:
    study_name: str
    storage: str
    config: dict[str, Any]
    dataset: DatasetInfo
    target: str
    counts: StudyCounts
    """How many trials were what: the numbers the search's summary and pareto.json give."""
    trained: list[TrainedRow]
    front: list[TrainedRow]
    mflops_front: list[TrainedRow]
    zoo: list[ZooMark]
    notes: list[str] = field(default_factory=list)
    coverage: Coverage | None = None
    """Trained candidates per latency band and against each zoo network within the budget
    (`nas.coverage`); None where the study's space or latency table cannot be read here."""
    close_in_latency: CloseInLatency | None = None
    """Front neighbours closer in latency than the stated error of the table the study was
    priced with (`nas.latency_order`)."""

    @property
    def budget_mflops(self) -> float | None:
        return self.config.get("budget_mflops")

    @property
    def budget_ms(self) -> float | None:
        return self.config.get("budget_ms")

    @property
    def input_size(self) -> int:
        return int(self.config.get("input_size") or 224)

    def zoo_name(self, row: TrainedRow) -> str | None:
        """The zoo network a trained row is, if any (matched by trial, so by arch too)."""
        return row.name or next((m.name for m in self.zoo if m.trial == row.number), None)


def collect(study: optuna.Study, storage_url: str) -> ReportData:
    """Read the study; a study without a single trained candidate has nothing to report."""
    rows = trained_rows(study)
    if not rows:
        outcomes = count_outcomes(study)
        summary = (
            ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())) or "no trials"
        )
        raise InputError(
            f"study {study.study_name!r} has no trained trials yet ({summary}); "
            f"run or resume `nas search` first"
        )
    attrs = StudyAttrs.of(study)
    config = dict(attrs.config or {})
    target = str(attrs.target or _first_target(study))
    notes: list[str] = []
    zoo = _zoo_marks(study, rows, config, target, notes)
    coverage = _coverage(study, attrs, rows, notes)
    front = mark_ties(pareto_front(rows))
    return ReportData(
        study_name=study.study_name,
        storage=mask_password(storage_url),
        config=config,
        dataset=attrs.dataset or DatasetInfo(),
        target=target,
        counts=StudyCounts.of(study),
        trained=rows,
        front=front,
        mflops_front=_mflops_front(rows),
        zoo=zoo,
        notes=notes,
        coverage=coverage,
        close_in_latency=close_in_latency(front, attrs.latency_table, target),
    )


def _mflops_front(rows: list[TrainedRow]) -> list[TrainedRow]:
    """The same dominance rule as the latency front, with MFLOPs as the cost."""
    return pareto_front(rows, cost=attrgetter("mflops"))


def _zoo_marks(
    study: optuna.Study,
    rows: list[TrainedRow],
    config: dict[str, Any],
    target: str,
    notes: list[str],
) -> list[ZooMark]:
    """Zoo networks the study trained (from their trials), and the others at their cost.

    A zoo network enqueued by parameters carries no `zoo` attribute, so trials are matched by
    arch string as well as by name.
    """
    from nas.evaluators.flops import estimate_cost

    by_arch = {factory().to_string(): name for name, factory in ZOO.items()}
    trained: dict[str, TrainedRow] = {}
    for row in rows:
        name = row.zoo or by_arch.get(row.arch)
        if name and (name not in trained or row.accuracy > trained[name].accuracy):
            trained[name] = row
    size = int(config.get("input_size") or 224)
    table = _latency_table(target, notes)
    marks = []
    for name, factory in ZOO.items():
        if name in trained:
            row = trained[name]
            marks.append(
                ZooMark(
                    name,
                    row.arch,
                    row.mflops,
                    row.latency_ms,
                    trial=row.number,
                    accuracy=row.accuracy,
                    accuracy_interval=row.interval,
                )
            )
            continue
        arch = factory()
        try:
            mflops = estimate_cost(arch, (3, size, size)).mflops
        except InputError as error:  # an input smaller than this network can take
            notes.append(f"zoo network {name} not shown: {error}")
            continue
        latency = None
        if table is not None:
            try:
                latency = table.predict(arch, (3, size, size)).total_ms
            except InputError:
                pass  # the table lacks this network's operators and has no cost model
        marks.append(ZooMark(name, arch.to_string(), mflops, latency))
    return marks


def _coverage(
    study: optuna.Study, attrs: StudyAttrs, rows: list[TrainedRow], notes: list[str]
) -> Coverage | None:
    """The study's latency coverage, priced anew from its configuration (space, target and
    budget), as the search that made it priced."""
    from nas.evaluators.latency import load_table
    from nas.pricing import Pricer
    from nas.reach import study_coverage
    from nas.search_spaces.space import load_space

    try:
        config = attrs.search_config()
        if config is None:
            return None
        table = load_table(config.target)
        space = load_space(config.space)
        return study_coverage(study, config, space, Pricer(config, table), rows=rows)
    except InputError as error:
        notes.append(f"no latency coverage: {error}")
        return None


def _latency_table(target: str, notes: list[str]) -> Any:
    from nas.evaluators.latency import load_table

    try:
        return load_table(target)
    except InputError as error:
        notes.append(f"zoo networks the study did not train have no latency here: {error}")
        return None


def _first_target(study: optuna.Study) -> str:
    for trial in study.get_trials(deepcopy=False):
        target = TrialAttrs.of(trial).target
        if target is not None:
            return target
    return "unknown"
