"""What a person sees while a search runs.

On a terminal: a live panel, refreshed in place (trained / target, running, over budget, best
accuracy, ETA, and one row per busy worker: its candidate, epoch, running accuracy and time so
far). Elsewhere (CI logs, pipes): one plain line per event and per epoch, so a log reads as a
history and shows signs of life while candidates train.

Over-budget candidates are priced and never trained; they are told as they happen, a run of
them in one line (``trials 4-5 over budget, not trained: 212, 187 MFLOPs``), so that gaps in the
trial numbers never go unexplained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nas.coverage import Coverage
from nas.trials import Outcome

STILL_TRAINING_S = 60.0
"""In a log, how long the monitor stays silent before a status line says what is training."""

MAX_OVER_BUDGET_PER_LINE = 10
"""Over-budget candidates told in one line; a longer run of them takes several lines."""


@dataclass
class _Running:
    arch: str
    mflops: float
    latency_ms: float
    worker: int
    """The worker slot (1, 2, ...) training it: the lowest one free when it started."""
    started: float
    """When it started (`time.monotonic`)."""
    epoch: int = 0
    val_accuracy: float | None = None


@dataclass(frozen=True)
class _OverBudget:
    number: int
    figure: str
    unit: str


@dataclass
class SearchMonitor:
    target_trials: int
    already_trained: int = 0
    console: Console = field(default_factory=lambda: Console(stderr=True))
    live: bool | None = None
    epochs: int | None = None
    """Epochs each candidate trains for, when known, so that progress reads ``epoch 2/4``."""
    baselines: int = 0
    """Zoo baselines this search trains beside --trials (`nas.counts.baselines_planned`)."""
    baselines_done: int = 0
    """Baselines trained before this run of the search (a resumed study's)."""

    def __post_init__(self) -> None:
        self.n_trained = self.already_trained
        self.n_baselines = self.baselines_done
        self.n_infeasible = self.n_failed = 0
        self.best: tuple[float, float] | None = None  # (accuracy, latency)
        self.running: dict[int, _Running] = {}
        self.start_time = time.monotonic()
        if self.live is None:
            self.live = self.console.is_terminal
        self._live: Live | None = None
        self._over_budget: list[_OverBudget] = []
        self._last_line = time.monotonic()

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> SearchMonitor:
        if self.live:
            # Rendered on every refresh, not only on events, so the time columns tick.
            self._live = Live(
                console=self.console,
                refresh_per_second=2,
                transient=True,
                get_renderable=self._render,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._tell_over_budget()
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def say(self, message: str) -> None:
        self._tell_over_budget()
        self._print(message)

    def coverage(self, coverage: Coverage | None) -> None:
        """Say where the trained candidates lie in latency, and which zoo networks within the
        budget have a searched candidate at no more latency (`nas.coverage`)."""
        if coverage is None:
            return
        bands = ", ".join(f"{band}: {n}" for band, n in coverage.band_rows())
        self.say(f"searched candidates trained per latency band: {bands}")
        for challenge in coverage.challenges:
            zoo = challenge.zoo
            accuracy = f", {zoo.row.accuracy:.2%}" if zoo.row else ""
            if challenge.best is None:
                found = challenge.verdict
            else:
                best = challenge.best
                found = (
                    f"{challenge.n_within} searched at no more latency, the most accurate trial "
                    f"{best.number} ({best.front_accuracy:.2%} at {best.latency_ms:.2f} ms): "
                    f"{challenge.verdict}"
                )
            self.say(f"  vs {zoo.name} ({zoo.latency_ms:.2f} ms{accuracy}): {found}")

    # ---- events -------------------------------------------------------------------------

    def started(
        self, number: int, arch: str, mflops: float, latency_ms: float, note: str = ""
    ) -> None:
        busy = {run.worker for run in self.running.values()}
        worker = next(slot for slot in range(1, len(busy) + 2) if slot not in busy)
        self.running[number] = _Running(arch, mflops, latency_ms, worker, time.monotonic())
        self._event(
            f"trial {number} started on worker {worker}: {mflops:.1f} MFLOPs, "
            f"{latency_ms:.2f} ms{f' ({note})' if note else ''}"
        )

    def infeasible_skipped(self, number: int, mflops: float, latency_ms: float, why: str) -> None:
        """A candidate priced over budget: told with the next event, in one line with the
        other over-budget candidates before it."""
        self.n_infeasible += 1
        if why.startswith("MFLOPs"):
            self._over_budget.append(_OverBudget(number, f"{mflops:.0f}", "MFLOPs"))
        elif why.startswith("ms"):
            self._over_budget.append(_OverBudget(number, f"{latency_ms:.1f}", "ms"))
        else:
            self._over_budget.append(_OverBudget(number, why, ""))
        if len(self._over_budget) >= MAX_OVER_BUDGET_PER_LINE:
            self._tell_over_budget()

    def epoch(
        self, number: int, epoch: int, val_accuracy: float | None, seconds: float | None = None
    ) -> None:
        """A candidate finished an epoch: a row of the panel, or a line of the log."""
        run = self.running.get(number)
        if run is None:
            return
        run.epoch, run.val_accuracy = epoch, val_accuracy
        if self._live is None:
            accuracy = f"{val_accuracy:.4f}" if val_accuracy is not None else "-"
            took = f" ({seconds:.0f} s)" if seconds is not None else ""
            self._print(
                f"trial {number} epoch {self._epoch_text(epoch)}: val acc {accuracy}{took} "
                f"[worker {run.worker}]"
            )

    def finished(
        self,
        number: int,
        outcome: Outcome,
        accuracy: float,
        latency_ms: float,
        baseline: str | None = None,
    ) -> None:
        """A candidate trained; a `baseline` (zoo network) does not count toward the target."""
        self.running.pop(number, None)
        if baseline is None:
            self.n_trained += 1
            progress = f"{self.n_trained}/{self.target_trials}"
        else:
            self.n_baselines += 1
            of = f"/{max(self.baselines, self.n_baselines)}" if self.baselines else ""
            progress = f"baseline {self.n_baselines}{of}: {baseline}"
        if self.best is None or accuracy > self.best[0]:
            self.best = (accuracy, latency_ms)
        self._event(
            f"trial {number} {outcome.words}: accuracy {accuracy:.4f}, "
            f"{latency_ms:.2f} ms [{progress}]"
        )

    def failed(self, number: int, error: str, retrying: bool) -> None:
        self.running.pop(number, None)
        self.n_failed += 1
        self._event(f"trial {number} failed: {error}" + ("; retrying it" if retrying else ""))

    # ---- what is printed ----------------------------------------------------------------

    def _event(self, message: str) -> None:
        self._tell_over_budget()
        self._print(message)

    def _print(self, message: str) -> None:
        console = self._live.console if self._live is not None else self.console
        console.print(message, highlight=False, markup=False, soft_wrap=True)
        self._last_line = time.monotonic()

    def tick(self) -> None:
        """Called while the driver waits: in a log that said nothing for `STILL_TRAINING_S`,
        a status line with each running candidate, as Ray Tune prints its status table."""
        if self._live is not None or not self.running:
            return
        now = time.monotonic()
        if now - self._last_line < STILL_TRAINING_S:
            return
        runs = "; ".join(
            f"trial {number} on worker {run.worker}: {run.epoch}/{self.epochs or '?'} epochs "
            f"done, {now - run.started:.0f} s"
            for number, run in sorted(self.running.items(), key=lambda item: item[1].worker)
        )
        self._print(f"still training: {runs}")

    def _tell_over_budget(self) -> None:
        """One line for the over-budget candidates not told yet."""
        if not self._over_budget:
            return
        told, self._over_budget = self._over_budget, []
        units = {item.unit for item in told}
        figures = ", ".join(item.figure for item in told)
        if len(units) == 1 and "" not in units:
            figures += f" {units.pop()}"
        else:
            figures = "; ".join(f"{item.figure} {item.unit}".strip() for item in told)
        word = "trial" if len(told) == 1 else "trials"
        numbers = _ranges([item.number for item in told])
        self._print(f"{word} {numbers} over budget, not trained: {figures}")

    def _epoch_text(self, epoch: int) -> str:
        return f"{epoch}/{self.epochs}" if self.epochs else str(epoch)

    def eta_seconds(self) -> float | None:
        done = self.n_trained - self.already_trained
        if done <= 0:
            return None
        elapsed = time.monotonic() - self.start_time
        return elapsed / done * max(0, self.target_trials - self.n_trained)

    def summary_line(self) -> str:
        best = (
            f"best accuracy {self.best[0]:.4f} at {self.best[1]:.2f} ms"
            if self.best
            else "no trained candidate yet"
        )
        eta = self.eta_seconds()
        eta_text = f", ETA {eta / 60:.1f} min" if eta is not None else ""
        baselines = (
            f", baselines {self.n_baselines}/{max(self.baselines, self.n_baselines)}"
            if self.baselines
            else ""
        )
        return (
            f"trained {self.n_trained}/{self.target_trials}{baselines}, running "
            f"{len(self.running)}, over budget {self.n_infeasible}, failed {self.n_failed}; "
            f"{best}{eta_text}"
        )

    def _render(self) -> Group:
        now = time.monotonic()
        rows = [
            (
                str(number),
                str(run.worker),
                self._epoch_text(run.epoch),
                f"{run.val_accuracy:.4f}" if run.val_accuracy is not None else "-",
                f"{now - run.started:.0f} s",
                f"{run.mflops:.1f}",
                f"{run.latency_ms:.2f}",
                run.arch,
            )
            for number, run in sorted(self.running.items(), key=lambda item: item[1].worker)
        ]
        table = Table(box=None, show_header=True, header_style="bold")
        # The figures keep their full width; only the arch string, hundreds of characters
        # long, gives way to the terminal's width (it is in the study and the final table).
        headers = ("trial", "worker", "epoch", "val acc", "time", "MFLOPs", "ms")
        for index, column in enumerate(headers):
            width = max([len(column), *(len(row[index]) for row in rows)])
            table.add_column(column, no_wrap=True, justify="right", min_width=width)
        table.add_column("arch", overflow="ellipsis", no_wrap=True, ratio=1, min_width=10)
        for row in rows:
            table.add_row(*row)
        return Group(Text(self.summary_line(), style="bold"), table)


def _ranges(numbers: list[int]) -> str:
    """``4-5, 9``: sorted trial numbers with consecutive runs joined."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
