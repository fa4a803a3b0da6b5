"""End-to-end searches on real Ray, real SQLite and real PostgreSQL, with faults."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import ray
from optuna.trial import TrialState
from tiny_search import TINY_SEARCH

from nas.cli import main
from nas.config import SearchConfig
from nas.latency_order import close_in_latency
from nas.search import search
from nas.trials import OUTCOME_ATTR

pytestmark = pytest.mark.slow

FAST = TINY_SEARCH
BUDGET = FAST["budget_mflops"]


def trials_by_outcome(study: optuna.Study) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for trial in study.get_trials():
        grouped.setdefault(trial.user_attrs.get(OUTCOME_ATTR), []).append(trial)
    return grouped


def check_search(study: optuna.Study, trials: int, epochs: int = 1) -> None:
    grouped = trials_by_outcome(study)
    trained = grouped.get("trained", [])
    assert len(trained) == trials
    for trial in trained:
        assert trial.state == TrialState.COMPLETE
        assert trial.user_attrs["mflops"] <= BUDGET
        assert trial.values == [trial.user_attrs["accuracy"], trial.user_attrs["latency_ms"]]
        assert 0.0 <= trial.values[0] <= 1.0 and trial.values[1] > 0
        for key in (
            "arch",
            "arch_json",
            "params",
            "latency_n_modelled",
            "recipe",
            "curve",
            "train_seconds",
            "images_per_second",
            "worker_host",
            "nas_version",
            "proxy_input",
            "cost_input",
        ):
            assert trial.user_attrs.get(key) is not None, key
        low, high = trial.user_attrs["accuracy_interval"]
        assert low <= trial.user_attrs["accuracy"] <= high
        assert trial.user_attrs["val_count"] > 0
        assert trial.user_attrs["val_correct"] == round(
            trial.user_attrs["accuracy"] * trial.user_attrs["val_count"]
        )
        assert trial.user_attrs["proxy_input"] == [1, 28, 28]
        assert trial.user_attrs["cost_input"] == [3, 224, 224]
        assert len(trial.user_attrs["curve"]) == epochs
    for trial in grouped.get("infeasible", []):
        assert trial.state == TrialState.PRUNED
        assert trial.user_attrs["mflops"] > BUDGET
        assert "curve" not in trial.user_attrs
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_search_on_sqlite(local_ray, tmp_path: Path) -> None:
    config = SearchConfig(
        **FAST, trials=3, storage=f"sqlite:///{tmp_path / 'nas.db'}", out=str(tmp_path / "out")
    )
    result = search(config)
    study = optuna.load_study(study_name=result.study_name, storage=config.storage)
    check_search(study, 3)
    assert result.n_trained == 3 and result.pareto
    document = json.loads((tmp_path / "out" / "pareto.json").read_text())
    assert document["pareto"] == [row.to_dict() for row in result.pareto]
    assert all("vs_cheaper" in row for row in document["pareto"])
    assert all(row.accuracy_low <= row.accuracy <= row.accuracy_high for row in result.pareto)
    assert "accuracy_low" in (tmp_path / "out" / "trials.csv").read_text().splitlines()[0]
    assert document["config"]["budget_mflops"] == BUDGET
    assert (tmp_path / "out" / "trials.csv").read_text().count("\n") == len(study.trials) + 1
    assert study.user_attrs["latency_table"]["target"] == "armv8"
    # Front neighbours closer than the table's stated error, as the study's table states it.
    stored = study.user_attrs["latency_table"]
    assert result.close_in_latency == close_in_latency(result.pareto, stored, "armv8")


def test_search_on_postgresql(local_ray, postgres_url: str, tmp_path: Path) -> None:
    name = f"test-search-{uuid.uuid4().hex[:8]}"
    config = SearchConfig(
        **FAST, trials=2, storage=postgres_url, study=name, out=str(tmp_path / "out")
    )
    try:
        search(config)
        study = optuna.load_study(study_name=name, storage=config.storage)
        check_search(study, 2)
    finally:
        optuna.delete_study(study_name=name, storage=config.storage)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_confirm_trains_the_front_again_with_other_seeds_and_resumes(
    local_ray, backend: str, postgres_url: str, tmp_path: Path
) -> None:
    from nas.front import pareto_rows
    from nas.study import confirm_runs

    name = f"test-confirm-{uuid.uuid4().hex[:8]}"
    storage = f"sqlite:///{tmp_path / 'nas.db'}" if backend == "sqlite" else postgres_url
    # Warm-started on the tiny space under a budget that admits one zoo network: a baseline is
    # confirmed as a front member is, and one of each is all the rule needs. Every one is
    # confirmed (`all`): which ones `uncertain` picks is tests/test_confirm_choice.py's.
    settings = {
        **FAST,
        "confirm_where": "all",
        "budget_mflops": 39.0,
        "warm_start": True,
        "trials": 1,
        "storage": storage,
        "study": name,
        "out": str(tmp_path / "out"),
    }
    try:
        first = search(SearchConfig(**{**settings, "confirm_seeds": 1}))
        study = optuna.load_study(study_name=name, storage=storage)
        n_trials = len(study.trials)
        runs = confirm_runs(study)
        baselines = {
            t.number
            for t in study.trials
            if t.user_attrs.get("baseline") and t.state == TrialState.COMPLETE
        }
        assert baselines, "the budget admits a zoo network"
        confirmed = {row.number for row in first.pareto} | baselines
        assert set(runs) == confirmed
        assert all([run["seed"] for run in runs[n]] == [1] for n in confirmed)

        # Resumed with two seeds: only the missing second seed of each is trained.
        second = search(SearchConfig(**{**settings, "confirm_seeds": 2, "resume": True}))
        study = optuna.load_study(study_name=name, storage=storage)
        runs = confirm_runs(study)
        assert all([run["seed"] for run in runs[n]] == [1, 2] for n in confirmed)
        assert len(study.trials) == n_trials  # confirm runs never enter the search's study
        companion = optuna.load_study(study_name=f"{name}.confirm", storage=storage)
        assert len(companion.trials) == 2 * len(confirmed)
        assert all(t.user_attrs["confirms"] in confirmed for t in companion.trials)
        for row in pareto_rows(study):
            assert row.seeds == 3 and len(row.seed_accuracies) == 3
            assert row.accuracy_mean == pytest.approx(sum(row.seed_accuracies) / 3, abs=1e-6)
        assert second.pareto and all(row.seeds == 3 for row in second.pareto)
        assert [r for r in second.pareto if r.vs_cheaper] == [
            r for r in second.pareto[1:]
        ]  # every member but the cheapest is judged
    finally:
        if backend == "postgresql":
            for study_name in (name, f"{name}.confirm"):
                optuna.delete_study(study_name=study_name, storage=storage)


def test_worker_crash_fails_the_trial_and_retries_it(
    local_ray, tmp_path: Path, monkeypatch
) -> None:
    from nas import search as driver

    def exit_at_once():  # defined here, so Ray ships it by value to workers without tests/
        """A worker that dies without a word, as one killed by the OOM killer does."""
        os._exit(3)
        yield  # a generator, so that Ray streams it as it streams the real trainer

    submit = driver._Driver._submit

    def crash_first_attempt_of_trial_0(self, trainer, job, data_ref):
        if job.trial.number == 0 and job.attempt == 1:
            return (
                ray.remote(exit_at_once)
                .options(num_cpus=1, max_retries=0, num_returns="streaming")
                .remote()
            )
        return submit(self, trainer, job, data_ref)

    monkeypatch.setattr(driver._Driver, "_submit", crash_first_attempt_of_trial_0)
    config = SearchConfig(
        **FAST, trials=2, storage=f"sqlite:///{tmp_path / 'nas.db'}", out=str(tmp_path / "out")
    )
    result = search(config)
    study = optuna.load_study(study_name=result.study_name, storage=config.storage)
    crashed = study.trials[0]
    assert crashed.state == TrialState.FAIL
    assert "WorkerCrashedError" in crashed.user_attrs["error"]
    assert crashed.user_attrs["attempt"] == 1
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == 0]
    assert len(retries) == 1
    assert retries[0].user_attrs["attempt"] == 2
    assert retries[0].user_attrs["arch"] == crashed.user_attrs["arch"]
    assert retries[0].state == TrialState.COMPLETE
    check_search(study, 2)


def test_a_cause_that_fails_every_trial_ends_the_search_with_one_line(
    local_ray, tmp_path: Path, capsys
) -> None:
    # A wall-time limit no candidate can meet fails every trial, as a worker that cannot import
    # the package would; the search gives up instead of asking for new trials forever.
    db = tmp_path / "nas.db"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "search",
                "--space",
                "tiny",
                "--target",
                "armv8",
                "--budget-mflops",
                str(BUDGET),
                "--limit-train",
                "400",
                "--epochs",
                "1",
                "--batch-size",
                "64",
                "--workers",
                "2",
                "--no-warm-start",
                "--no-early-stopping",
                "--trials",
                "3",
                "--trial-timeout-s",
                "0.001",
                "--storage",
                f"sqlite:///{db}",
                "--out",
                str(tmp_path / "out"),
            ]
        )
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("nas: search failed: 10 trials in a row failed (the last: ")
    assert "wall-time limit" in lines[-1] and "--resume" in lines[-1]
    study = optuna.load_study(
        study_name=optuna.get_all_study_names(f"sqlite:///{db}")[0], storage=f"sqlite:///{db}"
    )
    grouped = trials_by_outcome(study)
    assert len(grouped["failed"]) == 10 and "trained" not in grouped
    assert all("wall-time limit" in t.user_attrs["error"] for t in grouped["failed"])
    assert all("--trial-timeout-s" in t.user_attrs["error"] for t in grouped["failed"])
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_asha_keeps_candidates_that_are_not_promoted_and_resumes(local_ray, tmp_path: Path) -> None:
    settings = {
        **FAST,
        "epochs": 3,  # rungs at epoch 1 with eta 3
        "workers": 1,  # one arrival order, so the same candidates are judged the same way
        "scheduler": "asha",
        "early_stopping": True,
        "storage": f"sqlite:///{tmp_path / 'nas.db'}",
        "out": str(tmp_path / "out"),
        "study": "asha",
    }
    search(SearchConfig(**settings, trials=4))
    search(SearchConfig(**settings, trials=8, resume=True))
    study = optuna.load_study(study_name="asha", storage=settings["storage"])
    grouped = trials_by_outcome(study)
    trained, held = grouped.get("trained", []), grouped.get("not_promoted", [])
    assert len(trained) + len(held) == 8 and trained and held
    for trial in trained:
        assert trial.state == TrialState.COMPLETE and len(trial.user_attrs["curve"]) == 3
    for trial in held:  # stopped at the rung, with that rung's result
        assert trial.state == TrialState.PRUNED and len(trial.user_attrs["curve"]) == 1
        assert trial.user_attrs["accuracy"] == trial.user_attrs["curve"][0]["val_accuracy"]


def test_a_failed_task_is_named_by_its_cause() -> None:
    from ray.exceptions import RayTaskError

    from nas.worker import error_line as _error_line

    # What Ray raises when the worker cannot import the task's module: the task's name and
    # pid first, the reason at the end of the cause's traceback.
    cause = RuntimeError(
        "The remote function failed to import on the worker.\n\nTraceback (most recent call "
        'last):\n  File "/src/nas/worker.py", line 20, in <module>\n    from '
        "nas.evaluators.datasets import Dataset\nModuleNotFoundError: No module named "
        "'nas.evaluators'\n"
    )
    error = RayTaskError("train_candidate", "Traceback ...", cause, pid=7, ip="10.0.0.1")
    assert _error_line(error) == "ModuleNotFoundError: No module named 'nas.evaluators'"
    plain = RayTaskError("train_candidate", "Traceback ...", KeyError("x"), pid=7, ip="10.0.0.1")
    assert _error_line(plain) == "KeyError: 'x'"
    assert _error_line(TimeoutError()) == "TimeoutError"


def test_warm_start_queues_zoo_networks_under_budget(local_ray, tmp_path: Path) -> None:
    # 42 MFLOPs admits three zoo networks, of three kinds, and a fifth of the tiny space.
    config = SearchConfig(
        **{**FAST, "warm_start": True, "budget_mflops": 42.0},
        trials=2,
        storage=f"sqlite:///{tmp_path / 'nas.db'}",
        out=str(tmp_path / "out"),
    )
    result = search(config)
    study = optuna.load_study(study_name=result.study_name, storage=config.storage)
    baselines = [t for t in study.trials if t.user_attrs.get("baseline")]
    # Every zoo network under the budget is trained first, as a baseline beside the search.
    assert [t.user_attrs["baseline"] for t in baselines][:2] == [
        "mobilenet_v1_0.25",
        "shufflenet_v2_x0_5",
    ]
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["mflops"] <= 42 for t in baselines)
    assert {t.user_attrs["baseline"] for t in baselines} == {
        "mobilenet_v1_0.25",
        "shufflenet_v2_x0_5",
        "shufflenet_v1_g3_x0_5",
    }
    # Baselines do not count toward --trials: two searched candidates are trained besides them.
    searched = [
        t for t in trials_by_outcome(study).get("trained", []) if not t.user_attrs.get("baseline")
    ]
    assert len(searched) == 2 and result.n_trained == 2 and result.n_baselines == 3


def _trained_count(db: Path) -> int:
    """Trials whose outcome says trained, read from Optuna's tables read-only: an `RDBStorage`
    opened beside a driver still making its database races it to create the same tables."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
            (count,) = connection.execute(
                "SELECT COUNT(*) FROM trial_user_attributes WHERE key = ? AND value_json = ?",
                (OUTCOME_ATTR, json.dumps("trained")),
            ).fetchone()
    except sqlite3.Error:  # no tables yet, or locked mid-write
        return 0
    return int(count)


