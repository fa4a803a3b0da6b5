"""Bad inputs and faults met in use: each is one line and exit code 2 before any work, and
nothing the user had is lost or replaced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import main
from nas.files import unwritable_file, write_atomically


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
        outsider = subprocess.run(
            [sys.executable, "-c", OUTSIDER, address],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert outsider.returncode != 0 and "JOINED" not in outsider.stdout
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.wait(timeout=120) == 0
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
