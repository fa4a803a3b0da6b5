"""Faults met in use (a full disk, a stop at the very end, a stalled driver): each leaves the
study whole, no file half written, and one line that says how to get what is missing."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from tiny_search import TINY_SEARCH

from nas.cli import main
from nas.config import SearchConfig
from nas.errors import SearchFailed
from nas.search import search
from nas.trials import TrialAttrs

TABLE_SEARCH = [
    "search",
    "--space",
    "nasbench-macro",
    "--evaluator",
    "table",
    "--input-size",
    "32",
    "--budget-mflops",
    "100",
    "--trials",
    "2",
    "--workers",
    "2",
    "--confirm-seeds",
    "0",
    "--study",
    "t",
]
"""A search whose candidates are looked up, not trained: seconds, with everything else real."""


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `nas argv`."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem of 64 KiB, filled to the last byte; folders made in it before it
    filled up (``artifacts``, ``out``) take no file larger than nothing."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        for folder in ("artifacts", "out"):
            (mount / folder).mkdir()
        with pytest.raises(OSError, match="No space left on device"):
            with open(mount / "filler", "wb") as filler:
                while True:
                    filler.write(b"\0" * 4096)
                    filler.flush()
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=False)


def _files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


@pytest.mark.slow
def test_a_full_artifact_folder_fails_the_trial_and_stops_the_search(
    local_ray, full_disk: Path, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    config = SearchConfig(
        **{**TINY_SEARCH, "trials": 1, "workers": 1},
        storage=storage,
        study="full",
        out=str(tmp_path / "out"),
        artifact_dir=str(full_disk / "artifacts"),
    )
    with pytest.raises(SearchFailed) as failed:
        search(config)
    message = str(failed.value)
    assert "trial 0's weights could not be saved in" in message
    assert "(No space left on device)" in message and "run again with --resume" in message
    assert _files_under(full_disk) == ["filler"]  # no weights file, whole or truncated
    study = optuna.load_study(study_name="full", storage=storage)
    states = [trial.state for trial in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.WAITING]  # failed, and queued for the resume
    first = TrialAttrs.of(study.trials[0])
    assert first.error == message.split(";")[0] and first.accuracy is not None


def test_a_full_out_folder_is_one_line_and_the_resume_line_writes_the_results(
    local_ray, full_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    out = full_disk / "out"
    code, _, err = run_cli([*TABLE_SEARCH, "--storage", storage, "--out", str(out)], capsys)
    assert code == 2
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]  # after the search's own progress lines
    assert line.startswith(
        f"nas: error: results could not be written in {out} (No space left on device); the "
        "study 't' keeps every trial: free space or choose another --out, then: nas search "
        "--resume --study t"
    )
    assert _files_under(full_disk) == ["filler"]  # no pareto.json, whole or truncated
    study = optuna.load_study(study_name="t", storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) >= 2

    resume = shlex.split(line.split("then: ", 1)[1])
    elsewhere = tmp_path / "elsewhere"
    resume[resume.index("--out") + 1] = str(elsewhere)
    code, _, err = run_cli(resume[1:], capsys)
    assert code == 0, err
    pareto = json.loads((elsewhere / "pareto.json").read_text())
    assert pareto["counts"]["searched"] == 2 and pareto["pareto"]


def _stop_on_entry(real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, preceded by a Ctrl-C (a real SIGINT through the driver's own handler)."""

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    return interrupted


@pytest.mark.parametrize(
    "where", ["nas.search.attach_pareto_artifacts", "nas.search.write_outputs"]
)
def test_a_stop_after_the_last_trial_writes_the_results_and_a_resume_line(
    where: str,
    local_ray,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, name = where.rsplit(".", 1)
    import importlib

    target = importlib.import_module(module)
    monkeypatch.setattr(target, name, _stop_on_entry(getattr(target, name)))
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    out = tmp_path / "out"
    code, _, err = run_cli([*TABLE_SEARCH, "--storage", storage, "--out", str(out)], capsys)
    assert code == 130, err
    assert "Traceback" not in err and "aborted" not in err
    assert "stopped; resume with: nas search --resume --study t" in err
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["counts"]["searched"] == 2 and pareto["pareto"]
    assert (out / "trials.csv").read_text().count("\n") >= 3


def test_a_driver_that_wakes_past_its_lease_learns_it_lost_before_it_writes(
    tmp_path: Path,
) -> None:
    from nas.storage import StudyBusy, StudyLease, open_storage

    engine = open_storage(f"sqlite:///{tmp_path / 'nas.db'}").engine
    # Its heartbeat thread sleeps on, as a stalled driver's does for up to a heartbeat after
    # it wakes; the lease goes stale after one second without one.
    stalled = StudyLease.acquire(engine, "s", ttl_s=1.0, heartbeat_s=0.4)
    stalled._stop.set()  # the thread's wait ends, and it renews nothing more
    stalled._thread.join()
    stalled._stop.clear()
    time.sleep(1.3)
    taker = StudyLease.acquire(engine, "s", ttl_s=1.0, heartbeat_s=0.2)
    try:
        assert not stalled.lost  # what the driver believed on waking
        why = stalled.stop_reason()  # what it asks before it writes
        assert why is not None and "taken over by another driver" in why
        assert "writes nothing more" in why
        stalled.release()  # must not delete the taker's row
        with pytest.raises(StudyBusy):
            StudyLease.acquire(engine, "s")
    finally:
        taker.release()
        engine.dispose()


def test_a_live_lease_answers_without_asking_the_database(tmp_path: Path) -> None:
    from nas.storage import StudyLease, open_storage

    engine = open_storage(f"sqlite:///{tmp_path / 'nas.db'}").engine
    lease = StudyLease.acquire(engine, "s")
    try:
        renewed = lease.renewed_at
        assert lease.stop_reason() is None and lease.renewed_at == renewed
    finally:
        lease.release()
        engine.dispose()


def test_an_outage_notice_is_told_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlalchemy

    from nas.storage import open_storage

    storage = open_storage(f"sqlite:///{tmp_path / 'nas.db'}", outage_window_s=30)
    told: list[str] = []
    storage.notify = told.append
    unreachable = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'gone' / 'x.db'}")
    calls = iter([lambda: unreachable.connect(), lambda: "answer"])
    try:
        assert storage._waited("get_all_studies", lambda: next(calls)()) == "answer"
    finally:
        unreachable.dispose()
        storage.engine.dispose()
    assert len(told) == 2
    assert "unreachable (unable to open database file); retrying for up to 30 s" in told[0]
    assert "back after" in told[1]
    assert capsys.readouterr().err == ""  # not printed again by the log


def test_an_orphaned_trial_says_which_attempt_it_was(tmp_path: Path) -> None:
    from nas.study import requeue_orphans

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'nas.db'}")
    trial = study.ask()
    trial.suggest_int("depth", 1, 4)  # left RUNNING by a driver that died
    assert requeue_orphans(study) == [0]
    orphan, queued = study.get_trials(deepcopy=False)
    assert orphan.state is TrialState.FAIL and orphan.user_attrs["attempt"] == 1
    assert orphan.user_attrs["outcome"] == "interrupted"
    assert queued.state is TrialState.WAITING and queued.user_attrs["attempt"] == 2
