"""`nas export` and the Pareto artifacts: model files that load and compute what torch does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import optuna
import pytest
import torch
from optuna.artifacts import get_all_artifact_meta
from results_studies import PROXY_CLASSES, PROXY_INPUT, MadeStudy, make_search_study
from safetensors.torch import load_file

import nas.export
from nas.artifacts import WEIGHTS_FILENAME, attach_pareto_artifacts, find_weights
from nas.cli import main
from nas.front import pareto_rows
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model
from nas.search_spaces.resolve import resolve_arch
from nas.storage import artifact_store_for, download


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> MadeStudy:
    """Sampled trials carry trained weights (as a search that keeps weights leaves them); the
    zoo trials do not."""
    return make_search_study(tmp_path_factory.mktemp("export") / "nas.db", weights_for=("sampled",))


@pytest.fixture(scope="module")
def study(made: MadeStudy) -> optuna.Study:
    return optuna.load_study(study_name=made.name, storage=made.url)


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return exited.value.code, out, " ".join(err.split()) if err.count("\n") <= 1 else err


def export(made: MadeStudy, capsys, *args: str) -> str:
    code, out, err = run(["export", "--storage", made.url, *args], capsys)
    assert code == 0, err
    return " ".join(out.split())


def trained_weights(
    made: MadeStudy, study: optuna.Study, number: int, tmp_path: Path
) -> dict[str, torch.Tensor]:
    """The weights artifact, fetched the way a user would, independently of the export code."""
    meta = find_weights(study, study.trials[number])
    assert meta is not None and meta.filename == WEIGHTS_FILENAME
    path = download(artifact_store_for(made.url), meta.artifact_id, tmp_path / "w.safetensors")
    return load_file(path)


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_onnx_untrained_at_the_deployment_input(made: MadeStudy, tmp_path: Path, capsys) -> None:
    number = made.numbers["zoo"]
    out = export(
        made, capsys, "--trial", str(number), "--format", "onnx", "--out", str(tmp_path / "m.onnx")
    )
    assert "3x224x224 input, 1000 classes, UNTRAINED (random initialisation)" in out
    assert "onnxruntime" in out and "max |difference|" in out and "untrained" in out
    model = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(model)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    assert meta["trained"] == "false" and meta["trial"] == str(number)
    assert meta["arch"] == Arch.from_string(meta["arch"]).to_string()
    x = np.random.default_rng(0).standard_normal((3, 3, 224, 224)).astype(np.float32)
    logits = run_onnx(tmp_path / "m.onnx", x)  # any batch size: the batch axis is dynamic
    assert logits.shape == (3, 1000) and np.isfinite(logits).all()
    # Calibrated batch norms: logits of a size on which the runtimes' agreement means something.
    assert np.abs(logits).max() > 1e-3


def test_onnx_with_trained_weights_matches_torch(
    made: MadeStudy, study: optuna.Study, tmp_path: Path, capsys
) -> None:
    number = made.numbers["sampled"][0]
    out = export(
        made, capsys, "--trial", str(number), "--format", "onnx", "--out", str(tmp_path / "m.onnx")
    )
    assert f"{PROXY_INPUT[0]}x224x224 input, {PROXY_CLASSES} classes, trained weights" in out
    assert "UNTRAINED" not in out
    model = build_model(
        Arch.from_string(study.trials[number].user_attrs["arch"]),
        (PROXY_INPUT[0], 224, 224),
        PROXY_CLASSES,
    )
    model.load_state_dict(trained_weights(made, study, number, tmp_path))
    x = torch.randn(2, PROXY_INPUT[0], 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    np.testing.assert_allclose(
        run_onnx(tmp_path / "m.onnx", x.numpy()), expected, rtol=1e-4, atol=1e-5
    )
    fresh = build_model(model.arch, (PROXY_INPUT[0], 224, 224), PROXY_CLASSES).eval()
    with torch.no_grad():
        assert not np.allclose(fresh(x).numpy(), expected, atol=1e-3)  # weights mattered


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_loads_and_runs(
    made: MadeStudy, study: optuna.Study, tmp_path: Path, capsys
) -> None:
    number = made.numbers["sampled"][1]
    out = export(
        made,
        capsys,
        "--trial",
        str(number),
        "--format",
        "torchscript",
        "--input-size",
        "32",
        "--out",
        str(tmp_path / "m.pt"),
    )
    assert "torch.jit.load output matches torch" in out
    # The latency of the model as exported, priced at its own input by the study's target.
    assert f"ms on armv8 at {PROXY_INPUT[0]}x32x32" in " ".join(out.split())
    files = {"nas.json": ""}
    loaded = torch.jit.load(str(tmp_path / "m.pt"), _extra_files=files)
    assert json.loads(files["nas.json"])["trained"] == "true"
    model = build_model(
        Arch.from_string(study.trials[number].user_attrs["arch"]),
        (PROXY_INPUT[0], 32, 32),
        PROXY_CLASSES,
    )
    model.load_state_dict(trained_weights(made, study, number, tmp_path))
    x = torch.randn(4, PROXY_INPUT[0], 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), rtol=1e-4, atol=1e-5)


def test_state_dict_is_safetensors_for_the_built_model(
    made: MadeStudy, study: optuna.Study, tmp_path: Path, capsys
) -> None:
    number = made.numbers["zoo_by_arch"]
    export(
        made,
        capsys,
        "--trial",
        str(number),
        "--format",
        "state-dict",
        "--num-classes",
        "7",
        "--out",
        str(tmp_path / "m.safetensors"),
    )
    arch = Arch.from_string(study.trials[number].user_attrs["arch"])
    model = build_model(arch, (3, 224, 224), 7)
    model.load_state_dict(load_file(tmp_path / "m.safetensors"), strict=True)


def test_json_reproduces_the_arch_and_its_record(
    made: MadeStudy, study: optuna.Study, tmp_path: Path, capsys
) -> None:
    for number, trained in ((made.numbers["zoo"], False), (made.numbers["sampled"][2], True)):
        path = tmp_path / f"trial-{number}.json"
        out = export(made, capsys, "--trial", str(number), "--format", "json", "--out", str(path))
        assert ("exist for this trial" in out) and (("do not exist" in out) != trained)
        document = json.loads(path.read_text())
        attrs = study.trials[number].user_attrs
        arch = Arch.from_string(attrs["arch"])
        assert Arch.from_string(document["arch"]) == arch
        assert resolve_arch(str(path)) == arch  # `nas arch show` / `nas train` read it as is
        assert document["trained"] is trained and document["trial"] == number
        assert document["study"] == made.name and document["recipe"] == attrs["recipe"]
        for key in ("mflops", "params", "latency_ms", "accuracy", "seed", "target"):
            assert document[key] == attrs[key]
        assert document["dataset"]["num_classes"] == PROXY_CLASSES


def test_best_picks_the_most_accurate_front_trial_under_max_ms(
    made: MadeStudy, study: optuna.Study, tmp_path: Path, capsys
) -> None:
    front = pareto_rows(study)
    for max_ms in (None, front[0].latency_ms):
        fitting = [r for r in front if max_ms is None or r.latency_ms <= max_ms]
        expected = max(fitting, key=lambda r: r.accuracy).number
        args = ["--best", "--format", "json", "--out", str(tmp_path / "best.json")]
        export(made, capsys, *args, *(["--max-ms", str(max_ms)] if max_ms else []))
        assert json.loads((tmp_path / "best.json").read_text())["trial"] == expected


@pytest.mark.parametrize(
    "args, message",
    [
        (["--study", "nope", "--trial", "0"], "no study named 'nope'"),
        (["--trial", "99"], "has no trial 99 (trials 0-10)"),
        (["--trial", "{infeasible}"], "over budget and was never trained"),
        (["--trial", "{failed}"], "its training failed (RuntimeError: the worker died)"),
        (["--trial", "{stopped}"], None),  # stopped early is trained: exportable
        (["--trial", "{unpriced}"], "has no architecture recorded"),
        (["--trial", "0", "--format", "tflite"], "Invalid value for '--format'"),
        (["--trial", "0", "--best"], "exactly one of --trial N, --best and --arch NAME"),
        ([], "exactly one of --trial N, --best and --arch NAME"),
        (["--trial", "0", "--max-ms", "5"], "--max-ms goes with --best"),
        (["--best", "--max-ms", "0.5"], "runs in 0.5 ms or less; the fastest on the front"),
        (["--trial", "{sampled}", "--num-classes", "5"], "trained for 10 classes"),
        (["--trial", "{sampled}", "--artifact-dir", "{empty}"], "is not in the artifact store"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    made: MadeStudy, tmp_path: Path, capsys, args: list[str], message: str | None
) -> None:
    numbers = {
        **made.numbers,
        "sampled": made.numbers["sampled"][0],
        "empty": tmp_path / "elsewhere",
    }
    args = [arg.format(**numbers) for arg in args]
    if "--format" not in args:
        args += ["--format", "json"]
    code, _, err = run(
        ["export", "--storage", made.url, *args, "--out", str(tmp_path / "x.json")], capsys
    )
    if message is None:
        assert code == 0, err
        return
    assert code == 2 and err.startswith("nas: error: ") and message in err, err
    assert not (tmp_path / "x.json").exists()


def test_missing_database_is_exit_2_and_not_created(tmp_path: Path, capsys) -> None:
    code, _, err = run(
        [
            "export",
            "--storage",
            str(tmp_path / "none.db"),
            "--best",
            "--format",
            "json",
            "--out",
            str(tmp_path / "x.json"),
        ],
        capsys,
    )
    assert code == 2 and "no study database at" in err
    assert not (tmp_path / "none.db").exists()


def test_a_failed_check_writes_nothing_and_exits_1(
    made: MadeStudy, tmp_path: Path, capsys, monkeypatch
) -> None:
    compare = nas.export.compare
    monkeypatch.setattr(
        nas.export,
        "compare",
        lambda want, got, runtime, *margin: compare(want, np.asarray(got) + 1e-2, runtime, *margin),
    )
    code, _, err = run(
        [
            "export",
            "--storage",
            made.url,
            "--trial",
            str(made.numbers["sampled"][0]),
            "--format",
            "onnx",
            "--input-size",
            "32",
            "--out",
            str(tmp_path / "m.onnx"),
        ],
        capsys,
    )
    assert code == 1 and "export failed" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # not even a temporary file


def test_pareto_artifacts_are_attached_to_the_study_once(
    made: MadeStudy, study: optuna.Study, tmp_path: Path
) -> None:
    sampled = set(made.numbers["sampled"])
    rows = [row for row in pareto_rows(study) if row.number in sampled][:2]
    assert rows, "the fixture's front holds sampled trials"
    attached = attach_pareto_artifacts(study, made.url, rows)
    assert set(attached) == {row.number for row in rows}
    metas = {meta.filename: meta for meta in get_all_artifact_meta(study)}
    for row in rows:
        onnx_meta = metas[f"trial-{row.number}.onnx"]
        json_meta = metas[f"trial-{row.number}.arch.json"]
        assert attached[row.number] == [onnx_meta.artifact_id, json_meta.artifact_id]
        assert json_meta.mimetype == "application/json"
        store = artifact_store_for(made.url)
        model = download(store, onnx_meta.artifact_id, tmp_path / f"{row.number}.onnx")
        x = np.zeros((1, PROXY_INPUT[0], 224, 224), np.float32)  # trained: proxy channels
        assert run_onnx(model, x).shape == (1, PROXY_CLASSES)
        document = json.loads(
            download(store, json_meta.artifact_id, tmp_path / f"{row.number}.json").read_text()
        )
        assert document["arch"] == row.arch and document["trained"] is True
    assert attach_pareto_artifacts(study, made.url, rows) == attached  # a resumed search
    assert len(get_all_artifact_meta(study)) == len(metas)
