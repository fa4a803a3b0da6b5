"""Bad inputs and faults met in use: each is one line and exit code 2 before any work, and
nothing the user had is lost or replaced."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from tiny_search import TINY_SEARCH

from nas.cli import main
from nas.config import SearchConfig
from nas.files import unwritable_file, write_atomically
from nas.search import search


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `nas argv`."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_the_atomic_writer_never_replaces_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert unwritable_file(fifo) == "is not a regular file (a device, a FIFO or a socket)"
    with pytest.raises(FileExistsError, match="refusing to replace it"):
        write_atomically(fifo, b"bytes")
    assert fifo.is_fifo()
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temporary left


def test_export_to_a_device_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(
        ["export", "--arch", "mobilenet_v3_small", "--format", "json", "--out", "/dev/null"],
        capsys,
    )
    assert code == 2
    assert err.strip() == (
        "nas: error: --out /dev/null is not a regular file (a device, a FIFO or a socket); "
        "choose another path"
    )
    assert Path("/dev/null").is_char_device()


def test_a_table_in_a_pipe_folds_no_cell_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nas.commands import _output

    monkeypatch.setattr(_output.console, "width", 80)
    title = "Pareto front of study 'cifar-run-7' (validation accuracy: mean over seeds [95% CI])"
    rows = [
        ["12", "2,542,856", "mobilenet_v3_small", "61.23% [58.10%, 64.30%]", "61.00%, 62.00%"],
        ["31", "1,968,680", "mobilenet_v2_0.5", "58.02% [54.90%, 61.10%]", "57.90%, 58.14%"],
    ]
    _output.print_table(title, ["trial", "params", "baseline", "accuracy", "per seed"], rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == title
    for row in rows:  # every row on one line of its own, each cell whole
        assert any(all(f" {cell} " in line for cell in row) for line in lines), row


PRIVATE_RAY = """
import sys, ray
from nas.ray_cluster import connect_ray
connection = connect_ray(None)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.readline()
connection.close()
"""

OUTSIDER = """
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print("JOINED", ray.get(ray.remote(lambda: 1).remote()), flush=True)
"""


@pytest.mark.slow
def test_a_private_ray_admits_no_one_without_its_token_even_with_auth_disabled() -> None:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    owner = subprocess.Popen(
        [sys.executable, "-c", PRIVATE_RAY],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None and owner.stdin is not None
        address = owner.stdout.readline().strip()
        assert address, "the private Ray did not start"
        # Refused for its missing token, which no retry changes: two tries instead of twenty.
        outsider = subprocess.run(
            [sys.executable, "-c", OUTSIDER, address],
            env=dict(env, RAY_gcs_server_port_wait_time_s="2"),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert outsider.returncode != 0 and "JOINED" not in outsider.stdout
        assert "Authentication token is missing or incorrect" in outsider.stderr, outsider.stderr
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.wait(timeout=120) == 0
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def _ignoring_sigint() -> None:
    """What a shell gives a command it starts in the background from a script."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_dashboard_stops_cleanly_on_sigterm_and_on_an_ignored_sigint(
    signum: int, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    optuna.create_study(study_name="s", storage=storage)
    port = _free_port()
    command = [sys.executable, "-m", "nas.cli", "dashboard", "--storage", storage]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignoring_sigint,
    )
    try:
        assert process.stdout is not None
        assert "Ctrl-C stops it" in process.stdout.readline()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # serving, not just printing its banner
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err


def _running_final_runs(storage: str) -> int:
    """RUNNING trials of the storage's `.final` study; 0 while it does not exist yet."""
    try:
        summaries = optuna.get_all_study_summaries(storage)
        final = [s.study_name for s in summaries if s.study_name.endswith(".final")]
        if not final:
            return 0
        study = optuna.load_study(study_name=final[0], storage=storage)
        return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    except Exception:  # mid-write
        return 0


