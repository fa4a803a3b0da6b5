"""Opening Optuna's RDB storage with settings that survive real use.

Optuna's defaults are tuned for a single short script. A search runs for hours, is killed and
resumed, and is read by the dashboard while it writes, so:

- SQLite runs in WAL mode (readers never block the writer) with a busy timeout (two writers
  wait for each other instead of failing with "database is locked").
- PostgreSQL connections are checked before use and recycled, because a search idles for
  minutes between writes and servers and proxies drop idle connections; the pool stays small
  because only the search driver talks to the database.
- Connection problems become one-line :class:`~nas.errors.InputError` messages with the
  password masked.
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import time
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage
from sqlalchemy.engine import make_url

from nas.errors import InputError
from nas.storage.outages import ResilientRDBStorage
from nas.storage.urls import DEFAULT_STORAGE_URL, mask_password, normalize_storage_url, sqlite_path

_logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0

# Idle connections older than this are replaced; below common server and proxy idle limits.
_POOL_RECYCLE_S = 1800
_POSTGRES_POOL_SIZE = 4
# libpq rounds connect_timeout up to at least 2 s.
_MIN_CONNECT_TIMEOUT_S = 2


@dataclass(frozen=True)
class StudyInfo:
    """What ``nas report`` and the CLI show about a study without loading its trials."""

    name: str
    n_trials: int
    directions: tuple[str, ...]
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    system_attrs: Mapping[str, Any] = field(default_factory=dict)


def open_storage(
    url: str = DEFAULT_STORAGE_URL,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    engine_kwargs: Mapping[str, Any] | None = None,
    outage_window_s: float = 0.0,
) -> ResilientRDBStorage:
    """Open (creating if needed) the Optuna storage at ``url``.

    Args:
        url:
            A storage URL or a ``.db`` path; see :func:`~nas.storage.normalize_storage_url`.
        timeout_s:
            How long to wait for the database before giving up: SQLite's busy timeout (waiting
            for another writer's lock) and PostgreSQL's connect timeout (so an unreachable
            server fails in seconds, not minutes).
        engine_kwargs:
            Extra :func:`sqlalchemy.create_engine` arguments, applied over ours.
        outage_window_s:
            How long a call waits out a lost connection before it raises
            :class:`~nas.storage.outages.StorageUnavailable`; 0 fails at once. The long-running
            drivers (search, finalize) pass :data:`~nas.storage.outages.OUTAGE_WINDOW_S`.

    Raises:
        InputError: The URL is malformed, the server is unreachable, authentication fails,
            the database does not exist, or its schema belongs to another Optuna version.
    """
    url = normalize_storage_url(url)
    if timeout_s <= 0:
        raise InputError(f"storage timeout must be positive, got {timeout_s}")

    kwargs = _default_engine_kwargs(url, timeout_s)
    kwargs.update(engine_kwargs or {})
    try:
        return _create(url, kwargs, outage_window_s)
    except sqlalchemy.exc.DBAPIError as exc:
        raise InputError(_explain_connect_error(url, exc)) from exc
    except RuntimeError as exc:
        if "table schema" not in str(exc):
            raise
        raise InputError(
            f"storage {mask_password(url)} was written by another Optuna version: "
            f"{_one_line(str(exc))}"
        ) from exc


_SCHEMA_RACE_ATTEMPTS = 3


def _create(url: str, kwargs: dict[str, Any], outage_window_s: float) -> ResilientRDBStorage:
    """The storage, tolerating another process creating the same new database's schema at the
    same moment (a search and a dashboard started together on a new file): Optuna's version
    row then collides, and the schema is already there on the next try."""
    for attempt in range(1, _SCHEMA_RACE_ATTEMPTS + 1):
        try:
            return ResilientRDBStorage(url, engine_kwargs=kwargs, outage_window_s=outage_window_s)
        except sqlalchemy.exc.IntegrityError:
            if attempt == _SCHEMA_RACE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def list_studies(storage: str | RDBStorage) -> list[StudyInfo]:
    """Summarize every study in ``storage``, oldest first, without loading trials.

    Given a URL, the connection is closed afterwards, since a summary is all the caller wants.
    """
    rdb = _as_storage(storage)
    try:
        return [
            StudyInfo(
                name=study.study_name,
                n_trials=rdb.get_n_trials(study._study_id),
                directions=tuple(d.name.lower() for d in study.directions),
                user_attrs=dict(study.user_attrs),
                system_attrs=dict(study.system_attrs),
            )
            for study in rdb.get_all_studies()
        ]
    finally:
        if rdb is not storage:
            rdb.remove_session()
            rdb.engine.dispose()


def load_study(
    storage: str | RDBStorage,
    name: str,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Load the study ``name``; a wrong name is a user mistake, so say which names exist.

    Raises:
        InputError: No study of that name exists in ``storage``.
    """
    storage = _as_storage(storage)
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        pass
    names = [study.study_name for study in storage.get_all_studies()]
    where = mask_password(storage.url)
    if not names:
        raise InputError(f"no study named {name!r} in {where}: the storage has no studies yet")
    shown = ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
    raise InputError(f"no study named {name!r} in {where}; available studies: {shown}")


