"""Stopping a search or its companion runs by hand, or killing the driver: nothing is left running
and nothing is counted twice."""

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


class _StoppedWhileDispatching:
    """A trainer whose dispatch is where the stop lands: after `ask`, before the run is held."""

    def remote(self, *args: object) -> None:
        raise KeyboardInterrupt


def test_a_stop_between_ask_and_dispatch_leaves_no_companion_run_running(tmp_path: Path) -> None:
    from nas.companion_runs import CompanionRun, train_runs
    from nas.evaluators.recipe import Recipe

    companion = optuna.create_study(study_name="s.final", storage=f"sqlite:///{tmp_path}/n.db")
    run = CompanionRun(arch="any", seed=1, label="run 1")
    with pytest.raises(KeyboardInterrupt):
        train_runs(companion, [run], Recipe(), _StoppedWhileDispatching(), None, lambda: 1, print)
    (trial,) = companion.get_trials(deepcopy=False)
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["outcome"] == "interrupted"


def test_a_driver_killed_between_outcome_and_tell_does_not_count_the_trial(
    tmp_path: Path,
) -> None:
    from nas.study import count_trained, requeue_orphans
    from nas.trials import Outcome, write_attrs

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/n.db")
    told = study.ask()
    write_attrs(told, outcome=Outcome.TRAINED)
    study.tell(told, 0.5)
    killed = study.ask()  # the recorder writes the outcome, then tells; the kill fell between
    write_attrs(killed, outcome=Outcome.TRAINED)
    assert count_trained(study) == (1, 0)
    assert requeue_orphans(study) == [killed.number]  # the next driver trains it again
    assert count_trained(study) == (1, 0)
