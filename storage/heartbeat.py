"""Heartbeats for trials driven by ``study.ask()``/``study.tell()``.

Optuna records heartbeats and fails stale trials only inside ``study.optimize()``. The search
driver hands trials to Ray workers and uses ask/tell instead, so it has to do both itself:

- :class:`Heartbeat` beats, from one background thread, for every trial the driver has in
  flight. A trial that has never beaten is never considered stale by Optuna, so
  :meth:`Heartbeat.add` beats once immediately.
- :func:`fail_stale_trials` fails every RUNNING trial whose last beat is older than the
  storage's grace period and, through the storage's retry callback, queues a WAITING copy with
  the same parameters; the next ``study.ask()`` returns that copy. Call it on resume and before
  each ``ask()``, or call :func:`ask`, which does both.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage


_logger = logging.getLogger(__name__)


class Heartbeat:
    """Keep the driver's in-flight trials marked alive until they are told or discarded.

    Use as a context manager around the search loop; ``add`` a trial right after ``ask()`` and
    ``discard`` it right after ``tell()``.
    """

    def __init__(self, storage: RDBStorage) -> None:
        interval = storage.get_heartbeat_interval()
        if interval is None:
            raise ValueError("this storage was opened with heartbeats off (heartbeat_interval_s)")
        self._storage = storage
        self._interval = interval
        self._trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nas-heartbeat", daemon=True)
        self._thread.start()

    def add(self, trial_id: int) -> None:
        """Start beating for ``trial_id`` (``trial._trial_id``, not ``trial.number``)."""
        self._storage.record_heartbeat(trial_id)
        with self._lock:
            self._trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        """Stop beating for ``trial_id``; a trial left RUNNING after this will go stale."""
        with self._lock:
            self._trial_ids.discard(trial_id)

    def close(self) -> None:
        """Stop the thread; trials still in flight go stale after the grace period."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                with self._lock:
                    trial_ids = sorted(self._trial_ids)
                for trial_id in trial_ids:
                    try:
                        self._storage.record_heartbeat(trial_id)
                    except Exception:  # A missed beat is retried next interval.
                        _logger.warning("Could not record heartbeat of trial %d.", trial_id)
        finally:
            # Give this thread's connection back to the pool.
            self._storage.remove_session()


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail (and re-queue, per the storage's retry policy) trials whose driver stopped beating."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def ask(study: optuna.Study) -> optuna.Trial:
    """Ask for a trial the way ``study.optimize()`` does: dead trials are re-queued first.

    A re-queued trial comes back from here with its old parameters already set, so the search
    space's ``trial.suggest_*`` calls return the same values and the same architecture.
    """
    fail_stale_trials(study)
    with warnings.catch_warnings():
        # Optuna warns on every ask() when heartbeats are on; this module is the answer to it.
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        return study.ask()
