"""Bounded inputs (issue 18): bad input is one line on stderr and exit code 2, before any work.

Architectures beyond the limits of `nas.search_spaces.limits`, output paths that cannot be
written, out-of-range seeds, study names that are paths, oversized images, one-class datasets
and latency tables with impossible entries: each is refused at once, naming what is wrong.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas.cli import main
from nas.config import SearchConfig
from nas.errors import InputError
from nas.search_spaces import limits
from nas.search_spaces.arch import Arch
from nas.search_spaces.footprint import check_arch_fits
from nas.search_spaces.signatures import DEPLOY_CLASSES
from nas.search_spaces.space import builtin_spaces, load_space
from nas.search_spaces.zoo import ZOO

SMALL = "stem_c16_k3_s2_re:mb_e1_k3_s1_c16_re:head_c64_re"


def refused(args: list[str], capsys) -> str:
    """Run the CLI; assert exit 2 with exactly one line on stderr, and return that line."""
    with pytest.raises(SystemExit) as exited:
        main(args)
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith("nas: error: "), err
    return err


# ---- architecture limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "arch, expected",
    [
        ("stem_c99999999_k3_s2_hs:mb_e4_k3_s2_c24_re:head_c960_hs", ["99,999,999", "MAX_CHANNELS"]),
        (f"{SMALL.split(':')[0]}:mb_e4_k3_s2_c{2**70}_re:head_c960_hs", ["MAX_CHANNELS"]),
        ("stem_c16_k3_s2_hs:mb_e400_k3_s2_c24_re:head_c960_hs", ["expansion 400", "MAX_EXPANSION"]),
        (
            "stem_c16_k3_s2_hs:mb_e1_k3_s1_c4096_re,mb_e16_k3_s1_c4096_re:head_c64_hs",
            ["expanded channels 65,536", "MAX_CHANNELS"],
        ),
        ("stem_c16_k3_s2_hs:mb_e4_k3_s2_c24_re:head_c99999_f64_hs", ["head conv_channels"]),
    ],
)
def test_arch_show_refuses_an_architecture_over_the_limits(arch, expected, capsys) -> None:
    err = refused(["arch", "show", arch], capsys)
    assert all(text in err for text in expected), err


def test_arch_json_of_ten_thousand_blocks_is_refused(tmp_path: Path, capsys) -> None:
    block = {"expansion": 4, "kernel": 3, "stride": 1, "out_channels": 16, "act": "relu"}
    data = Arch.from_string(SMALL).to_dict()
    data["stages"] = [[block] * 10_000]
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(data))
    err = refused(["arch", "show", str(path)], capsys)
    assert "10,000 blocks" in err and "MAX_BLOCKS" in err and str(path) in err


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--input-size", "100000"], ["--input-size 100,000", "MAX_INPUT_SIZE"]),
        (["--input-size", "100000", "--target", "armv8"], ["--input-size 100,000"]),
        (["--num-classes", "1000000000"], ["parameters", "MAX_PARAMS"]),
    ],
)
def test_arch_show_refuses_an_input_over_the_limits(extra, expected, capsys) -> None:
    err = refused(["arch", "show", "mnasnet0_5", *extra], capsys)
    assert all(text in err for text in expected), err


def test_activation_memory_is_bounded_before_anything_is_built(capsys) -> None:
    wide = "stem_c4096_k3_s1_re:mb_e1_k3_s1_c4096_re:head_c64_re"  # 16 GiB a map at 1024
    err = refused(["arch", "show", wide, "--input-size", "1024"], capsys)
    assert "GiB of activations" in err and "MAX_ACTIVATION_BYTES" in err


def test_limits_are_far_above_every_zoo_network_and_builtin_space() -> None:
    archs = {name: factory() for name, factory in ZOO.items()}
    archs.update({f"{name} (dearest)": load_space(name).dearest() for name in builtin_spaces()})
    for name, arch in archs.items():
        # A CIFAR-style network (stride-1 stem, NAS-Bench-Macro) runs at 32 pixels: 224 is 7x it.
        sides = (224, limits.MAX_INPUT_SIZE) if arch.stem.stride > 1 else (224,)
        for side in sides:
            check_arch_fits(arch, (3, side, side), DEPLOY_CLASSES)  # raises if not
    mobilenet = ZOO["mobilenet_v3_large"]()
    from nas.search_spaces.footprint import count_params

    assert count_params(mobilenet) * 10 < limits.MAX_PARAMS
    assert max(b.out_channels for b in mobilenet.blocks) * 10 < limits.MAX_CHANNELS


def test_a_space_file_over_the_limits_is_refused_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text(
        "stem: {channels: 16}\nhead: {conv_channels: 64}\n"
        "block_choices: {expansion: [4], kernel: [3], groups: [1], se_ratio: [0], act: [relu]}\n"
        "stages:\n  - {depth: 1, width: [16, 20000], stride: 2}\n"
    )
    with pytest.raises(InputError, match=r"stages\[0\]\.width .*MAX_CHANNELS"):
        load_space(path)
    path.write_text(path.read_text().replace("[16, 20000]", "16").replace("depth: 1", "depth: 300"))
    with pytest.raises(InputError, match="300 blocks"):
        load_space(path)


def test_train_refuses_an_architecture_over_the_limits_before_training(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    err = refused(["train", "stem_c99999999_k3_s2_re:mb_e1_k3_s1_c16_re:head_c64_re",
                   "--out", str(out), "--epochs", "1"], capsys)  # fmt: skip
    assert "MAX_CHANNELS" in err
    # Within every per-layer limit, but 256 M parameters in the 16000-wide linear layer.
    err = refused(["train", "stem_c16_k3_s2_re:mb_e1_k3_s1_c16_re:head_c16000_f16000_re",
                   "--out", str(out), "--epochs", "1"], capsys)  # fmt: skip
    assert "MAX_PARAMS" in err
    err = refused(["train", SMALL, "--out", str(out), "--proxy-resolution", "100000"], capsys)
    assert "--proxy-resolution 100,000" in err
    assert not out.exists()


def test_search_refuses_a_space_over_the_limits_before_any_work(tmp_path: Path, capsys) -> None:
    space = tmp_path / "huge.yaml"
    space.write_text(
        "stem: {channels: 16}\nhead: {conv_channels: 16000, fc_channels: 16000}\n"
        "block_choices: {expansion: [1], kernel: [3], groups: [1], se_ratio: [0], act: [relu]}\n"
        "stages:\n  - {depth: 1, width: 16, stride: 2}\n"
    )
    db = tmp_path / "nas.db"
    err = refused(["search", "--space", str(space), "--budget-mflops", "1000000",
                   "--storage", f"sqlite:///{db}", "--out", str(tmp_path / "out")], capsys)  # fmt: skip
    assert "search space 'huge'" in err and "MAX_PARAMS" in err
    assert not db.exists()


def test_search_refuses_a_deployment_input_over_the_limit(tmp_path: Path, capsys) -> None:
    err = refused(["search", "--space", "tiny", "--budget-mflops", "60", "--input-size",
                   "100000", "--storage", f"sqlite:///{tmp_path / 'nas.db'}"], capsys)  # fmt: skip
    assert "--input-size 100,000" in err and "MAX_INPUT_SIZE" in err


# ---- output paths -----------------------------------------------------------------------------


def _unwritable_paths(tmp_path: Path) -> list[Path]:
    """A folder under a regular file (unwritable even for root), and under a 0o500 folder
    where this user really cannot write there (root can)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    paths = [blocker / "out"]
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        (locked / "probe").touch()
    except PermissionError:
        paths.append(locked / "out")
    else:
        (locked / "probe").unlink()
    return paths