def test_resume_after_sigkill_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "nas.db"
    args = [
        sys.executable,
        "-m",
        "nas.cli",
        "search",
        "--space",
        "tiny",
        "--budget-mflops",
        str(BUDGET),
        "--limit-train",
        "400",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--workers",
        "2",
        "--no-warm-start",
        "--no-early-stopping",
        "--trials",
        "4",
        "--confirm-seeds",
        "0",
        "--storage",
        f"sqlite:///{db}",
        "--out",
        str(tmp_path / "out"),
    ]
    process = subprocess.Popen(
        args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while _trained_count(db) < 1 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
    assert process.poll() is None, process.stderr.read().decode()
    os.killpg(process.pid, signal.SIGKILL)  # the driver and the local Ray it started
    process.wait()
    before = _trained_count(db)
    assert 1 <= before < 4

    resumed = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    storage = optuna.storages.RDBStorage(f"sqlite:///{db}")
    study = optuna.load_study(
        study_name=optuna.get_all_study_summaries(storage)[0].study_name, storage=storage
    )
    check_search(study, 4, epochs=2)
    interrupted = [t for t in study.trials if t.user_attrs.get(OUTCOME_ATTR) == "interrupted"]
    assert interrupted, "the killed driver left trials running; resume must have re-run them"
    for trial in interrupted:
        rerun = [t for t in study.trials if t.user_attrs.get("retry_of") == trial.number]
        assert len(rerun) == 1
        if "arch" in trial.user_attrs:  # killed after pricing: the same candidate runs again
            assert rerun[0].user_attrs["arch"] == trial.user_attrs["arch"]
    archs = [t.user_attrs["arch"] for t in trials_by_outcome(study)["trained"]]
    assert len(archs) == len(set(archs))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--budget-mflops", "-5"], "--budget-mflops must be positive"),
        (["--budget-mflops", "5"], "below the cheapest architecture"),
        (["--target", "pentium"], "unknown latency target 'pentium'"),
        (["--sampler", "cmaes"], "Invalid value for '--sampler'"),
        (["--storage", "postgresql+psycopg://u:secret@127.0.0.1:1/nas"], "127.0.0.1:1"),
        (["--storage", "mysql://x/y"], "storage"),
        (["--resume", "--study", "never-made"], "no study 'never-made'"),
        (["--dataset", "mnist-ish"], "mnist-ish"),
        (["--objective", "reward"], "--target-ms"),
        (["--scheduler", "asha", "--epochs", "2"], "--scheduler asha"),
        (["--scheduler", "hyperband"], "Invalid value for '--scheduler'"),
        (["--proxy-resolution", "2"], "--proxy-resolution must be >= 4"),
    ],
)
def test_bad_input_is_one_line_exit_2(extra, message, tmp_path: Path, capsys) -> None:
    args = ["search", "--space", "tiny", *extra]
    if "--storage" not in extra:
        args += ["--storage", f"sqlite:///{tmp_path / 'nas.db'}"]
    if "--budget-mflops" not in extra:
        args += ["--budget-mflops", "60"]
    with pytest.raises(SystemExit) as exited:
        main(args)
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert message in err and err.count("\n") == 1
    assert "secret" not in err


