"""Latency tables for a phone: bundle, run (local mode here), import, validate on its timings."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lut_spaces import SMALL_SPACE

from nas.cli import main
from nas.evaluators.latency.bench_output import BenchOutputError, parse_output
from nas.evaluators.latency.table import LatencyTable
from nas.search_spaces.space import load_space

# Outputs in each tool's own format, as their sources print them.
BENCHNCNN = """\
loop_count = 50
num_threads = 1
powersave = 0
gpu_device = -1
cooling_down = 0
models/op00012.param  min =    0.41  max =    0.58  avg =    0.44
"""
EXECUTOR_RUNNER = """\
I 00:00:00.000123 executorch:executor_runner.cpp:290] Model file models/op00012.pte is loaded.
I 00:00:00.004512 executorch:executor_runner.cpp:410] Model loaded in 3.981000 ms.
I 00:00:00.005802 executorch:executor_runner.cpp:520] Iteration 1 of 3: 0.912000 ms
I 00:00:00.006301 executorch:executor_runner.cpp:520] Iteration 2 of 3: 0.402500 ms
I 00:00:00.006799 executorch:executor_runner.cpp:520] Iteration 3 of 3: 0.397250 ms
I 00:00:00.006810 executorch:executor_runner.cpp:531] Model executed successfully 3 time(s) \
in 1.711750 ms.
I 00:00:00.006822 executorch:executor_runner.cpp:538] 1 outputs:
OutputX 0: tensor(sizes=[1, 40, 28, 28], [0.1, 0.2, ..., 0.3])
"""
EXECUTOR_RUNNER_WITHOUT_ITERATIONS = """\
I 00:00:00.006810 executorch:executor_runner.cpp:180] Model executed successfully 4 time(s) \
in 2.000000 ms.
"""
ONNXRUNTIME_PERF_TEST = """\
Setting intra_op_num_threads to 1
Session creation time cost: 0.0123 s
First inference time cost: 2 ms
Total inference time cost: 0.0241 s
Total inference requests: 50
Average inference time cost: 0.482 ms
Total inference run time: 0.0245 s
Number of inferences per second: 2040.8
Avg CPU usage: 96 %
Peak working set size: 23658496 bytes
Min Latency: 0.000451 s
Max Latency: 0.000602 s
P50 Latency: 0.000478 s
"""


@pytest.mark.parametrize(
    ("tool", "text", "ms", "runs", "statistic"),
    [
        ("benchncnn", BENCHNCNN, 0.41, 50, "min"),
        ("executor_runner", EXECUTOR_RUNNER, 0.39725, 3, "min"),
        ("executor_runner", EXECUTOR_RUNNER_WITHOUT_ITERATIONS, 0.5, 4, "mean"),
        ("onnxruntime_perf_test", ONNXRUNTIME_PERF_TEST, 0.451, 50, "min"),
        ("nas-local-bench", "nas-local-bench min_ms=0.25 median_ms=0.3 runs=9 runtime=x\n", 0.25,
         9, "min"),
    ],
)  # fmt: skip
def test_each_tools_output_is_read_as_its_fastest_run(tool, text, ms, runs, statistic) -> None:
    timing = parse_output(tool, text)
    assert timing.ms == pytest.approx(ms)
    assert (timing.runs, timing.statistic) == (runs, statistic)
    assert timing.typical_ms >= timing.ms


@pytest.mark.parametrize("tool", ["benchncnn", "executor_runner", "onnxruntime_perf_test"])
def test_output_without_a_timing_names_the_tool_and_its_last_line(tool: str) -> None:
    with pytest.raises(BenchOutputError, match=f"no timing from {tool}.*Segmentation fault"):
        parse_output(tool, "loading model\nSegmentation fault\n")


def nas(args: list[str]) -> int:
    """The CLI's exit status for `args`."""
    with pytest.raises(SystemExit) as exited:
        main(args)
    return exited.value.code


