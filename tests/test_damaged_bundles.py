"""A bundle's files damaged on their way back from the device: `nas lut import` and
`nas lut validate --timings` say which file and what to do, in one line, exit code 2."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from lut_spaces import SMALL_SPACE

from nas.cli import main

ORT_OUTPUT = """\
Total inference requests: 50
Average inference time cost: 0.482 ms
Min Latency: {min_s} s
"""
"""What onnxruntime_perf_test prints, cut to the lines the import reads."""


@pytest.fixture(scope="module")
def timed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of a small space, every run given an onnxruntime_perf_test output."""
    folder = tmp_path_factory.mktemp("timed")
    space = folder / "lut_test.yaml"
    space.write_text(SMALL_SPACE)
    bundle = folder / "bundle"
    args = ["lut", "bundle", "--target", "box", "--space", str(space), "--format", "onnx"]
    args += ["--input-size", "64", "--out", str(bundle), "--calibrate", "2", "--validate", "2"]
    assert _nas([*args, "--no-zoo"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    for run in manifest["runs"]:
        (bundle / "raw" / f"{run['run']}.txt").write_text(ORT_OUTPUT.format(min_s="0.000451"))
    device = {"serial": "abc", "ro.product.model": "Phone", "tool": "onnxruntime_perf_test"}
    (bundle / "raw" / "device.json").write_text(json.dumps(device))
    return bundle


def _nas(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(args)
    return int(exited.value.code or 0)


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _first_operator_output(bundle: Path) -> Path:
    manifest = json.loads((bundle / "manifest.json").read_text())
    run = next(r for r in manifest["runs"] if r["model"].startswith("op"))
    return bundle / "raw" / f"{run['run']}.txt"


DAMAGES: dict[str, Callable[[Path], None]] = {
    "truncated manifest": lambda b: (b / "manifest.json").write_bytes(
        (b / "manifest.json").read_bytes()[:300]
    ),
    "empty manifest": lambda b: (b / "manifest.json").write_bytes(b""),
    "binary manifest": lambda b: (b / "manifest.json").write_bytes(bytes(range(256))),
    "manifest of a list": lambda b: (b / "manifest.json").write_text("[1, 2]"),
    "manifest without models": lambda b: _edit_json(b / "manifest.json", lambda m: m.pop("models")),
    "manifest of a later version": lambda b: _edit_json(
        b / "manifest.json", lambda m: m.update(bundle_version=99)
    ),
    "manifest with a model of no role": lambda b: _edit_json(
        b / "manifest.json", lambda m: m["models"][1].pop("role")
    ),
    "manifest with an unknown format": lambda b: _edit_json(
        b / "manifest.json", lambda m: m.update(format="tflite")
    ),
    "manifest with a run outside raw/": lambda b: _edit_json(
        b / "manifest.json", lambda m: m["runs"][0].update(run="../../etc/passwd")
    ),
    "truncated device record": lambda b: (b / "raw" / "device.json").write_text('{"serial": '),
    "binary device record": lambda b: (b / "raw" / "device.json").write_bytes(b"\xff\xfe\x00"),
    "edited device record": lambda b: _edit_json(
        b / "raw" / "device.json", lambda d: d.update({"ro.product.model": 5})
    ),
    "timing of 1e308 s": lambda b: _first_operator_output(b).write_text(
        ORT_OUTPUT.format(min_s="1e308")
    ),
}


@pytest.mark.parametrize("command", ["import", "validate"])
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_bundle_is_one_line_and_exit_2(
    damage: str, command: str, timed_bundle: Path, tmp_path: Path, capsys
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(timed_bundle, bundle)
    DAMAGES[damage](bundle)
    if command == "import":
        args = ["lut", "import", str(bundle), "--target", "box", "--out", str(tmp_path / "t.json")]
    else:
        args = ["lut", "validate", "--target", "armv8", "--timings", str(bundle)]
        args += ["--out", str(tmp_path / "report")]
    capsys.readouterr()
    code = _nas(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("nas: error: "), err
    assert str(bundle) in err
    assert not (tmp_path / "t.json").exists()


def test_the_undamaged_bundle_imports(timed_bundle: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "t.json"
    assert _nas(["lut", "import", str(timed_bundle), "--target", "box", "--out", str(out)]) == 0
    assert out.is_file()


@pytest.fixture(scope="module")
def box_table(timed_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The table `nas lut import` makes of the timed bundle."""
    out = tmp_path_factory.mktemp("box") / "box.json"
    assert _nas(["lut", "import", str(timed_bundle), "--target", "box", "--out", str(out)]) == 0
    return out


OTHER_BUNDLES: dict[str, tuple[Callable[[Path], None], str]] = {
    "another device": (
        lambda b: _edit_json(b / "raw" / "device.json", lambda d: d.update(serial="xyz")),
        "was timed on another device (serial xyz) than table 'box' was measured on (serial abc)",
    ),
    "another space": (
        lambda b: _edit_json(b / "manifest.json", lambda m: m.update(space="mobile")),
        "timed networks of space 'mobile', which table 'box' does not cover (it covers lut_test)",
    ),
    "another resolution": (
        lambda b: _edit_json(b / "manifest.json", lambda m: m.update(input_size=96)),
        "timed its networks at 96x96, but table 'box' was built at 64x64",
    ),
}


@pytest.mark.parametrize("other", list(OTHER_BUNDLES))
def test_validate_refuses_the_timings_of_another_bundle(
    other: str, timed_bundle: Path, box_table: Path, tmp_path: Path, capsys
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(timed_bundle, bundle)
    change, message = OTHER_BUNDLES[other]
    change(bundle)
    args = ["lut", "validate", "--target", str(box_table), "--timings", str(bundle)]
    capsys.readouterr()
    code = _nas([*args, "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"nas: error: {bundle} ") and len(err.strip().splitlines()) == 1
    assert message in err
    assert not (tmp_path / "report").exists()


def test_validate_takes_the_timings_of_the_tables_own_bundle_at_its_input_size(
    timed_bundle: Path, box_table: Path, tmp_path: Path, capsys
) -> None:
    args = ["lut", "validate", "--target", str(box_table), "--timings", str(timed_bundle)]
    capsys.readouterr()
    code = _nas([*args, "--input-size", "48", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        f"nas: error: --input-size 48 does not apply with --timings: {timed_bundle} timed its "
        "networks at 64x64; drop --input-size, or bundle again with --input-size 48"
    )
    code = _nas([*args, "--input-size", "64", "--out", str(tmp_path / "report")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "report" / "validate_box.json").is_file()


def test_a_cost_model_table_is_judged_by_a_bundle_at_its_input_size(
    timed_bundle: Path, tmp_path: Path, capsys
) -> None:
    args = ["lut", "validate", "--target", "armv8", "--timings", str(timed_bundle)]
    capsys.readouterr()
    assert _nas([*args, "--out", str(tmp_path / "report")]) == 2
    assert (
        "timed its networks at 64x64, but table 'armv8' was built at 224x224: judge it with a "
        "bundle made with --input-size 224" in capsys.readouterr().err
    )
