"""Finalize: the picks and the zoo trained on the whole training split, scored once on test.

Real Ray, real SQLite and PostgreSQL, real images; one epoch per run keeps it short, and the
end-to-end runs train on one or two thousand images in the full set's files rather than the ten
thousand of the embedded subset, since finalize trains on all of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from tiny_search import TINY_SEARCH, small_fashion_mnist

from nas.cli import main
from nas.config import SearchConfig
from nas.evaluators.uncertainty import wilson_interval
from nas.finalize import FinalizeOptions, cover_zoo_first, finalize
from nas.front import TrainedRow
from nas.reporting import write_report
from nas.reporting.final import FinalRow, final_rows, verdicts
from nas.search import search

# The one zoo network under the budget (MFLOPs at 224), which finalize trains beside the pick:
# the tiny search's own budget admits five, and each would be one more run per seed.
ZOO_NETWORK, BUDGET = "shufflenet_v1_g3_x0_5", 39.0
SMALL_IMAGES = (1000, 500)  # the small Fashion-MNIST files the end-to-end runs train on
# The interrupted finalize's files: enough training images that the zoo network's run (the
# second, and the slower network) lasts seconds even on a fast idle machine, against a poll of a
# tenth of a second, so the driver is killed while it runs every time.
KILLED_IMAGES = (2000, 500)
SEARCH = dict(TINY_SEARCH, trials=2, budget_mflops=BUDGET)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> dict[str, str]:
    """SearchConfig settings of the small Fashion-MNIST files."""
    folder = small_fashion_mnist(tmp_path_factory.mktemp("fashion-mnist"), *SMALL_IMAGES)
    return {"dataset": "fashion-mnist", "data_dir": str(folder)}


def final_trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=f"{name}.final", storage=storage).get_trials()


def check_final_runs(
    storage: str, name: str, seeds: list[int], artifact_dir: Path, images: tuple[int, int]
) -> None:
    """Every pick and the zoo network, once per seed, trained on all images and scored once.

    `images`: the dataset's training and test images; no validation split is taken out."""
    train_images, test_images = images
    trials = final_trials(storage, name)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    keys = [(t.user_attrs["arch"], t.user_attrs["seed"]) for t in complete]
    assert len(keys) == len(set(keys)), "a run was trained twice"
    assert sorted({seed for _, seed in keys}) == seeds
    zoo = [t for t in complete if t.user_attrs.get("baseline")]
    assert {t.user_attrs["baseline"] for t in zoo} == {ZOO_NETWORK}
    assert len(complete) == 2 * len(seeds)  # one searched pick (--top 1) and the zoo network
    final_study = optuna.load_study(study_name=f"{name}.final", storage=storage)
    for trial in complete:
        attrs = trial.user_attrs
        assert trial.value == attrs["test_accuracy"] and 0 <= trial.value <= 1
        assert attrs["test_count"] == test_images
        assert attrs["test_correct"] == round(attrs["test_accuracy"] * test_images)
        low, high = attrs["test_interval"]
        assert low <= attrs["test_accuracy"] <= high
        assert attrs["accuracy"] is None  # no validation split, so no validation accuracy
        assert [epoch["val_accuracy"] for epoch in attrs["curve"]] == [None]
        assert attrs["recipe"]["epochs"] == 1 and attrs["recipe"]["seed"] == attrs["seed"]
        assert attrs["latency_ms"] > 0 and attrs["mflops"] <= BUDGET
        assert attrs["worker_device"]["type"] == "cpu" and attrs["worker_host"]
        metas = get_all_artifact_meta(trial, storage=final_study._storage)
        assert [meta.filename for meta in metas] == ["weights.safetensors"]
    identity = final_study.user_attrs["identity"]
    assert identity["train_images"] == train_images
    assert identity["recipe"]["max_seconds"] is None
    assert any(artifact_dir.rglob("*")), "the weights were written to the artifact store"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_search_finalize_then_more_seeds_report_and_export(
    local_ray, small_data: dict[str, str], backend: str, postgres_url: str, tmp_path: Path, capsys
) -> None:
    name = f"test-final-{uuid.uuid4().hex[:8]}"
    storage = f"sqlite:///{tmp_path / 'nas.db'}" if backend == "sqlite" else postgres_url
    artifacts = tmp_path / "artifacts"
    settings = dict(
        **SEARCH,
        **small_data,
        storage=storage,
        study=name,
        out=str(tmp_path / "out"),
        artifact_dir=str(artifacts),
    )
    try:
        result = search(SearchConfig(**settings, finalize=1, final_epochs=1, final_seeds=1))
        assert result.final is not None and result.final.n_finished == 2
        check_final_runs(storage, name, [0], artifacts, SMALL_IMAGES)
        search_study = optuna.load_study(study_name=name, storage=storage)
        assert len([t for t in search_study.trials if t.user_attrs.get("baseline")]) == 0

        # A second seed through the Python API: only the missing runs are trained.
        more = finalize(
            FinalizeOptions(
                study=name,
                storage=storage,
                top=1,
                epochs=1,
                seeds=2,
                workers=2,
                artifact_dir=str(artifacts),
            ),
            say=lambda message: None,
        )
        assert (more.n_already, more.n_finished, more.n_failed) == (2, 2, 0)
        check_final_runs(storage, name, [0, 1], artifacts, SMALL_IMAGES)

        rows = final_rows(search_study)
        assert [row.zoo for row in rows].count(ZOO_NETWORK) == 1
        assert all(len(row.accuracies) == 2 and row.count == 2 * SMALL_IMAGES[1] for row in rows)
        (verdict,) = verdicts(rows)
        assert verdict.zoo.zoo == ZOO_NETWORK
        if verdict.challenger is not None:  # the searched pick is faster than the zoo network
            assert "Welch t-test over 2 and 2 seeds" in verdict.text()

        # The report reads the study only through the Study object, its trials and its final
        # companion, as final_rows and verdicts just did on this backend; what it adds is
        # rendering, which no backend changes, so one backend draws it.
        if backend == "sqlite":
            report = write_report(search_study, storage, tmp_path / "report")
            markdown = report.markdown.read_text()
            assert "## Final training" in markdown and "final_training.png" in markdown
            assert (tmp_path / "report" / "final_training.png").stat().st_size > 10_000
            assert "Final training (test split, scored once)" in report.html.read_text()

        # Export takes the final training's weights of the finalized trial. On both backends:
        # the command opens the storage URL itself and finds the weights' artifact there.
        picked = next(row.finalizes for row in rows if row.zoo is None)
        out = tmp_path / "model.safetensors"
        with pytest.raises(SystemExit) as exited:
            main(
                [
                    "export",
                    "--study",
                    name,
                    "--storage",
                    storage,
                    "--trial",
                    str(picked),
                    "--format",
                    "state-dict",
                    "--out",
                    str(out),
                    "--artifact-dir",
                    str(artifacts),
                ]
            )
        assert exited.value.code == 0
        printed = " ".join(capsys.readouterr().out.split())
        assert "final training's (1 epochs on the whole training split, seed 0" in printed

        # The final study's own run exports as well, with the data its search recorded.
        final_study = optuna.load_study(study_name=f"{name}.final", storage=storage)
        assert final_study.user_attrs["dataset"] == search_study.user_attrs["dataset"]
        run = next(t for t in final_study.trials if t.user_attrs.get("finalizes") == picked)
        document = tmp_path / "final-run.json"
        with pytest.raises(SystemExit) as exited:
            main(
                [
                    "export",
                    "--study",
                    f"{name}.final",
                    "--storage",
                    storage,
                    "--trial",
                    str(run.number),
                    "--format",
                    "json",
                    "--out",
                    str(document),
                    "--artifact-dir",
                    str(artifacts),
                ]
            )
        assert exited.value.code == 0
        exported = json.loads(document.read_text())
        assert exported["trained"] is True and exported["study"] == f"{name}.final"
        assert exported["dataset"] == search_study.user_attrs["dataset"]
        assert exported["search"]["target"] == "armv8"
    finally:
        if backend == "postgresql":
            for study_name in (name, f"{name}.final"):
                optuna.delete_study(study_name=study_name, storage=storage)