def _as_storage(storage: str | RDBStorage) -> RDBStorage:
    return storage if isinstance(storage, RDBStorage) else open_storage(storage)


def _default_engine_kwargs(url: str, timeout_s: float) -> dict[str, Any]:
    if make_url(url).get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            _prepare_sqlite_file(url, path, timeout_s)
        # pysqlite's "timeout" is SQLite's busy timeout. It lives in connect_args rather than in
        # an engine event so that it survives pickling of the storage.
        return {"connect_args": {"timeout": timeout_s}}
    return {
        "pool_pre_ping": True,
        "pool_recycle": _POOL_RECYCLE_S,
        "pool_size": _POSTGRES_POOL_SIZE,
        "max_overflow": _POSTGRES_POOL_SIZE,
        "pool_timeout": timeout_s,
        "connect_args": {"connect_timeout": max(_MIN_CONNECT_TIMEOUT_S, math.ceil(timeout_s))},
    }


def _prepare_sqlite_file(url: str, path: Path, timeout_s: float) -> None:
    """Create the parent directory and switch the file to WAL before Optuna connects.

    WAL is a property of the database file, not of a connection, so setting it once here holds
    for every later connection, in this process or any other.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=timeout_s)) as connection:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    except (OSError, sqlite3.Error) as exc:
        raise InputError(
            f"cannot open SQLite storage {mask_password(url)}: {_one_line(str(exc))}; check that "
            f"{path.parent} is a writable directory and {path.name} is a SQLite database"
        ) from exc
    if mode.lower() != "wal":
        # Network filesystems cannot do WAL; SQLite keeps its rollback journal there.
        _logger.warning("SQLite storage %s runs in %s mode, not WAL.", mask_password(url), mode)


def _explain_connect_error(url: str, exc: sqlalchemy.exc.DBAPIError) -> str:
    masked = mask_password(url)
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    reason = _one_line(lines[0]) if lines else type(exc).__name__
    # libpq: 'connection to server at "h", port 5432 failed: FATAL:  database "x" does not exist'
    reason = re.sub(r"^.*failed:\s*", "", reason)
    reason = re.sub(r"^(FATAL|ERROR):\s*", "", reason)
    password = make_url(url).password
    if password:
        reason = reason.replace(str(password), "***")
    if make_url(url).get_backend_name() == "sqlite":
        return (
            f"cannot open SQLite storage {masked}: {reason}; check that the file is a SQLite "
            "database and its directory is writable"
        )
    parsed = make_url(url)
    lowered = reason.lower()
    if "database" in lowered and "does not exist" in lowered:
        hint = f"create it (createdb {parsed.database}) or fix the database name in the URL"
    elif any(word in lowered for word in ("password", "authentication", "role", "user")):
        hint = "check the user name and password in the URL"
    else:
        hint = (
            f"check that PostgreSQL is running and reachable at "
            f"{parsed.host or 'the local socket'}:{parsed.port or 5432}"
        )
    return f"cannot connect to PostgreSQL storage {masked}: {reason}; {hint}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
