"""A `nas search` driver in its own process on the `tiny` space, for tests that stop,
restart or race it as a user would."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState
from tiny_search import TINY_SEARCH


def search_args(storage: str, study: str, out: Path, *extra: str) -> list[str]:
    """`nas search` arguments of a two-trial, one-worker search; `extra` flags win (click keeps
    the last value of an option given twice)."""
    return [
        "search",
        "--space",
        "tiny",
        "--budget-mflops",
        str(TINY_SEARCH["budget_mflops"]),
        "--limit-train",
        "400",
        "--epochs",
        "3",
        "--batch-size",
        "64",
        "--workers",
        "1",
        "--trials",
        "2",
        "--no-warm-start",
        "--confirm-seeds",
        "0",
        "--storage",
        storage,
        "--study",
        study,
        "--out",
        str(out),
        *extra,
    ]


def driver_command(storage: str, study: str, out: Path, *extra: str) -> list[str]:
    """`search_args` as a command line of this interpreter."""
    return [sys.executable, "-m", "nas.cli", *search_args(storage, study, out, *extra)]


def running_trials(storage: optuna.storages.BaseStorage, study: str) -> int:
    """RUNNING trials of `study`; 0 while it does not exist or is being written."""
    try:
        study_id = storage.get_study_id_from_name(study)
        trials = storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
    except Exception:  # not created yet, or mid-write by the search
        return 0
    return len(trials)


def wait_for_running(
    storage: str, study: str, process: subprocess.Popen, timeout_s: float = 240
) -> None:
    """Return once the driver in `process` trains a trial; fail if it exits or never does.

    One storage, opened once, polled every tenth of a second: a two-trial search on an idle
    machine runs each trial for a few seconds, and opening the storage anew for each poll took
    about as long on PostgreSQL."""
    deadline = time.monotonic() + timeout_s
    opened: optuna.storages.BaseStorage | None = None
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            if opened is None and _made(storage):
                with contextlib.suppress(Exception):  # the server is not answering yet
                    opened = optuna.storages.RDBStorage(storage)
            if opened is not None and running_trials(opened, study):
                return
            time.sleep(0.1)
    finally:
        if isinstance(opened, optuna.storages.RDBStorage):
            opened.engine.dispose()
    raise AssertionError("the search never started a trial")


def _made(storage: str) -> bool:
    """Whether the search has made its database: opening a SQLite file that is not there
    would make it, under the driver's feet."""
    prefix = "sqlite:///"
    return not storage.startswith(prefix) or Path(storage.removeprefix(prefix)).exists()
