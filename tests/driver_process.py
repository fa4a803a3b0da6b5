"""A `nas search` driver in its own process on the `tiny` space, for tests that stop,
restart or race it as a user would."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy
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


RUNNING_SQL = sqlalchemy.text(
    "SELECT COUNT(*) FROM trials JOIN studies ON trials.study_id = studies.study_id "
    "WHERE studies.study_name = :study AND trials.state = 'RUNNING'"
)
"""RUNNING trials of a study, read from Optuna's tables without Optuna: an `RDBStorage` opened
beside a driver that is still making its database creates the same tables, and one of the two
fails with "table ... already exists"."""


def wait_for_running(
    storage: str, study: str, process: subprocess.Popen, timeout_s: float = 240
) -> None:
    """Return once the driver in `process` trains a trial; fail if it exits or never does.

    One engine, made once, polled every tenth of a second: a two-trial search on an idle
    machine runs each trial for a few seconds, and connecting anew for each poll took about as
    long on PostgreSQL. It only reads (`RUNNING_SQL`), so it never makes a table."""
    deadline = time.monotonic() + timeout_s
    engine: sqlalchemy.Engine | None = None
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            if engine is None and _made(storage):
                engine = sqlalchemy.create_engine(storage)
            if engine is not None and _running(engine, study):
                return
            time.sleep(0.1)
    finally:
        if engine is not None:
            engine.dispose()
    raise AssertionError("the search never started a trial")


def _running(engine: sqlalchemy.Engine, study: str) -> int:
    """`RUNNING_SQL`; 0 while the tables or the server are not there yet."""
    try:
        with engine.connect() as connection:
            return int(connection.execute(RUNNING_SQL, {"study": study}).scalar_one())
    except sqlalchemy.exc.SQLAlchemyError:
        return 0


def _made(storage: str) -> bool:
    """Whether the search has made its database: opening a SQLite file that is not there
    would make it, under the driver's feet."""
    prefix = "sqlite:///"
    return not storage.startswith(prefix) or Path(storage.removeprefix(prefix)).exists()
