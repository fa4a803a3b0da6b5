"""Study attributes through their one reader, on the studies earlier versions left behind.

The databases under benchmarks/results/ were written by earlier versions of `nas search`,
confirm and finalize; every test here works on a copy in tmp_path (SQLite would otherwise leave
its -wal and -shm files beside the committed database).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from safetensors.torch import save_file

from nas.cli import main
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model
from nas.study_attrs import DatasetInfo, StudyAttrs, search_attrs, write_study_attrs
from nas.trials import TrialAttrs

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
COMMITTED = sorted(RESULTS.rglob("*.db"))
END_TO_END = RESULTS / "end_to_end" / "study.db"
SEARCH = "e2e-mobile-armv8-150mflops-cifar10"
CIFAR = DatasetInfo("imagefolder", (3, 32, 32), 10)


def copy_of(db: Path, tmp_path: Path) -> str:
    """A storage URL of a copy of the committed database `db`."""
    copy = tmp_path / db.relative_to(RESULTS)
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, copy)
    return f"sqlite:///{copy}"


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return exited.value.code, " ".join(out.split()), err


def test_the_committed_databases_are_there() -> None:
    assert END_TO_END in COMMITTED and len(COMMITTED) >= 7


def test_dataset_is_read_as_a_mapping_or_as_a_bare_name() -> None:
    recorded = {"name": "imagefolder", "input_shape": [3, 32, 32], "num_classes": 10}
    assert DatasetInfo.parse(recorded) == CIFAR
    assert CIFAR.to_dict() == recorded and CIFAR.channels == 3
    assert DatasetInfo.parse("imagefolder") == DatasetInfo("imagefolder")
    assert DatasetInfo.parse(None) is None and DatasetInfo.parse(7) is None


def test_one_writer_and_one_reader_round_trip() -> None:
    study = optuna.create_study()
    write_study_attrs(study, dataset=CIFAR, recipe={"epochs": 2}, finalizes_study="s")
    assert study.user_attrs["dataset"] == CIFAR.to_dict()  # stored as JSON, not as an object
    attrs = StudyAttrs.of(study)
    assert attrs.dataset == CIFAR and attrs.recipe == {"epochs": 2}
    assert attrs.is_companion and attrs.search_study == "s" and attrs.config is None
    with pytest.raises(TypeError, match="not study attributes: budget"):
        write_study_attrs(study, budget=150)
    study.set_user_attr("written_by_hand", 1)  # a key this version does not know is left out
    assert StudyAttrs.of(study) == attrs


@pytest.mark.parametrize("db", COMMITTED, ids=lambda db: str(db.relative_to(RESULTS)))
def test_every_committed_study_reads_through_the_record(db: Path, tmp_path: Path) -> None:
    url = copy_of(db, tmp_path)
    names = optuna.get_all_study_names(url)
    for name in names:
        study = optuna.load_study(study_name=name, storage=url)
        attrs = StudyAttrs.of(study)
        if attrs.is_companion:
            assert attrs.search_study in names and name.startswith(attrs.search_study)
            inherited = search_attrs(study)
            assert (
                inherited.config
                == StudyAttrs.of(
                    optuna.load_study(study_name=attrs.search_study, storage=url)
                ).config
            )
            continue
        config = attrs.search_config()
        assert config is not None and config.target == attrs.target == "armv8"
        assert attrs.dataset == CIFAR and attrs.identity["space"] == config.space
        assert attrs.latency_table["target"] == "armv8" and attrs.space["name"] == "mobile"
        # a pinned 4-epoch proxy, or end-to-end edition 2's default 2-epoch one
        assert attrs.recipe["epochs"] in (2, 4) and attrs.confirms_study is None


def test_a_final_study_of_an_earlier_version_names_its_dataset_only(tmp_path: Path) -> None:
    url = copy_of(END_TO_END, tmp_path)
    final = optuna.load_study(study_name=f"{SEARCH}.final", storage=url)
    assert final.user_attrs["dataset"] == "imagefolder"  # as that version wrote it
    attrs = StudyAttrs.of(final)
    assert attrs.dataset == DatasetInfo("imagefolder") and attrs.finalizes_study == SEARCH
    assert attrs.identity["recipe"]["epochs"] == 10 and attrs.identity["train_images"] == 50_000
    inherited = search_attrs(final)  # the search's shape and classes, its own identity
    assert inherited.dataset == CIFAR and inherited.identity == attrs.identity
    assert inherited.target == "armv8" and inherited.recipe is None


def test_report_reads_every_committed_study(tmp_path: Path, capsys) -> None:
    for db in COMMITTED:
        url = copy_of(db, tmp_path)
        for name in optuna.get_all_study_names(url):
            if StudyAttrs.of(optuna.load_study(study_name=name, storage=url)).is_companion:
                continue
            out = tmp_path / "reports" / name
            code, stdout, err = run(
                ["report", "--storage", url, "--study", name, "--out", str(out)], capsys
            )
            assert code == 0, err
            assert f"Pareto front of {name}" in stdout
            markdown = (out / "report.md").read_text()
            assert "validation split of `imagefolder` at 3x32x32, 10 classes" in markdown
            if name == SEARCH:
                assert "## Final training" in markdown


def final_weights(url: str, tmp_path: Path, number: int) -> Path:
    """The artifact store of a copy of the committed database, holding the weights of one
    final run: the database records the artifact, whose file is not committed. They are the
    run's network as it was trained (at the data's input and classes), freshly initialised."""
    final = optuna.load_study(study_name=f"{SEARCH}.final", storage=url)
    trial = final.trials[number]
    (meta,) = get_all_artifact_meta(trial, storage=final._storage)
    arch = Arch.from_string(TrialAttrs.of(trial).arch)
    store = tmp_path / "artifacts"
    store.mkdir(exist_ok=True)
    model = build_model(arch, CIFAR.input_shape, CIFAR.num_classes)
    save_file(model.state_dict(), store / meta.artifact_id)
    return store


def test_export_from_a_final_study_of_an_earlier_version(tmp_path: Path, capsys) -> None:
    url = copy_of(END_TO_END, tmp_path)
    store = final_weights(url, tmp_path, 0)
    study = f"{SEARCH}.final"
    common = ["export", "--storage", url, "--study", study, "--trial", "0"]
    common += ["--artifact-dir", str(store)]

    document_path = tmp_path / "final-0.json"
    code, out, err = run([*common, "--format", "json", "--out", str(document_path)], capsys)
    assert code == 0, err
    assert "trained weights exist for this trial" in out
    document = json.loads(document_path.read_text())
    assert document["study"] == study and document["trained"] is True
    assert document["dataset"] == CIFAR.to_dict()  # the search's, by the back-pointer
    assert document["search"]["target"] == "armv8" and document["search"]["space"] == "mobile"
    assert document["recipe"]["epochs"] == 10

    model = tmp_path / "final-0.onnx"
    args = [*common, "--format", "onnx", "--input-size", "32", "--out", str(model)]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "the weights are the final training's (10 epochs on the whole training split" in out
    assert f"study {study} trial 0) on imagefolder" in out
    assert "takes 3-channel input and predicts its 10 classes" in out
    assert model.stat().st_size > 100_000
