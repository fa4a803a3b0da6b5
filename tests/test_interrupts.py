"""Stopping a search by hand: a second Ctrl-C during the clean-up keeps it clean."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from tiny_search import TINY_SEARCH

pytestmark = pytest.mark.slow


def _running(db: Path) -> bool:
    if not db.exists():
        return False
    storage = f"sqlite:///{db}"
    try:
        study = optuna.load_study(study_name="stop", storage=storage)
    except Exception:  # not created yet, or mid-write by the search
        return False
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def test_a_second_ctrl_c_while_stopping_still_prints_the_resume_command(tmp_path: Path) -> None:
    db = tmp_path / "nas.db"
    args = [
        sys.executable,
        "-m",
        "nas.cli",
        "search",
        "--space",
        "tiny",
        "--budget-mflops",
        str(TINY_SEARCH["budget_mflops"]),
        "--limit-train",
        "400",
        "--epochs",
        "20",
        "--workers",
        "1",
        "--trials",
        "2",
        "--no-warm-start",
        "--storage",
        f"sqlite:///{db}",
        "--study",
        "stop",
        "--out",
        str(tmp_path / "out"),
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not _running(db) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    assert "resume with: nas search --resume --study stop" in err
    study = optuna.load_study(study_name="stop", storage=f"sqlite:///{db}")
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
