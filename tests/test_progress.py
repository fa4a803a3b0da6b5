"""A search shows signs of life while its first candidate trains, on a terminal and in a pipe.

`nas search` runs as a user runs it, in its own process on the `tiny` space with three epochs a
candidate: once with its output in a pipe (as in CI or `| tee`), once on a pseudo-terminal
(rich's live panel). Either way, the candidate's progress is shown before it finishes.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from driver_process import driver_command

pytestmark = pytest.mark.slow

FINISHED = re.compile(r"trial \d+ trained: accuracy")


def _search(tmp_path: Path, name: str) -> list[str]:
    storage = f"sqlite:///{tmp_path / f'{name}.db'}"
    return driver_command(storage, name, tmp_path / name, "--trials", "1")


def test_a_pipe_gets_each_epoch_before_the_candidate_finishes(tmp_path: Path) -> None:
    done = subprocess.run(
        _search(tmp_path, "piped"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    finished = next(i for i, line in enumerate(lines) if FINISHED.search(line))
    epochs = [i for i, line in enumerate(lines) if re.search(r"epoch \d/3: val acc", line)]
    assert epochs and epochs[0] < finished, done.stdout
    assert re.search(r"trial \d+ started on worker 1", done.stdout)
    # The closing line counts as pareto.json does.
    counts = json.loads((tmp_path / "piped" / "pareto.json").read_text())["counts"]
    assert counts["searched"] == 1
    assert f"{counts['front']} of {counts['trained']} trained to the end" in done.stdout


def test_a_terminal_gets_a_live_panel_before_the_candidate_finishes(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "40"}
    process = subprocess.Popen(
        _search(tmp_path, "terminal"),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=tmp_path,
    )
    os.close(follower)
    output = b""
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the follower closed: the search has exited
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert process.wait(timeout=30) == 0, output.decode(errors="replace")[-3000:]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode(errors="replace"))
    finished = FINISHED.search(text)
    assert finished, text[-3000:]
    before = text[: finished.start()]
    # The panel: its summary line, and a row of the running candidate at an epoch of three.
    assert "trained 0/1" in before and "running 1" in before, before[-3000:]
    assert re.search(r"\b[0-3]/3\b", before), before[-3000:]
