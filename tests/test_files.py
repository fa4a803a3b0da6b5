"""Files the commands write get the permissions the user's umask asks for."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nas.files import write_atomically


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_an_atomic_write_follows_the_umask(umask: int, mode: int, tmp_path: Path) -> None:
    previous = os.umask(umask)
    try:
        path = tmp_path / "model.onnx"
        write_atomically(path, b"bytes")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_bytes() == b"bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary left