def test_invalid_yaml_config_is_exit_2(tmp_path: Path, capsys) -> None:
    config = tmp_path / "search.yaml"
    config.write_text("budget-mflops: [150\n")
    with pytest.raises(SystemExit) as exited:
        main(["search", "--config", str(config)])
    assert exited.value.code == 2 and "invalid YAML" in capsys.readouterr().err
    config.write_text("budget-mflops: 150\ncolour: blue\n")
    with pytest.raises(SystemExit) as exited:
        main(["search", "--config", str(config)])
    assert exited.value.code == 2 and "unknown setting(s) colour" in capsys.readouterr().err


def test_flags_win_over_config_file(tmp_path: Path) -> None:
    from nas.config import build_config, read_config_file

    path = tmp_path / "search.yaml"
    path.write_text("budget-mflops: 150\ntrials: 7\nsampler: random\n")
    config = build_config(read_config_file(path), {"trials": 3})
    assert (config.budget_mflops, config.trials, config.sampler) == (150.0, 3, "random")


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs: 2.5\n", "setting epochs must be a whole number"),
        ("trials: yes\n", "setting trials must be a number"),
        ("lr: fast\n", "setting lr: 'fast' is not a valid float"),
        ("sampler: cmaes\n", "setting sampler: 'cmaes' is not one of"),
    ],
)
def test_a_config_file_value_is_typed_as_its_flag(text: str, message: str, tmp_path: Path) -> None:
    from nas.config import build_config, read_config_file
    from nas.errors import InputError

    path = tmp_path / "search.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        build_config(read_config_file(path), {})


