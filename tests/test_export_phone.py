"""`nas export --format executorch|ncnn`: phone files converted for real, checked in their own
runtimes, from a trial of a study and from a zoo name."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from results_studies import PROXY_CLASSES, PROXY_INPUT, MadeStudy, make_search_study

import nas.export
from nas.cli import main
from nas.export import ModelSpec, build, export
from nas.export_forms import PooledChannelAggregate, four_dimensional
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import ChannelAggregate


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


# ---- the families' block kinds ----------------------------------------------------------------

MIXED = (
    "stem_c16_k3_s2_re:mp_k3_s2_c16:ds_k3_s1_c24_re:sv2_k3_s2_c48_re,sv2_k3_s1_c48_re:"
    "sv1_k3_s2_c96_g3_re,sv1_k3_s1_c96_g3_re:"
    "so_k2_s1_c96_g4_amax_re,so_k3_s1_c96_g4_amean_re,eesp_r5_s1_c96_re:eesp_r3_s2_c128_re:"
    "gb_e3_k3_s2_c64_se0.25_re,gb_e3_k3_s1_c64_re:fire_q8_c64_re:head_c64_re_d0.2"
)
"""Every block kind of the families in one small network, each in its forms: ShuffleNetV2's
strided and split units, ShuffleNetV1's concatenating and adding units, the shuffle-only
block with a grouped 2x2 convolution and max and mean aggregation, a strided Ghost bottleneck
with SE and a plain one, a Fire module, a depthwise-separable block, EESP units at stride 1
and 2; as few blocks as that takes, since ExecuTorch's lowering time grows with the graph. At
a 32x32 input the shuffle-only blocks see 2x2 maps, where pnnx mistranslates the aggregation
unless `nas.export_forms` rewrites it."""


def mixed_spec() -> ModelSpec:
    arch = Arch.from_string(MIXED)
    kinds = {block.kind.name for block in arch.blocks}
    assert kinds == {
        "maxpool",
        "separable",
        "shufflev2",
        "shufflev1",
        "shuffleonly",
        "ghost",
        "fire",
        "eesp",
    }
    return ModelSpec(arch, (3, 32, 32), 10)


@pytest.mark.parametrize(
    "fmt, out, runtime", [("onnx", "m.onnx", "onnxruntime "), ("ncnn", "m.param", "ncnn ")]
)
def test_every_new_kind_exports_and_passes_its_check(
    tmp_path: Path, fmt: str, out: str, runtime: str
) -> None:
    spec = mixed_spec()
    check = export(build(spec), spec, fmt, tmp_path / out, {"arch": MIXED})
    assert check is not None and check.tolerance_ok and check.runtime.startswith(runtime)
    assert (tmp_path / out).is_file()


@pytest.mark.slow
def test_every_new_kind_exports_to_executorch_and_passes_its_check(tmp_path: Path) -> None:
    spec = mixed_spec()
    check = export(build(spec), spec, "executorch", tmp_path / "m.pte", {"arch": MIXED})
    assert check is not None and check.tolerance_ok and "XNNPACK" in check.runtime


@pytest.mark.parametrize("mode", ["max", "mean"])
@pytest.mark.parametrize("side", [1, 2, 5])
def test_the_pooled_aggregation_computes_what_the_block_does(mode: str, side: int) -> None:
    x = torch.randn(2, 12, side, side)
    assert torch.equal(PooledChannelAggregate(mode, 2)(x), ChannelAggregate(mode, 2)(x))
    assert torch.allclose(PooledChannelAggregate(mode, 3)(x), ChannelAggregate(mode, 3)(x))


def test_the_ncnn_form_swaps_a_copy_and_leaves_other_models_alone() -> None:
    model = build(mixed_spec())
    swapped = four_dimensional(model)
    assert swapped is not model
    assert any(isinstance(module, ChannelAggregate) for module in model.modules())
    assert not any(isinstance(module, ChannelAggregate) for module in swapped.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(swapped(x), model(x))
    plain = build(
        ModelSpec(
            Arch.from_string("stem_c8_k3_s2_re:ds_k3_s1_c16_re:head_c0_re_d0"), (3, 16, 16), 10
        )
    )
    assert four_dimensional(plain) is plain
