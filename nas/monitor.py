"""What a person sees while a search runs.

On a terminal: a live panel (trained / target, running, infeasible skipped, best feasible
accuracy, ETA, and the running candidates' latest epoch). Elsewhere (CI logs, pipes): one plain
line per event, so a log reads as a history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nas.trials import Outcome


@dataclass
class _Running:
    arch: str
    mflops: float
    latency_ms: float
    epoch: int = 0
    val_accuracy: float | None = None


@dataclass
class SearchMonitor:
    target_trials: int
    already_trained: int = 0
    console: Console = field(default_factory=lambda: Console(stderr=True))
    live: bool | None = None

    def __post_init__(self) -> None:
        self.n_trained = self.already_trained
        self.n_infeasible = self.n_failed = 0
        self.best: tuple[float, float] | None = None  # (accuracy, latency)
        self.running: dict[int, _Running] = {}
        self.start_time = time.monotonic()
        if self.live is None:
            self.live = self.console.is_terminal
        self._live: Live | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> SearchMonitor:
        if self.live:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=2, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def say(self, message: str) -> None:
        self.console.print(message, highlight=False)

    # ---- events -------------------------------------------------------------------------

    def started(
        self, number: int, arch: str, mflops: float, latency_ms: float, note: str = ""
    ) -> None:
        self.running[number] = _Running(arch, mflops, latency_ms)
        self._event(
            f"trial {number} started: {mflops:.1f} MFLOPs, {latency_ms:.2f} ms"
            f"{f' ({note})' if note else ''}"
        )

    def infeasible_skipped(self, number: int, mflops: float, latency_ms: float, why: str) -> None:
        self.n_infeasible += 1
        self._event(
            f"trial {number} infeasible, not trained: {mflops:.1f} MFLOPs, "
            f"{latency_ms:.2f} ms ({why})",
            quiet=True,
        )

    def epoch(self, number: int, epoch: int, val_accuracy: float) -> None:
        if number in self.running:
            self.running[number].epoch = epoch
            self.running[number].val_accuracy = val_accuracy
        self._refresh()

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
        if self.best is None or accuracy > self.best[0]:
            self.best = (accuracy, latency_ms)
        progress = f"baseline {baseline}" if baseline else f"{self.n_trained}/{self.target_trials}"
        self._event(
            f"trial {number} {outcome.words}: accuracy {accuracy:.4f}, "
            f"{latency_ms:.2f} ms [{progress}]"
        )

    def failed(self, number: int, error: str, retrying: bool) -> None:
        self.running.pop(number, None)
        self.n_failed += 1
        self._event(f"trial {number} failed: {error}" + ("; retrying it" if retrying else ""))

    # ---- rendering ------------------------------------------------------------------------

    def _event(self, message: str, quiet: bool = False) -> None:
        if self._live is None:
            if not quiet:
                self.say(message)
            return
        if not quiet:
            self._live.console.print(message, highlight=False)
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def eta_seconds(self) -> float | None:
        done = self.n_trained - self.already_trained
        if done <= 0:
            return None
        elapsed = time.monotonic() - self.start_time
        return elapsed / done * max(0, self.target_trials - self.n_trained)

    def summary_line(self) -> str:
        best = (
            f"best feasible accuracy {self.best[0]:.4f} at {self.best[1]:.2f} ms"
            if self.best
            else "no trained candidate yet"
        )
        eta = self.eta_seconds()
        eta_text = f", ETA {eta / 60:.1f} min" if eta is not None else ""
        return (
            f"trained {self.n_trained}/{self.target_trials}, running {len(self.running)}, "
            f"infeasible skipped {self.n_infeasible}, failed {self.n_failed}; "
            f"{best}{eta_text}"
        )

    def _render(self) -> Group:
        rows = [
            (
                str(number),
                str(run.epoch),
                f"{run.val_accuracy:.4f}" if run.val_accuracy is not None else "-",
                f"{run.mflops:.1f}",
                f"{run.latency_ms:.2f}",
                run.arch,
            )
            for number, run in sorted(self.running.items())
        ]
        table = Table(box=None, show_header=True, header_style="bold")
        # The figures keep their full width; only the arch string, hundreds of characters
        # long, gives way to the terminal's width (it is in the study and the final table).
        for index, column in enumerate(("trial", "epoch", "val acc", "MFLOPs", "ms")):
            width = max([len(column), *(len(row[index]) for row in rows)])
            table.add_column(column, no_wrap=True, justify="right", min_width=width)
        table.add_column("arch", overflow="ellipsis", no_wrap=True, ratio=1, min_width=10)
        for row in rows:
            table.add_row(*row)
        return Group(Text(self.summary_line(), style="bold"), table)