def _runner_module(bundle: Path):
    """The bundle's run.py, imported as the standalone script it is."""
    spec = importlib.util.spec_from_file_location("bundle_run", bundle / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(bundle / "run.py"), *args], capture_output=True, text=True
    )


def _fastest(raw: Path) -> float:
    return float(re.search(r"min_ms=([0-9.]+)", raw.read_text()).group(1))


@pytest.mark.slow
def test_a_small_space_round_trips_through_bundle_local_run_import_and_validate(
    tmp_path: Path, capsys
) -> None:
    # A space of a few dozen operators: each run is a process of its own, so the tiny space's
    # hundreds of operators would time the same path hundreds of times over.
    space = tmp_path / "lut_test.yaml"
    space.write_text(SMALL_SPACE)
    bundle = tmp_path / "bundle"
    args = ["--space", str(space), "--format", "onnx", "--input-size", "32", "--loops", "3"]
    args += ["--rounds", "2", "--calibrate", "4", "--validate", "3", "--no-zoo"]
    assert nas(["lut", "bundle", "--target", "box", *args, "--out", str(bundle)]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    operators = [m for m in manifest["models"] if m["role"] == "operator"]
    assert len(operators) == len(load_space(str(space)).signatures((3, 32, 32), 1000))
    assert all((bundle / m["file"]).is_file() for m in manifest["models"])

    # Stopped part-way (a disconnect, Ctrl-C): nothing is imported, the rerun goes on.
    stopped = _run(bundle, "--local", "--max-runs", "10")
    assert stopped.returncode == 0, stopped.stderr
    done = {p.name: p.stat().st_mtime_ns for p in (bundle / "raw").glob("*.txt")}
    assert len(done) == 10 < len(manifest["runs"])
    capsys.readouterr()
    assert nas(["lut", "import", str(bundle), "--target", "box", "--out", str(tmp_path / "t")]) == 2
    assert "have no output yet" in capsys.readouterr().err
    finished = _run(bundle, "--local")
    assert finished.returncode == 0, finished.stderr
    assert f"10 of {len(manifest['runs'])} runs already done" in finished.stderr
    assert {n: (bundle / "raw" / n).stat().st_mtime_ns for n in done} == done

    table_path = tmp_path / "box.json"
    assert nas(["lut", "import", str(bundle), "--target", "box", "--out", str(table_path)]) == 0
    table = LatencyTable.load(table_path)
    for model in operators:  # every entry is its own raw output's fastest run
        entry = table.entries[model["key"]]
        assert entry["source"] == "measured"
        raw = bundle / "raw" / f"{model['id']}.txt"
        assert entry["ms"] == pytest.approx(_fastest(raw), rel=1e-3)  # the file keeps 4 digits
    meta = table.metadata
    probe = _fastest(bundle / "raw/overhead.txt")
    assert meta.per_op_overhead_probe_ms == pytest.approx(probe, abs=1e-5)
    assert meta.per_op_overhead_ms >= meta.per_op_overhead_probe_ms  # plus the fitted rest
    assert meta.runtime == "onnxruntime" and meta.benchmark_tool == "nas-local-bench"
    assert (meta.threads, meta.input_size, meta.space) == (1, 32, "lut_test")
    assert meta.calibration.networks == 4 and meta.cold_ms_per_mb is not None
    assert table.cost_model is not None

    out = tmp_path / "judged"
    code = nas(["lut", "validate", "--target", str(table_path), "--timings", str(bundle),
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    judged = json.loads((out / "validate_box.json").read_text())
    rows = judged["rows"]
    assert [row["name"] for row in rows] == ["random_000", "random_001", "random_002"]
    depthwise = next(k for k in judged["trust"]["kinds"] if k["kind"] == "depthwise")
    assert depthwise["price"] == "measured" and depthwise["networks"] == 3
    for row in rows:
        rounds = sorted((bundle / "raw").glob(f"val_{row['name']}.r*.txt"))
        assert len(rounds) == 2
        assert row["measured_ms"] == pytest.approx(min(_fastest(path) for path in rounds))
        assert row["predicted_ms"] > 0


@pytest.mark.slow
def test_an_ncnn_bundle_runs_in_ncnn_and_imports(tmp_path: Path) -> None:
    pytest.importorskip("ncnn")
    pytest.importorskip("pnnx")
    space = tmp_path / "lut_test.yaml"
    space.write_text(SMALL_SPACE)
    bundle = tmp_path / "bundle"
    args = ["--space", str(space), "--format", "ncnn", "--input-size", "224", "--loops", "5"]
    args += ["--rounds", "1", "--calibrate", "2", "--validate", "2", "--no-zoo"]
    assert nas(["lut", "bundle", "--target", "box", *args, "--out", str(bundle)]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["tool"] == "benchncnn"
    assert all((bundle / m["file"]).with_suffix(".bin").is_file() for m in manifest["models"])
    finished = _run(bundle, "--local")
    assert finished.returncode == 0, finished.stderr
    assert "ncnn" in (bundle / "raw/op00000.txt").read_text()
    table_path = tmp_path / "box.json"
    assert nas(["lut", "import", str(bundle), "--target", "box", "--out", str(table_path)]) == 0
    table = LatencyTable.load(table_path)
    assert table.metadata.runtime == "ncnn"
    assert sum(e["source"] == "measured" for e in table.entries.values()) == len(
        load_space(str(space)).signatures((3, 224, 224), 1000)
    )


def test_the_runner_gives_each_tool_its_own_arguments(tmp_path: Path) -> None:
    space = tmp_path / "lut_test.yaml"
    space.write_text(SMALL_SPACE)
    bundle = tmp_path / "bundle"
    args = ["--space", str(space), "--format", "onnx", "--input-size", "64", "--calibrate", "0"]
    args += ["--validate", "0", "--no-zoo"]
    assert nas(["lut", "bundle", "--target", "box", *args, "--out", str(bundle)]) == 0
    runner = _runner_module(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    run = {"run": "op00001", "model": "op00001", "loops": 50}
    block = {"file": "models/op00001.param", "shape": [1, 24, 56, 56]}
    ncnn = {**manifest, "command": ["{loops}", "{threads}", "0", "-1", "0", "param={model}",
                                    "shape=[{shape_whc}]"]}  # fmt: skip
    assert runner._command(ncnn, run, block, ["./benchncnn"], local_tool=False) == [
        "./benchncnn", "50", "1", "0", "-1", "0", "param=models/op00001.param",
        "shape=[56,56,24]",
    ]  # fmt: skip
    vector = {"file": "models/op00002.param", "shape": [1, 256]}
    assert (
        runner._command(ncnn, run, vector, ["./benchncnn"], local_tool=False)[-1] == "shape=[256]"
    )
    local = runner._command(manifest, run, block, [sys.executable], local_tool=True)
    assert local[1:4] == ["-m", "nas.evaluators.latency.local_bench", "onnx"]
    with pytest.raises(runner.DeviceGone):  # adb's shell ended before the tool's exit marker
        runner._split_exit("models/op00001.param  min = ")
    assert runner._split_exit("out\n__nas_exit=0\n") == (0, "out\n")


def test_a_bundle_is_only_finished_with_the_same_settings(tmp_path: Path, capsys) -> None:
    space = tmp_path / "lut_test.yaml"
    space.write_text(SMALL_SPACE)
    bundle = tmp_path / "bundle"
    args = ["--space", str(space), "--format", "onnx", "--input-size", "64", "--out", str(bundle)]
    args += ["--calibrate", "1", "--validate", "0", "--no-zoo"]
    assert nas(["lut", "bundle", "--target", "box", *args]) == 0
    capsys.readouterr()
    assert nas(["lut", "bundle", "--target", "box", *args, "--threads", "2"]) == 2
    assert "threads=1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lut", "import", "{tmp}", "--target", "x"], "is not a latency bundle"),
        (["lut", "bundle", "--target", "x", "--format", "onnx", "--space", "nope", "--out",
          "{tmp}/b"], "unknown search space"),
        (["lut", "validate", "--target", "armv8", "--timings", "{tmp}"], "not a latency bundle"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path: Path, capsys) -> None:
    code = nas([arg.format(tmp=tmp_path) for arg in args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_an_interrupted_export_resumes_and_the_runner_waits_for_it(tmp_path: Path) -> None:
    from nas.evaluators.latency import BundleOptions, write_bundle
    from nas.phone import bundle_writer

    space = tmp_path / "lut_test.yaml"
    space.write_text(SMALL_SPACE)
    writer, exporter = bundle_writer("onnx")
    written: list[tuple[int, ...]] = []

    def stop_after_five(module, shape):
        if len(written) == 5:
            raise KeyboardInterrupt
        written.append(shape)
        return writer(module, shape)

    options = BundleOptions(
        target="box", out=tmp_path / "b", format="onnx", space=str(space), input_size=64,
        calibrate=1, validate=0, zoo=False,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        write_bundle(options, stop_after_five, exporter, show_progress=False)
    models = sorted((tmp_path / "b/models").iterdir())
    assert len(models) == 5
    stamps = {path: path.stat().st_mtime_ns for path in models}
    refused = _run(tmp_path / "b", "--local")
    assert refused.returncode == 2 and "export was interrupted" in refused.stderr
    assert nas(["lut", "import", str(tmp_path / "b"), "--target", "box"]) == 2

    manifest = write_bundle(options, writer, exporter, show_progress=False)
    assert manifest["complete"] and len(list((tmp_path / "b/models").iterdir())) == len(
        manifest["models"]
    )
    assert {path: path.stat().st_mtime_ns for path in models} == stamps  # not written again


def test_the_per_call_overhead_a_probe_misses_is_fitted_on_whole_networks(tmp_path: Path) -> None:
    from nas.evaluators.latency.calibrate import fit_cold_term
    from nas.evaluators.latency.networks import sample_archs
    from nas.evaluators.latency.table import feature_map_bytes
    from nas.search_spaces.signatures import arch_signatures

    path = tmp_path / "lut_test.yaml"
    path.write_text(SMALL_SPACE)
    space = load_space(str(path))
    shape = (3, 64, 64)
    sigs = space.signatures(shape, 1000)
    entries = {s.key: {"ms": 0.2 + 0.01 * i, "std": 0.0, "source": "measured"}
               for i, s in enumerate(sigs)}  # fmt: skip
    table = LatencyTable({"target": "t", "input_size": 64, "method": "m",
                          "per_op_overhead_ms": 0.004}, entries)  # fmt: skip
    archs = sample_archs(space, 8, seed=1)
    measured = []
    for arch in archs:  # a runtime that pays 0.03 ms more per call alone, 0.01 ms per cold MB
        found = arch_signatures(arch, shape, 1000)
        megabytes = sum(feature_map_bytes(s) for s in found) / 1e6
        base = table.predict(arch, shape, 1000).total_ms
        measured.append(base - 0.03 * (len(found) - 1) + 0.01 * megabytes)
    summary = fit_cold_term(table, archs, measured, fit_overhead=True)
    assert table.metadata.per_op_overhead_ms == pytest.approx(0.034, abs=1e-4)
    assert table.metadata.per_op_overhead_probe_ms == 0.004
    assert table.cold_ms_per_mb == pytest.approx(0.01, abs=1e-4)
    assert summary.mape_fitted_pct < 0.1 < summary.mape_without_pct
    fit_cold_term(table, archs, measured, fit_overhead=True)  # a refit starts from the probe again
    assert table.metadata.per_op_overhead_ms == pytest.approx(0.034, abs=1e-4)
