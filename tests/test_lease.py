"""One driver per study: the lease refuses a second live driver and frees a dead one's study."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from driver_process import driver_command, search_args, wait_for_running
from optuna.trial import TrialState

from nas.cli import main
from nas.storage import StudyBusy, StudyLease, open_storage
from nas.storage.lease import LEASES


def _engine(url: str) -> sa.Engine:
    return open_storage(url).engine


def test_a_held_lease_refuses_a_second_driver_until_released(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'nas.db'}")
    first = StudyLease.acquire(engine, "s")
    with pytest.raises(StudyBusy, match=r"being run by another driver \(host .*, pid \d+"):
        StudyLease.acquire(engine, "s")
    StudyLease.acquire(engine, "other").release()  # leases are per study
    first.release()
    StudyLease.acquire(engine, "s").release()


def test_a_stale_lease_is_taken_over_and_its_old_holder_learns_it_lost(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'nas.db'}")
    stalled = StudyLease.acquire(engine, "s", ttl_s=1.0, heartbeat_s=2.0)
    with pytest.raises(StudyBusy):
        StudyLease.acquire(engine, "s", ttl_s=1.0, heartbeat_s=2.0)
    time.sleep(1.3)  # past the TTL with no heartbeat yet
    taker = StudyLease.acquire(engine, "s", ttl_s=1.0, heartbeat_s=0.2)
    deadline = time.monotonic() + 10
    while not stalled.lost and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stalled.lost and "taken over by another driver" in stalled.lost_message()
    stalled.release()  # must not delete the taker's row
    with pytest.raises(StudyBusy):
        StudyLease.acquire(engine, "s")
    taker.release()


def test_a_dead_process_of_this_host_frees_its_lease_at_once(tmp_path: Path) -> None:
    engine = _engine(f"sqlite:///{tmp_path / 'nas.db'}")
    StudyLease.acquire(engine, "s").release()  # creates the table
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    import socket

    now = time.time()
    with engine.begin() as connection:
        connection.execute(
            LEASES.insert().values(
                study_name="s",
                holder="killed",
                host=socket.gethostname(),
                pid=int(gone.stdout),
                acquired_at=now,
                heartbeat_at=now,
            )
        )
    StudyLease.acquire(engine, "s").release()


def test_the_lease_works_on_postgresql(postgres_url: str) -> None:
    engine = _engine(postgres_url)
    name = f"lease-{uuid.uuid4().hex[:8]}"
    first = StudyLease.acquire(engine, name)
    try:
        with pytest.raises(StudyBusy):
            StudyLease.acquire(engine, name)
    finally:
        first.release()
    StudyLease.acquire(engine, name).release()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_second_driver_is_refused_and_the_first_finishes_untouched(
    backend: str, tmp_path: Path, request, capsys
) -> None:
    storage = (
        f"sqlite:///{tmp_path / 'nas.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    study = f"conc-{uuid.uuid4().hex[:8]}"
    args = search_args(storage, study, tmp_path / "out")
    first = subprocess.Popen(
        driver_command(storage, study, tmp_path / "out"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_running(storage, study, first)

        with pytest.raises(SystemExit) as exited:
            main([*args, "--resume"])
        err = capsys.readouterr().err
        assert exited.value.code == 2, err
        assert "is being run by another driver" in err and err.count("\n") == 1

        _, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    assert "Traceback" not in stderr
    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.FAIL]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    if backend == "postgresql":
        optuna.delete_study(study_name=study, storage=storage)


def test_companion_runs_stop_writing_once_the_lease_is_lost(local_ray, tmp_path: Path) -> None:
    import ray

    from nas.companion_runs import CompanionRun, train_runs
    from nas.errors import SearchFailed
    from nas.evaluators.datasets import load_dataset
    from nas.evaluators.recipe import Recipe
    from nas.search_spaces.space import load_space
    from nas.worker import remote_trainer

    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    companion = optuna.create_study(study_name="s.confirm", storage=storage)
    arch = load_space("tiny").cheapest().to_string()
    runs = [CompanionRun(arch=arch, seed=seed, label=f"run {seed}", attrs={}) for seed in (1, 2)]
    data = load_dataset("fashion-mnist-mini", None, seed=0, limit_train=200)
    with pytest.raises(SearchFailed, match="taken over"):
        train_runs(
            companion,
            runs,
            Recipe(epochs=5, threads=1),
            remote_trainer(1, 0),
            ray.put(data),
            lambda: 1,
            print,
            stop_if=lambda: "study 's' was taken over by another driver",
        )
    trials = companion.get_trials(deepcopy=False)
    assert len(trials) == 1 and trials[0].state == TrialState.RUNNING  # nothing written after