def _final_run_states(storage: optuna.storages.RDBStorage) -> Counter[TrialState]:
    """How many runs of the final study are in each state; none before it exists."""
    try:
        found = [s for s in storage.get_all_studies() if s.study_name.endswith(".final")]
        if not found:
            return Counter()
        trials = storage.get_all_trials(found[0]._study_id, deepcopy=False)
        return Counter(t.state for t in trials)
    except Exception:  # mid-write
        return Counter()


def test_an_interrupted_finalize_resumes_without_training_anything_twice(
    local_ray, tmp_path: Path
) -> None:
    db = tmp_path / "nas.db"
    name = "killed-final"
    artifacts = tmp_path / "artifacts"
    storage = f"sqlite:///{db}"
    data = small_fashion_mnist(tmp_path / "fashion-mnist", *KILLED_IMAGES)
    search(
        SearchConfig(
            **SEARCH,
            dataset="fashion-mnist",
            data_dir=str(data),
            storage=storage,
            study=name,
            out=str(tmp_path / "out"),
        )
    )
    # Opened once, on the database the search made, so that a poll costs one query.
    polled = optuna.storages.RDBStorage(storage)
    args = [
        sys.executable,
        "-m",
        "nas.cli",
        "finalize",
        "--storage",
        storage,
        "--top",
        "1",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--workers",
        "1",
        "--artifact-dir",
        str(artifacts),
    ]
    process = subprocess.Popen(
        args, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    # Killed once the first of the two runs (the searched pick, then the zoo network) is
    # complete and the second is running, so that the rerun has a left-over run to fail.
    at_kill: Counter[TrialState] = Counter()
    deadline = time.monotonic() + 300
    while (
        not (at_kill[TrialState.COMPLETE] and at_kill[TrialState.RUNNING])
        and time.monotonic() < deadline
        and process.poll() is None
    ):
        time.sleep(0.1)
        at_kill = _final_run_states(polled)
    assert process.poll() is None, process.stderr.read().decode()
    os.killpg(process.pid, signal.SIGKILL)  # the driver and the local Ray it started
    process.wait()
    assert _final_run_states(polled) == {TrialState.COMPLETE: 1, TrialState.RUNNING: 1}

    resumed = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    check_final_runs(storage, name, [0], artifacts, KILLED_IMAGES)
    (left,) = [t for t in final_trials(storage, name) if t.state != TrialState.COMPLETE]
    assert left.state == TrialState.FAIL and left.user_attrs.get("outcome") == "interrupted"
    assert "Final training of killed-final" in resumed.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--top", "0"], "Invalid value for '--top'"),
        (["--seeds", "0"], "Invalid value for '--seeds'"),
        (["--study", "never-made"], "never-made"),
        ([], "no searched candidate trained to the end yet"),
    ],
)
def test_bad_input_is_one_line_exit_2(extra, message, tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = optuna.create_study(study_name="empty", storage=storage, directions=["maximize"] * 2)
    study.set_user_attr("config", SearchConfig(**SEARCH).to_dict())
    with pytest.raises(SystemExit) as exited:
        main(["finalize", "--storage", storage, *extra])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_finalize_of_a_missing_database_is_exit_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["finalize", "--storage", f"sqlite:///{tmp_path / 'typo.db'}"])
    assert exited.value.code == 2
    assert "no study database" in capsys.readouterr().err


