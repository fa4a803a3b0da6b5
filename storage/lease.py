"""One driver per study: a lease row in the study's own database, kept alive by a heartbeat.

A driver that resumes a study fails the trials it finds RUNNING and queues them again, which is
right when their driver is dead and ruinous when it is alive. The lease makes "alive" a fact the
database holds: a driver takes it before touching the study and renews it every
`heartbeat_s`; another driver is refused while the lease is fresh, and takes it over only once
it has gone `ttl_s` without a heartbeat (or at once when its holder is a process of this host
that no longer exists, as after a SIGKILL). Taking a stale lease is one conditional UPDATE, so
two drivers racing for it cannot both win, on SQLite and PostgreSQL alike.

Optuna's own trial heartbeats (`heartbeat_interval`, `fail_stale_trials`) are tied to
`study.optimize`; this driver asks and tells, and the unit it must protect is the study, not
one trial, so the lease is kept beside Optuna's tables rather than in them.

Times are the drivers' wall clocks (UTC seconds): hosts sharing a study are assumed to agree to
well within `ttl_s`, as NTP keeps them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from nas.errors import InputError

LEASE_TTL_S = 60.0
"""How long a lease outlives its last heartbeat. Long enough that a driver stalled by a busy
machine or a database failover of a few tens of seconds keeps its study; short enough that a
dead driver's study is free again within a minute."""
HEARTBEAT_S = 10.0
"""Renewal interval: six chances to renew before the lease goes stale."""

