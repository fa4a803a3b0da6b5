"""A search waits out a database outage for a bounded window, then stops resumably."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from driver_process import driver_command, wait_for_running
from optuna.exceptions import StorageInternalError
from optuna.trial import TrialState

from nas.storage import StorageUnavailable, open_storage
from nas.storage.outages import is_transient


def _operational() -> StorageInternalError:
    try:
        try:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed"))
        except sqlalchemy.exc.OperationalError as error:
            raise StorageInternalError("commit failed") from error
    except StorageInternalError as wrapped:
        return wrapped


def test_connection_failures_are_transient_and_data_errors_are_not() -> None:
    assert is_transient(_operational())
    integrity = sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert not is_transient(integrity)
    assert not is_transient(ValueError("bad"))


def test_a_call_waits_out_a_short_outage_and_gives_up_past_the_window(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'nas.db'}", outage_window_s=1.0)
    told: list[str] = []
    storage.notify = told.append
    failures = iter([_operational(), _operational()])

    def flaky() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "done"

    assert storage._waited("get_trial", flaky) == "done"
    assert "retrying for up to 1 s" in told[0] and "back after" in told[-1]

    def down() -> None:
        raise _operational()

    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="unreachable for 1 s"):
        storage._waited("get_trial", down)
    assert time.monotonic() - started < 5
    storage.engine.dispose()


def test_without_a_window_a_failure_is_raised_at_once(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'nas.db'}")

    def down() -> None:
        raise _operational()

    with pytest.raises(StorageInternalError):
        storage._waited("get_trial", down)
    storage.engine.dispose()


# ---- the real PostgreSQL, stopped under a running search ----------------------------------------

LONGER = ("--limit-train", "1200")
"""Three times the driver's usual images: on an idle machine a two-trial search of 400 images
can end within seconds of its first trial starting, before the server is stopped under it."""

PG_CTL = shutil.which("pg_ctlcluster")


def _cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not PG_CTL or not versions or os.geteuid() != 0:
        pytest.skip("needs the local PostgreSQL cluster and the rights to stop it")
    return [PG_CTL, "--skip-systemctl-redirect", versions[0], "main"]


def _ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0


def _pg(cluster: list[str], action: str) -> None:
    """Stop the server (closing every connection), or start it if it is down."""
    if action == "start":
        started = None
        if not _ready():
            # pg_ctlcluster can report a failure for a server that comes up a moment after its
            # own wait (seen on a loaded machine), so readiness is what decides.
            started = subprocess.run(
                [*cluster, "start"], capture_output=True, text=True, timeout=60
            )
        for _ in range(60):
            if _ready():
                return
            time.sleep(0.5)
        said = "" if started is None else f": {started.stdout}{started.stderr}"
        raise AssertionError(f"PostgreSQL did not come back{said}")
    subprocess.run([*cluster, "stop", "-m", "fast"], check=True, capture_output=True, timeout=60)


def _check_complete(storage: str, study: str) -> None:
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    trained = [t for t in trials if t.user_attrs.get("outcome") == "trained"]
    assert len(trained) == 2
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    optuna.delete_study(study_name=study, storage=storage)


class _Collected:
    """A process's stdout and stderr, read as it writes them, so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.parts: dict[str, list[str]] = {"out": [], "err": []}
        self.threads = [
            threading.Thread(target=self._read, args=(stream, self.parts[name]), daemon=True)
            for name, stream in (("out", process.stdout), ("err", process.stderr))
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def text(self) -> str:
        return "".join(self.parts["out"] + self.parts["err"])

    def wait_for(self, needle: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            time.sleep(0.2)
        return False

    def finish(self) -> tuple[str, str]:
        for thread in self.threads:
            thread.join(timeout=30)
        return "".join(self.parts["out"]), "".join(self.parts["err"])


@pytest.mark.slow
def test_a_postgresql_restart_mid_search_is_waited_out(postgres_url: str, tmp_path: Path) -> None:
    cluster = _cluster()
    study = f"outage-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        driver_command(postgres_url, study, tmp_path / "out", *LONGER, "--storage-outage-s", "120"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: _Collected | None = None
    try:
        wait_for_running(postgres_url, study, process)
        output = _Collected(process)
        _pg(cluster, "stop")
        # Down until the driver has met the outage (its next write, whenever the load lets the
        # trial get there), then back well inside the window.
        assert output.wait_for("unreachable", timeout_s=100), output.text()
        _pg(cluster, "start")
        process.wait(timeout=600)
    finally:
        _pg(cluster, "start")
        if process.poll() is None:
            process.kill()
    assert output is not None
    out, err = output.finish()
    assert process.returncode == 0, err
    assert "Traceback" not in out + err
    assert "unreachable" in out + err and "back after" in out + err
    _check_complete(postgres_url, study)


@pytest.mark.slow
def test_an_outage_past_the_window_stops_in_one_line_and_resumes(
    postgres_url: str, tmp_path: Path
) -> None:
    cluster = _cluster()
    study = f"outage-{uuid.uuid4().hex[:8]}"
    args = driver_command(postgres_url, study, tmp_path / "out", *LONGER, "--storage-outage-s", "3")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_running(postgres_url, study, process)
        _pg(cluster, "stop")
        out, err = process.communicate(timeout=120)
    finally:
        _pg(cluster, "start")
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1, err
    assert "Traceback" not in out + err
    last = err.strip().splitlines()[-1]
    assert "unreachable for 3 s" in last and "resume with: nas search --resume" in last

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    _check_complete(postgres_url, study)
