"""`nas export --format executorch|ncnn`: phone files converted for real, checked in their own
runtimes, from a trial of a study and from a zoo name."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from results_studies import PROXY_CLASSES, PROXY_INPUT, MadeStudy, make_search_study

import nas.export
from nas.cli import main


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> MadeStudy:
    return make_search_study(tmp_path_factory.mktemp("phone") / "nas.db", weights_for=("sampled",))


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return exited.value.code, " ".join(out.split()), " ".join(err.split())


def run_ncnn(param: Path, image: np.ndarray) -> np.ndarray:
    import ncnn

    with ncnn.Net() as net:
        assert (
            net.load_param(str(param)) == 0 and net.load_model(str(param.with_suffix(".bin"))) == 0
        )
        with net.create_extractor() as extractor:
            pixels = np.ascontiguousarray(image, dtype=np.float32)
            extractor.input(net.input_names()[0], ncnn.Mat(pixels))
            status, out = extractor.extract(net.output_names()[0])
            assert status == 0
            return np.array(out).reshape(-1).copy()


def test_ncnn_from_a_trained_trial(made: MadeStudy, tmp_path: Path, capsys) -> None:
    param = tmp_path / "m.param"
    args = ["--trial", str(made.numbers["sampled"][0]), "--input-size", "32"]
    code, out, err = run(
        ["export", "--storage", made.url, *args, "--format", "ncnn", "--out", str(param)], capsys
    )
    assert code == 0, err
    assert f"wrote {param} and {tmp_path / 'm.bin'} (ncnn, {PROXY_INPUT[0]}x32x32" in out
    assert "trained weights" in out and "output matches torch: max |difference|" in out
    logits = run_ncnn(param, np.zeros((PROXY_INPUT[0], 32, 32), np.float32))
    assert logits.shape == (PROXY_CLASSES,) and np.isfinite(logits).all()


def test_ncnn_from_a_zoo_name(tmp_path: Path, capsys) -> None:
    param = tmp_path / "mnv3.param"
    code, out, err = run(
        ["export", "--arch", "mobilenet_v3_small", "--input-size", "32", "--num-classes", "10"]
        + ["--format", "ncnn", "--out", str(param)],
        capsys,
    )
    assert code == 0, err
    assert "3x32x32 input, 10 classes, UNTRAINED" in out and "untrained" in out
    assert run_ncnn(param, np.ones((3, 32, 32), np.float32)).shape == (10,)


@pytest.mark.slow
def test_executorch_from_a_trained_trial(made: MadeStudy, tmp_path: Path, capsys) -> None:
    from executorch.runtime import Runtime

    pte = tmp_path / "m.pte"
    args = ["--trial", str(made.numbers["sampled"][1]), "--input-size", "32"]
    code, out, err = run(
        ["export", "--storage", made.url, *args, "--format", "executorch", "--out", str(pte)],
        capsys,
    )
    assert code == 0, err
    assert "ExecuTorch" in out and "(XNNPACK) output matches torch" in out
    import torch

    program = Runtime.get().load_program(pte.read_bytes())  # held: the method runs in it
    method = program.load_method("forward")
    (logits,) = method.execute([torch.zeros(1, PROXY_INPUT[0], 32, 32)])
    assert logits.shape == (1, PROXY_CLASSES)


def test_a_failed_check_writes_nothing_and_exits_1(tmp_path: Path, capsys, monkeypatch) -> None:
    compare = nas.export.compare
    monkeypatch.setattr(
        nas.export,
        "compare",
        lambda want, got, runtime, *margin: compare(want, np.asarray(got) + 1e-2, runtime, *margin),
    )
    code, _, err = run(
        ["export", "--arch", "mobilenet_v3_small", "--input-size", "32"]
        + ["--format", "ncnn", "--out", str(tmp_path / "m.param")],
        capsys,
    )
    assert code == 1 and "export failed" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "fmt, module, out, message",
    [
        ("ncnn", "pnnx", "m.param", "--format ncnn needs pnnx, which is not installed here"),
        ("executorch", "executorch", "m.pte", "--format executorch needs executorch"),
        ("ncnn", None, "m.ncnn", "pass --out"),
    ],
)
def test_missing_runtime_or_bad_out_is_one_line_and_exit_2(
    tmp_path: Path, capsys, monkeypatch, fmt: str, module: str | None, out: str, message: str
) -> None:
    if module:
        monkeypatch.setitem(sys.modules, module, None)
    code, _, err = run(
        ["export", "--arch", "mobilenet_v3_small", "--format", fmt, "--out", str(tmp_path / out)],
        capsys,
    )
    assert code == 2 and err.startswith("nas: error: ") and message in err, err
    assert "pip install 'nas[phone]'" in err or module is None
    assert list(tmp_path.iterdir()) == []