def test_train_refuses_an_unwritable_out_before_training(tmp_path: Path, capsys) -> None:
    for out in _unwritable_paths(tmp_path):
        err = refused(["train", SMALL, "--out", str(out), "--epochs", "1"], capsys)
        assert f"--out {out}" in err
    blocker = tmp_path / "a-file"
    err = refused(["train", SMALL, "--out", str(blocker), "--epochs", "1"], capsys)
    assert str(blocker) in err and "is a file" in err  # click's check of the flag


def test_search_refuses_an_unwritable_out_before_any_work(tmp_path: Path, capsys) -> None:
    db = tmp_path / "nas.db"
    for out in [*_unwritable_paths(tmp_path), tmp_path / "a-file"]:
        err = refused(["search", "--space", "tiny", "--budget-mflops", "60", "--out", str(out),
                       "--storage", f"sqlite:///{db}"], capsys)  # fmt: skip
        assert f"--out {out}" in err
    assert not db.exists()


def test_report_and_export_refuse_an_unwritable_out_before_any_work(tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 'missing.db'}"  # never opened: the --out check comes first
    for out in _unwritable_paths(tmp_path):
        err = refused(["report", "--out", str(out), "--storage", storage], capsys)
        assert f"--out {out}" in err
        err = refused(["export", "--trial", "0", "--format", "onnx", "--out",
                       str(out / "model.onnx"), "--storage", storage], capsys)  # fmt: skip
        assert f"--out {out / 'model.onnx'}" in err
    err = refused(["export", "--trial", "0", "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
                   "--storage", storage, "--input-size", "100000"], capsys)  # fmt: skip
    assert "--input-size 100,000" in err