@pytest.mark.slow
def test_finalize_stops_cleanly_on_sigterm(local_ray, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    config = dict(TINY_SEARCH, trials=1, storage=storage, study="term", out=str(tmp_path / "o"))
    search(SearchConfig(**config))
    args = ["finalize", "--storage", storage, "--top", "1", "--epochs", "30", "--seeds", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", *args, "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_ignoring_sigint,
    )
    try:
        deadline = time.monotonic() + 300
        while _running_final_runs(storage) < 1 and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "stopped; run the same command again to train what is missing" in err
    assert _running_final_runs(storage) == 0


def test_a_read_only_database_is_one_line_before_a_driver_writes(tmp_path: Path) -> None:
    import sqlalchemy

    from nas.errors import InputError
    from nas.storage import StudyLease

    path = tmp_path / "nas.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{path}")
    # Read-only as SQLite sees it whoever runs the test (a mode 0444 file is writable by root).
    engine = sqlalchemy.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with pytest.raises(InputError, match=r"is read-only .* make the database file and its"):
            StudyLease.acquire(engine, "s")
    finally:
        engine.dispose()


def test_lut_bundle_bounds_the_input_size_before_any_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle"
    args = ["lut", "bundle", "--target", "x", "--format", "onnx", "--input-size", "100000"]
    code, _, err = run_cli([*args, "--out", str(out)], capsys)
    assert code == 2
    assert "--input-size 100,000 is over the limit of 1,024 pixels a side" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--config", "{file}"], "config file {file} is not UTF-8 text (YAML)"),
        (["search", "--space", "{file}"], "search space {file} is not UTF-8 text (YAML)"),
        (["arch", "show", "{file}"], "architecture file {file} is not UTF-8 text (JSON)"),
        (["train", "{file}"], "architecture file {file} is not UTF-8 text (JSON)"),
    ],
)
def test_a_file_that_is_not_utf8_is_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "latin1.json"
    file.write_bytes("name: caf\xe9\n".encode("latin-1"))
    argv = [arg.format(file=file) for arg in args]
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    assert err.strip() == f"nas: error: {message.format(file=file)}"


@pytest.mark.parametrize("side", [1, 7])
def test_search_takes_the_input_sizes_every_other_command_takes(side: int) -> None:
    from nas.errors import InputError

    with pytest.raises(InputError, match=f"--input-size must be at least 8, .* got {side}$"):
        SearchConfig(input_size=side)
    assert SearchConfig(input_size=8).input_size == 8


@pytest.mark.parametrize(
    "args",
    [
        ["lut", "build", "--space", "tiny"],
        ["lut", "adapt", "--from", "x86_64"],
        ["lut", "import", "{tmp}"],
        ["lut", "bundle", "--format", "onnx", "--out", "{tmp}/bundle"],
    ],
)
@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden"])
def test_a_table_name_that_is_a_path_is_refused(
    args: list[str], name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [arg.format(tmp=tmp_path) for arg in args]
    code, _, err = run_cli([*argv, "--target", name], capsys)
    assert code == 2, err
    assert err.startswith(f"nas: error: --target {name!r} ") and len(err.splitlines()) == 1
    assert "a table's name is a plain name such as rpi4" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["arch", "show", "{json}"], "architecture file {json} is nested too deeply"),
        (["train", "{json}"], "architecture file {json} is nested too deeply"),
        (["search", "--space", "{yaml}"], "search space {yaml} is nested too deeply"),
        (["search", "--target", "{json}"], "an input file is nested too deeply to read"),
    ],
)
def test_a_file_nested_a_hundred_thousand_deep_is_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"json": tmp_path / "deep.json", "yaml": tmp_path / "deep.yaml"}
    for file in files.values():
        file.write_text("[" * 100_000 + "]" * 100_000)
    argv = [arg.format(**files) for arg in args]
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    assert err.strip().startswith(f"nas: error: {message.format(**files)}")
    assert len(err.strip().splitlines()) == 1