def _row(latency: float, accuracy: float, number: int) -> TrainedRow:
    """A front member whose accuracy is a mean over seeds, as `trained_rows` makes them."""
    return TrainedRow(
        number=number,
        accuracy=accuracy,
        seeds=1,
        accuracy_mean=accuracy,
        latency_ms=latency,
        mflops=50.0,
        params=1_000_000,
        arch=f"arch-{number}",
    )


def test_picks_challenge_each_zoo_network_first() -> None:
    front = [_row(5, 0.80, 1), _row(8, 0.83, 2), _row(12, 0.85, 3), _row(20, 0.86, 4)]
    # Zoo at 9 and 13 ms: the best member at or under each (trials 2 and 3), then the best left.
    assert [r.number for r in cover_zoo_first(front, 3, [13.0, 9.0])] == [2, 3, 4]
    assert [r.number for r in cover_zoo_first(front, 1, [13.0, 9.0])] == [2]
    # No zoo network is reachable (all faster than every member): the most accurate ones.
    assert [r.number for r in cover_zoo_first(front, 2, [1.0])] == [3, 4]
    assert len(cover_zoo_first(front, 10, [])) == 4


def _final(label: str, latency: float, accuracies: tuple[float, ...], zoo: bool) -> FinalRow:
    count = 10000 * len(accuracies)
    return FinalRow(
        label=label,
        arch=label,
        zoo=label if zoo else None,
        finalizes=None if zoo else 1,
        latency_ms=latency,
        mflops=100.0,
        seeds=tuple(range(len(accuracies))),
        accuracies=accuracies,
        correct=round(sum(accuracies) * 10000),
        count=count,
        train_seconds=1.0,
    )


def test_verdicts_say_whether_a_searched_network_beats_each_zoo_network() -> None:
    rows = [
        _final("trial 1", 7.0, (0.861, 0.859), zoo=False),
        _final("trial 2", 14.0, (0.842, 0.846), zoo=False),
        _final("fast_zoo", 6.0, (0.80, 0.81), zoo=True),
        _final("mid_zoo", 9.0, (0.820, 0.822), zoo=True),
        _final("close_zoo", 15.0, (0.85, 0.87), zoo=True),
    ]
    found = {verdict.zoo.label: verdict for verdict in verdicts(rows)}
    assert found["fast_zoo"].challenger is None
    assert "no finalized searched network" in found["fast_zoo"].text()
    assert found["mid_zoo"].challenger.label == "trial 1" and found["mid_zoo"].beats
    assert "beats it beyond the noise" in found["mid_zoo"].text()
    # Under 15 ms both searched networks fit: the more accurate one (trial 1) is the challenger.
    assert found["close_zoo"].challenger.label == "trial 1"
    assert not found["close_zoo"].beats and "a tie" in found["close_zoo"].text()
    single = [_final("trial 1", 7.0, (0.86,), zoo=False), _final("z", 9.0, (0.84,), zoo=True)]
    (verdict,) = verdicts(single)
    assert "two-proportion z-test" in verdict.text() and verdict.beats
    assert verdict.zoo.interval == wilson_interval(8400, 10000)