def test_probing_leaves_nothing_behind(tmp_path: Path) -> None:
    from nas.files import unwritable_dir, unwritable_file

    assert unwritable_dir(tmp_path / "new" / "deeper") is None
    assert unwritable_file(tmp_path / "other" / "model.onnx") is None
    assert list(tmp_path.iterdir()) == []


# ---- seeds and study names --------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_search_seed_must_be_32_bit(seed: str, tmp_path: Path, capsys) -> None:
    err = refused(["search", "--space", "tiny", "--budget-mflops", "60", "--seed", seed,
                   "--storage", f"sqlite:///{tmp_path / 'nas.db'}"], capsys)  # fmt: skip
    assert "--seed must be from 0 to 4294967295" in err
    SearchConfig(seed=2**32 - 1)  # the largest is fine


@pytest.mark.parametrize(
    "study, problem",
    [
        ("../../../../x", "path separator"),
        ("/abs/path", "path separator"),
        ("a\\b", "path separator"),
        (".hidden", "starts with '.'"),
        ("..", "starts with '.'"),
        ("tab\there", "control character"),
        ("x" * 200, "over the limit of 128"),
    ],
)
def test_study_names_that_are_paths_are_refused(study, problem, tmp_path, capsys) -> None:
    err = refused(["search", "--space", "tiny", "--budget-mflops", "60", "--study", study,
                   "--storage", f"sqlite:///{tmp_path / 'nas.db'}"], capsys)  # fmt: skip
    assert problem in err and "--study" in err


def test_report_folder_of_an_old_unsafe_study_name_stays_under_results() -> None:
    from nas.outputs import study_folder

    assert study_folder("mobile-armv8-150mflops-fashion-mnist-mini") == Path(
        "results/mobile-armv8-150mflops-fashion-mnist-mini"
    )
    for name in ("../../../../x", "/abs/path", "..", ""):
        folder = study_folder(name)
        assert folder.parent == Path("results") and not folder.name.startswith(".")