def test_every_setting_has_the_type_its_flag_has(tmp_path: Path) -> None:
    from nas.config import FIELD_NAMES, SETTING_TYPES, build_config, read_config_file

    assert set(SETTING_TYPES) == FIELD_NAMES
    path = tmp_path / "search.yaml"
    path.write_text("epochs: 3.0\nearly-stopping: false\nbudget-mflops: 150\n")
    config = build_config(read_config_file(path), {})
    assert type(config.epochs) is int and config.epochs == 3
    assert config.early_stopping is False and type(config.budget_mflops) is float


def test_a_local_ray_that_does_not_start_is_retried_then_one_line(monkeypatch) -> None:
    from nas import search as driver
    from nas.errors import SearchFailed

    attempts: list[int] = []
    failures_left = [1]

    def slow_node(**kwargs) -> None:
        attempts.append(1)
        if failures_left[0] > 0:
            failures_left[0] -= 1
            raise Exception("The current node timed out during startup.\nThis could happen ...")

    monkeypatch.setattr(driver.ray, "init", slow_node)
    monkeypatch.setattr(driver.ray, "shutdown", lambda: None)
    driver.start_local_ray(attempts=3, wait_s=0)
    assert len(attempts) == 2  # the second try started it

    attempts.clear()
    failures_left[0] = 99
    with pytest.raises(
        SearchFailed,
        match=r"local Ray did not start after 3 attempts \(.*timed "
        r"out.*overloaded",
    ) as info:
        driver.start_local_ray(attempts=3, wait_s=0)
    assert len(attempts) == 3 and "\n" not in str(info.value)