def _shipped_table(tmp_path: Path, change: Callable[[dict], None]) -> Path:
    """The shipped x86_64 table, changed as `change` says, as a file of its own."""
    from nas.evaluators.latency import load_table

    data = json.loads(Path(load_table("x86_64").path).read_text())
    data["metadata"]["target"] = "edited"
    change(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


def _all_zero(data: dict) -> None:
    for entry in data["entries"].values():
        entry["ms"] = entry["std"] = 0.0
    data["metadata"]["per_op_overhead_ms"] = data["metadata"]["cold_ms_per_mb"] = 0.0
    data["cost_model"]["coefficients"] = dict.fromkeys(data["cost_model"]["coefficients"], 0.0)


def _huge_coefficients(data: dict) -> None:
    data["cost_model"]["coefficients"] = dict.fromkeys(data["cost_model"]["coefficients"], 1e308)


@pytest.mark.parametrize(("change", "ms"), [(_all_zero, "0 ms"), (_huge_coefficients, "inf ms")])
def test_a_search_refuses_a_table_that_prices_networks_at_0_or_inf_ms(
    change: Callable[[dict], None], ms: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _shipped_table(tmp_path, change)
    out = tmp_path / "out"
    argv = ["search", "--space", "tiny", "--target", str(table), "--budget-mflops", "60"]
    code, _, err = run_cli([*argv, "--storage", f"sqlite:///{tmp_path / 'nas.db'}"], capsys)
    assert code == 2, err
    assert f"nas: error: latency table 'edited' ({table}) prices the cheapest network" in err
    assert f"space 'tiny' at {ms}, which no network takes" in err
    assert not (tmp_path / "nas.db").exists() and not out.exists()


def test_adapt_refuses_an_all_zero_table_before_timing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _shipped_table(tmp_path, _all_zero)
    out = tmp_path / "adapted.json"
    argv = ["lut", "adapt", "--from", str(table), "--target", "here", "--out", str(out)]
    started = time.monotonic()
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    assert "prices the operators of space 'mobile' at 0 ms, every one" in err
    assert not out.exists()
    assert time.monotonic() - started < 60  # refused, not timed (a run times for minutes)


def _free_port_nothing_answers() -> int:
    return _free_port()  # bound, then closed: nothing listens there


def _search_in_own_process(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`nas search` in a process of its own: a Ray another test left running in this one would
    stand in for the cluster the command names."""
    command = [sys.executable, "-m", "nas.cli", "search", *argv]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_start_that_fails_leaves_no_database(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port_nothing_answers()}"
    argv = ["--space", "tiny", "--budget-mflops", "60", "--ray-address", address]
    done = _search_in_own_process(argv, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"cannot join the Ray cluster at {address}" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no nas.db, no artifacts/


def test_a_start_that_fails_keeps_a_database_it_did_not_make(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    optuna.create_study(study_name="kept", storage=storage)
    address = f"127.0.0.1:{_free_port_nothing_answers()}"
    argv = ["--space", "tiny", "--budget-mflops", "60", "--ray-address", address]
    done = _search_in_own_process([*argv, "--storage", storage], tmp_path)
    assert done.returncode == 2, done.stderr
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["kept"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--study", "   "], "--study ' ' is only spaces"),
        (["arch", "show", "mobilenet_v2_0.7"], "'mobilenet_v2_0.7' is not a zoo name; did you "),
        (["train", "mobilenet_v3_smal"], "'mobilenet_v3_smal' is not a zoo name; did you"),
        (["search", "--data-dir", "{tmp}/none"], "--data-dir {tmp}/none does not exist"),
    ],
)
def test_a_name_is_judged_as_what_it_names(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [arg.format(tmp=tmp_path) for arg in args]
    code, _, err = run_cli([*argv], capsys)
    assert code == 2, err
    assert err.startswith(f"nas: error: {message.format(tmp=tmp_path)}"), err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--trial-timeout-s", "nan"], "--trial-timeout-s must be positive, got nan"),
        (["--reward-exponent", "nan"], "--reward-exponent must be a number, got nan"),
        (["--storage-outage-s", "nan"], "--storage-outage-s must be a number of seconds >= 0"),
        (["--min-final-map", "100000"], "--min-final-map must be from 0 to 1024 pixels"),
        (["--budget-mflops", "inf"], "--budget-mflops must be positive, got inf (leave it"),
        (
            ["--min-final-map", "100", "--proxy-resolution", "24"],
            "--min-final-map 100 is larger than the proxy input (24x24)",
        ),
    ],
)
def test_a_number_that_means_nothing_is_refused_before_any_work(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    argv = ["search", "--space", "tiny", "--budget-ms", "9", "--storage", storage, *flags]
    code, _, err = run_cli(argv, capsys)
    assert code == 2, err
    assert err.startswith(f"nas: error: {message}") and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def _mixed_folder(root: Path) -> Path:
    """An image folder of two classes whose images come in three sizes."""
    from PIL import Image

    sizes = [(20, 20), (30, 24), (40, 52)]
    for split, count in (("train", 30), ("test", 3)):
        for label, colour in (("cat", "red"), ("dog", "blue")):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", sizes[i % 3], colour).save(folder / f"{i}.png")
    return root


def test_a_folder_of_mixed_image_sizes_trains_at_the_proxy_resolution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.lookup import evaluation_data
    from nas.search_spaces.space import load_space

    folder = _mixed_folder(tmp_path / "images")
    config = SearchConfig(
        space="tiny", dataset="imagefolder", data_dir=str(folder), proxy_resolution=32
    )
    data, _ = evaluation_data(config, load_space("tiny"))
    assert data.input_shape == (3, 32, 32) and data.num_classes == 2

    argv = ["search", "--space", "tiny", "--dataset", "imagefolder", "--data-dir", str(folder)]
    code, _, err = run_cli([*argv, "--storage", f"sqlite:///{tmp_path / 'nas.db'}"], capsys)
    assert code == 2, err
    assert "not 20x20 like the first training image" in err and len(err.splitlines()) == 1
    assert err.strip().endswith(
        "pass --proxy-resolution (for example 32) to train on every image resized to one size"
    )


@pytest.mark.parametrize("side", [8, 16, 31])
def test_export_takes_the_small_inputs_it_accepts(
    side: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import onnxruntime
    import torch

    from nas.export import ModelSpec, build, random_input
    from nas.search_spaces.zoo import ZOO

    out = tmp_path / "m.onnx"
    argv = ["export", "--arch", "mobilenet_v3_small", "--format", "onnx", "--out", str(out)]
    code, _, err = run_cli([*argv, "--input-size", str(side)], capsys)
    assert code == 0, err
    # The file computes the network: as near the exact (float64) result as torch's float32.
    spec = ModelSpec(ZOO["mobilenet_v3_small"](), (3, side, side), 1000)
    model = build(spec).double()
    x = random_input(spec, seed=1)
    with torch.no_grad():
        exact = model(x.double()).numpy()
        single = build(spec)(x).double().numpy()
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    own = np.abs(single - exact).max()
    assert np.abs(got - exact).max() <= 4 * own + 1e-5 + 1e-4 * np.abs(exact).max()


def test_the_export_check_still_tells_a_wrong_graph() -> None:
    import numpy as np

    from nas.export_check import compare

    expected = np.linspace(-3.0, 3.0, 1000).reshape(1, 1000)
    own_error = 1e-6  # torch's float32 error as a small input gives it
    assert compare(expected, expected + own_error, "runtime", own_error).tolerance_ok
    assert not compare(expected, expected[:, ::-1], "runtime", own_error).tolerance_ok
    assert not compare(expected, expected * 1.01, "runtime", own_error).tolerance_ok
