"""Stopping a search by hand: a second Ctrl-C during the clean-up keeps it clean."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from driver_process import driver_command, wait_for_running
from optuna.trial import TrialState

pytestmark = pytest.mark.slow


def test_a_second_ctrl_c_while_stopping_still_prints_the_resume_command(tmp_path: Path) -> None:
    db = tmp_path / "nas.db"
    storage = f"sqlite:///{db}"
    args = driver_command(storage, "stop", tmp_path / "out", "--epochs", "20")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_running(storage, "stop", process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    assert "resume with: nas search --resume --study stop" in err
    study = optuna.load_study(study_name="stop", storage=f"sqlite:///{db}")
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
