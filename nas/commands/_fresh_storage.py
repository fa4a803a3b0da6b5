"""A command that fails before its first study leaves no database behind.

A SQLite database and its artifact folder appear the moment a driver opens the storage and
takes its lease, which is before Ray is joined or a GPU checked. A start that fails there (a
Ray address nothing answers on, a flag only the cluster can judge) would leave an empty
``nas.db`` and ``artifacts/`` that look like a study to the next command. `FreshStorage` notes
which of them did not exist before, and removes them again if they hold nothing: no study, and
no lease of another driver that is starting beside this one.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from nas.storage import sqlite_path
from nas.storage.artifacts import ARTIFACT_DIRNAME

_SIDE_FILES = ("-wal", "-shm", "-journal")
"""SQLite's files beside the database, in WAL and rollback mode."""


class FreshStorage:
    """The SQLite file and artifact folder a command is about to create, if it creates them."""

    def __init__(self, storage: str, artifact_dir: str | None) -> None:
        database = sqlite_path(storage)
        self.database = database if database is not None and not database.exists() else None
        artifacts = (
            Path(artifact_dir)
            if artifact_dir is not None
            else (database.parent / ARTIFACT_DIRNAME if database is not None else None)
        )
        self.artifacts = artifacts if artifacts is not None and not artifacts.exists() else None

    def remove_if_unused(self) -> None:
        """Remove what this command created, if it holds no study and no other driver's lease."""
        if self.database is not None and self.database.exists():
            if not _holds_nothing(self.database):
                return
            for path in (self.database, *(Path(f"{self.database}{s}") for s in _SIDE_FILES)):
                path.unlink(missing_ok=True)
        if self.artifacts is not None and self.artifacts.is_dir():
            try:
                self.artifacts.rmdir()  # only if empty
            except OSError:
                pass


def _holds_nothing(database: Path) -> bool:
    """Whether the database has no study and no lease row (tables absent count as empty)."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            for table in ("studies", "nas_study_leases"):
                if table in tables:
                    (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
                    if count:
                        return False
    except sqlite3.Error:  # not a database we can read: not ours to remove
        return False
    return True