_METADATA = sa.MetaData()
LEASES = sa.Table(
    "nas_study_leases",
    _METADATA,
    sa.Column("study_name", sa.String(512), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)

log = logging.getLogger(__name__)


class StudyBusy(InputError):
    """Another live driver holds the study's lease (exit code 2: the request cannot be done now)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as its row says."""

    holder: str
    host: str
    pid: int
    acquired_at: float
    heartbeat_at: float

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {_utc(self.acquired_at)}"


class StudyLease:
    """The lease of one study, held by this process until `release`.

    Use `StudyLease.acquire(engine, name)`; `lost` turns true if another driver took the lease
    over (this one's heartbeat lapsed for longer than the TTL), after which this driver must
    write nothing more to the study.
    """

    def __init__(
        self, engine: Engine, study_name: str, holder: str, ttl_s: float, heartbeat_s: float
    ) -> None:
        self.engine = engine
        self.study_name = study_name
        self.holder = holder
        self.ttl_s = ttl_s
        self.heartbeat_s = heartbeat_s
        self.taken_by: Holder | None = None
        self.renewed_at = 0.0
        """Wall-clock time (UTC seconds) of the last heartbeat the database took."""
        self._renewing = threading.Lock()
        self._checked_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease:{study_name}", daemon=True)

    @classmethod
    def acquire(
        cls,
        engine: Engine,
        study_name: str,
        ttl_s: float = LEASE_TTL_S,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> StudyLease:
        """Take the lease of `study_name` and start renewing it; `StudyBusy` if a live driver
        holds it."""
        lease = cls(engine, study_name, uuid.uuid4().hex, ttl_s, heartbeat_s)
        try:
            _create_table(engine)
            lease._take()
        except OperationalError as error:
            if "readonly" not in str(error).lower().replace("read-only", "readonly"):
                raise
            # The lease is a driver's first write: a read-only database stops it here, before
            # any work, rather than at its first trial.
            where = engine.url.render_as_string(hide_password=True)
            raise InputError(
                f"storage {where} is read-only (attempt to write a readonly database): make "
                f"the database file and its folder writable, or pass --storage with another"
            ) from None
        lease._thread.start()
        return lease

    @property
    def lost(self) -> bool:
        return self.taken_by is not None

    def stop_reason(self) -> str | None:
        """Why the holder must stop writing to the study (the lease was taken over), or None.

        A driver that was stalled (a suspended laptop, a stopped process, a swapping machine)
        wakes with its heartbeat overdue, and its heartbeat thread may sleep for up to
        `heartbeat_s` more before it learns the lease is gone: meanwhile the driver would
        write to trials another driver has taken over. So an overdue heartbeat is renewed
        here, before the caller writes.
        """
        now = time.time()
        overdue = now - self.renewed_at > 2 * self.heartbeat_s
        # At most once a heartbeat, so that a database outage does not slow the loop.
        if (
            overdue
            and not self.lost
            and not self._stop.is_set()
            and now - self._checked_at > self.heartbeat_s
        ):
            self._checked_at = now
            try:
                self._renew()
            except SQLAlchemyError as error:  # an outage: the storage's own retries tell
                log.warning("lease check of %s failed: %s", self.study_name, error)
        return self.lost_message() if self.lost else None

    def lost_message(self) -> str:
        taker = self.taken_by.describe() if self.taken_by else "another driver"
        return (
            f"study {self.study_name!r} was taken over by another driver ({taker}) after this "
            f"one's lease went {self.ttl_s:g} s without a heartbeat; this driver stops and "
            f"writes nothing more (that driver re-runs the trials that were training here)"
        )

    def release(self) -> None:
        """Stop renewing and delete the row, if it is still this driver's."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.heartbeat_s + 5)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    LEASES.delete().where(
                        LEASES.c.study_name == self.study_name, LEASES.c.holder == self.holder
                    )
                )
        except SQLAlchemyError as error:  # the row goes stale and is taken over in ttl_s
            log.warning("could not release the lease of %s: %s", self.study_name, error)

    def __enter__(self) -> StudyLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ---- internals ----------------------------------------------------------------------------

    def _take(self) -> None:
        now = time.time()
        mine = {
            "holder": self.holder,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "acquired_at": now,
            "heartbeat_at": now,
        }
        with self.engine.begin() as connection:
            row = _holder(connection, self.study_name)
            if row is None:
                try:
                    with connection.begin_nested():
                        connection.execute(
                            LEASES.insert().values(study_name=self.study_name, **mine)
                        )
                    self.renewed_at = now
                    return
                except IntegrityError:  # another driver inserted it first
                    row = _holder(connection, self.study_name)
                    if row is None:
                        raise StudyBusy(self._busy_text(None)) from None
            if not self._free(row, now):
                raise StudyBusy(self._busy_text(row))
            taken = connection.execute(
                LEASES.update()
                .where(
                    LEASES.c.study_name == self.study_name,
                    LEASES.c.holder == row.holder,
                    LEASES.c.heartbeat_at == row.heartbeat_at,
                )
                .values(**mine)
            )
            if taken.rowcount != 1:  # another driver took it over between our read and write
                raise StudyBusy(self._busy_text(_holder(connection, self.study_name)))
            self.renewed_at = now

    def _free(self, row: Holder, now: float) -> bool:
        """Whether `row`'s driver can no longer be alive: stale, or a dead process of this host."""
        if now - row.heartbeat_at > self.ttl_s:
            return True
        return row.host == socket.gethostname() and not _process_alive(row.pid)

    def _busy_text(self, row: Holder | None) -> str:
        if row is None:
            return f"study {self.study_name!r} is being run by another driver"
        ago = max(time.time() - row.heartbeat_at, 0.0)
        return (
            f"study {self.study_name!r} is being run by another driver ({row.describe()}, last "
            f"heartbeat {ago:.0f} s ago): wait for it to finish or stop it; if it died, run "
            f"again after {_utc(row.heartbeat_at + self.ttl_s)}, when its lease expires"
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s) and not self.lost:
            try:
                self._renew()
            except SQLAlchemyError as error:  # an outage: keep trying until the TTL tells
                log.warning("lease heartbeat of %s failed: %s", self.study_name, error)

    def _renew(self) -> None:
        """Renew the heartbeat, or learn that another driver holds the lease (`taken_by`)."""
        with self._renewing, self.engine.begin() as connection:
            if self.lost:
                return
            now = time.time()
            renewed = connection.execute(
                LEASES.update()
                .where(LEASES.c.study_name == self.study_name, LEASES.c.holder == self.holder)
                .values(heartbeat_at=now)
            )
            if renewed.rowcount != 1:
                row = _holder(connection, self.study_name)
                self.taken_by = row or Holder("?", "?", 0, 0.0, 0.0)
                return
            self.renewed_at = now


def _create_table(engine: Engine) -> None:
    try:
        _METADATA.create_all(engine, tables=[LEASES], checkfirst=True)
    except (OperationalError, IntegrityError, sa.exc.ProgrammingError):
        # Two drivers creating it at once: one wins, the other finds it there.
        _METADATA.create_all(engine, tables=[LEASES], checkfirst=True)


def _holder(connection: sa.Connection, study_name: str) -> Holder | None:
    row = connection.execute(
        sa.select(
            LEASES.c.holder,
            LEASES.c.host,
            LEASES.c.pid,
            LEASES.c.acquired_at,
            LEASES.c.heartbeat_at,
        ).where(LEASES.c.study_name == study_name)
    ).first()
    return Holder(*row) if row is not None else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
