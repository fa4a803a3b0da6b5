"""Retries: which failed candidates run again, and when failing trials stop the search.

A lost worker (killed, out of memory, its node gone) says nothing about the candidate, so the
candidate runs again with the same parameters, up to ``--max-retries`` times; a training run
that failed on its own (a NaN loss, the time limit) would fail again and is not retried. A
cause that fails every trial (a worker that cannot import the package, a time limit no
candidate meets) would otherwise fail trial after trial for as long as the search runs, so a
long enough streak of failures stops the search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nas.jobs import Job

MAX_FAILURES_IN_ROW = 10
"""Consecutive failed trials (at least two per worker slot) before the search gives up."""


@dataclass
class FailureStreak:
    """Failed trials since the last candidate that trained, and what to do about them."""

    max_retries: int
    in_row: int = 0
    last_error: str = ""

    def failed(self, job: Job, error: str, retry: bool) -> bool:
        """Count `job`'s failure; returns whether it runs again (`retry`: its failure may not
        recur, as a lost worker's)."""
        self.in_row += 1
        self.last_error = error
        return retry and job.attempt <= self.max_retries

    def trained(self) -> None:
        """A candidate trained: whatever failed before does not fail everything."""
        self.in_row = 0

    def failing_throughout(self, slots: Callable[[], int]) -> bool:
        """Whether enough trials failed in a row (at least two per slot) to stop asking."""
        # The slot count asks the cluster, so it is only read once the run of failures is long.
        return self.in_row >= MAX_FAILURES_IN_ROW and self.in_row >= 2 * slots()

    def why(self) -> str:
        """What the search says when the streak stops it."""
        return (
            f"{self.in_row} trials in a row failed (the last: {self.last_error}); the study "
            f"keeps them with their errors: fix the cause, then run again with --resume"
        )
