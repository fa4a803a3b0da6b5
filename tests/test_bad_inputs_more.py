"""Bad inputs and faults met in use: each is one line and exit code 2 before any work, and
nothing the user had is lost or replaced."""

from __future__ import annotations

import os
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
