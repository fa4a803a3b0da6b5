"""Waiting out a database that went away: Optuna's RDB storage with bounded retries.

A search runs for hours against one database, and a PostgreSQL restart, a managed failover or a
network blip of seconds to a minute or two would otherwise kill the driver in the middle of a
`tell`, with trials left RUNNING and training thrown away. While the database is unreachable the
candidates keep training on the Ray workers; only the driver's next write waits. So every
storage call that fails because the connection failed is retried with backoff for up to
`outage_window_s`; past it the call raises `StorageUnavailable`, which the driver turns into a
stop with the command that resumes.

Only connection-level failures are retried (SQLAlchemy's OperationalError, InterfaceError and
invalidated connections, which is how a server restart, a refused connection and SQLite's
"database is locked" arrive); a constraint violation or bad data fails at once. A write whose
commit reached the server but whose answer was lost can be repeated: the one such repetition
that would fail, finishing a trial already finished, is recognised and counted as done.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy.exc
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import RDBStorage

from nas.errors import SearchFailed
from nas.storage.urls import mask_password

OUTAGE_WINDOW_S = 300.0
"""How long a driver waits for its database. A restart takes seconds and a managed PostgreSQL
failover one to two minutes; five minutes covers both with room, and an outage longer than that
needs a person, so the search stops (resumable) rather than wait unseen."""
_FIRST_DELAY_S = 0.5
_MAX_DELAY_S = 15.0

log = logging.getLogger(__name__)


class StorageUnavailable(SearchFailed):
    """The database stayed unreachable for the whole outage window (exit code 1)."""


def is_transient(error: BaseException) -> bool:
    """Whether `error` (as Optuna or SQLAlchemy raised it) says the connection failed."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(cause, sqlalchemy.exc.TimeoutError):  # no pooled connection came free
            return True
        cause = cause.__cause__
    return False


class ResilientRDBStorage(RDBStorage):
    """`RDBStorage` whose every call waits out a connection failure for `outage_window_s`.

    `notify`, when set, is told once when an outage starts and once when it ends, so that the
    user sees why the driver is quiet.
    """

    def __init__(
        self,
        url: str,
        engine_kwargs: dict[str, Any] | None = None,
        outage_window_s: float = OUTAGE_WINDOW_S,
        **kwargs: Any,
    ) -> None:
        self.outage_window_s = outage_window_s
        self.notify: Callable[[str], None] | None = None
        super().__init__(url, engine_kwargs=engine_kwargs, **kwargs)

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["notify"] = None  # a console does not travel
        return state

    def _waited(self, name: str, call: Callable[[], Any]) -> Any:
        started: float | None = None
        delay = _FIRST_DELAY_S
        while True:
            try:
                result = call()
            except UpdateFinishedTrialError:
                if started is not None and name == "set_trial_state_values":
                    return True  # the attempt cut off by the outage had finished the trial
                raise
            except (StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as error:
                if self.outage_window_s <= 0 or not is_transient(error):
                    raise
                now = time.monotonic()
                if started is None:
                    started = now
                    self._tell(
                        f"database {mask_password(self.url)} unreachable "
                        f"({_reason(error)}); retrying for up to {self.outage_window_s:g} s"
                    )
                if now - started >= self.outage_window_s:
                    raise StorageUnavailable(
                        f"database {mask_password(self.url)} unreachable for "
                        f"{self.outage_window_s:g} s ({_reason(error)})"
                    ) from None
                time.sleep(min(delay, max(self.outage_window_s - (now - started), 0.0)))
                delay = min(delay * 2, _MAX_DELAY_S)
                continue
            if started is not None:
                self._tell(
                    f"database {mask_password(self.url)} back after "
                    f"{time.monotonic() - started:.0f} s"
                )
            return result

    def _tell(self, message: str) -> None:
        """Through `notify` where the caller shows it (the search's monitor), else the log:
        both at once printed every notice twice."""
        if self.notify is not None:
            self.notify(message)
        else:
            log.warning("%s", message)


def _reason(error: BaseException) -> str:
    cause: BaseException = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.orig is not None:
        cause = cause.orig
    lines = str(cause).strip().splitlines()
    return lines[0][:200] if lines else type(cause).__name__


_RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "record_heartbeat",
    # What Optuna's cache in front of the storage (`_CachedStorage`) calls directly.
    "_create_new_trial",
    "_set_trial_param",
    "_get_best_trial_id",
    "_get_trials",
    "_get_stale_trial_ids",
)


def _retrying(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def wrapper(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        return self._waited(name, lambda: method(self, *args, **kwargs))

    return wrapper


for _name in _RETRIED:
    if hasattr(RDBStorage, _name):
        setattr(ResilientRDBStorage, _name, _retrying(_name))