@pytest.mark.parametrize(
    "settings, part",
    [
        ({"budget_params": 5_000_000}, "-5000000params-"),
        ({"budget_mflops": 1e9}, "-1000000000mflops-"),
        ({"budget_mflops": 150}, "-150mflops-"),  # an existing study's name, unchanged
        ({"budget_mflops": 150.5, "budget_ms": 0.5}, "-150.5mflops-0.5ms-"),
        ({"budget_ms": 1e-5}, "-1e-05ms-"),
        ({"budget_params": 1e20}, "-1e20params-"),
    ],
)
def test_default_study_names_keep_the_exponent_sign(settings, part) -> None:
    name = SearchConfig(**settings).study_name
    assert part in name, name


# ---- images and datasets ----------------------------------------------------------------------


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG claiming `width` x `height` (a few bytes: Pillow reads the size from the header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _image_folder(root: Path, classes: tuple[str, ...] = ("a", "b")) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in classes:
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("name", ["0-first.png", "9-last.png"])  # native size read, then decode
@pytest.mark.parametrize("side", [30_000, 10_000])  # over twice Pillow's limit, and just over it
def test_an_image_over_pillows_limit_is_refused_naming_the_file(
    name: str, side: int, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    root = _image_folder(tmp_path / "images")
    big = root / "train" / "a" / name
    _png_header(big, side, side)
    err = refused(["train", SMALL, "--dataset", "imagefolder", "--data-dir", str(root),
                   "--out", str(tmp_path / "out"), "--epochs", "1"], capsys)  # fmt: skip
    assert str(big) in err and "MAX_IMAGE_PIXELS" in err and f"{Image.MAX_IMAGE_PIXELS:,}" in err


def test_a_one_class_image_folder_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path / "cache"))
    root = _image_folder(tmp_path / "images", classes=("only",))
    err = refused(["train", SMALL, "--dataset", "imagefolder", "--data-dir", str(root),
                   "--out", str(tmp_path / "out"), "--epochs", "1"], capsys)  # fmt: skip
    assert "'only'" in err and "at least 2 classes" in err
    assert not (tmp_path / "cache").exists()  # refused before any image was decoded


def test_a_one_class_dataset_from_any_loader_is_refused() -> None:
    from nas.evaluators.datasets.base import Dataset, RawData

    images = np.zeros((6, 1, 4, 4), dtype=np.uint8)
    labels = np.zeros(6, dtype=np.int64)
    raw = RawData(images, labels, images, labels, ("only",), "test")
    with pytest.raises(InputError, match="needs at least 2"):
        Dataset.from_arrays("toy", raw, val_count=2)


# ---- latency tables ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("ms", -1.0, "ms -1.0"),
        ("ms", 1e308, "ms 1e+308"),
        ("std", -0.5, "std -0.5"),
        ("ms", "Infinity", "ms: number"),
        ("ms", "NaN", "ms: number"),
    ],
)
def test_latency_table_with_an_impossible_entry_is_refused_naming_it(
    field, value, shown, tmp_path: Path, capsys
) -> None:
    from nas.evaluators.latency import load_table

    table = json.loads(load_table("x86_64").path.read_text())
    key = sorted(table["entries"])[0]
    table["entries"][key][field] = value
    text = json.dumps(table).replace('"Infinity"', "Infinity").replace('"NaN"', "NaN")
    path = tmp_path / "bad.json"
    path.write_text(text)
    err = refused(["arch", "show", "mnasnet0_5", "--target", str(path)], capsys)
    assert repr(key) in err and shown in err, err


def test_latency_table_with_impossible_metadata_is_refused(tmp_path: Path) -> None:
    from nas.evaluators.latency import LatencyTable

    table = {"format": 1, "metadata": {"target": "t", "input_size": 224, "method": "m"}}
    table["entries"] = {}
    table["metadata"]["per_op_overhead_ms"] = -3.0
    with pytest.raises(InputError, match="per_op_overhead_ms"):
        LatencyTable.from_dict(table)


def test_shipped_tables_pass_the_checks() -> None:
    from nas.evaluators.latency import load_table

    for target in ("armv8", "x86_64"):
        assert load_table(target).entries
