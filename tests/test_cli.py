"""CLI contract: JSON output for scripts, one line and exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nas.cli import main


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_zoo_json_contract(capsys) -> None:
    code, out, _ = run(["zoo", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    by_name = {row["name"]: row for row in rows}
    assert by_name["mobilenet_v2"]["params"] == 3_504_872
    assert by_name["mobilenet_v3_small"]["mflops"] == pytest.approx(57, rel=0.02)
    assert all({"name", "arch", "mflops", "params"} <= set(row) for row in rows)


def test_zoo_table_prints_each_arch_string_whole_on_its_own_line() -> None:
    """In a pipe rich tables are 80 columns wide; an arch cell would fold into a strip."""
    from nas.search_spaces.zoo import ZOO

    done = subprocess.run(
        [sys.executable, "-m", "nas.cli", "zoo"], capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()
    for name, factory in ZOO.items():
        assert f"{name}: {factory().to_string()}" in lines
    assert max(len(line) for line in lines if ": stem_" not in line) <= 80


def test_arch_show_accepts_string_zoo_name_and_json_file(capsys, tmp_path) -> None:
    code, out, _ = run(["arch", "show", "mnasnet0_5", "--json"], capsys)
    shown = json.loads(out)
    assert code == 0 and shown["params"] == 2_218_512
    path = tmp_path / "arch.json"
    from nas.search_spaces.arch import Arch

    path.write_text(Arch.from_string(shown["arch"]).to_json())
    code, out, _ = run(["arch", "show", str(path), "--json", "--input-size", "32"], capsys)
    assert code == 0 and json.loads(out)["input"] == [3, 32, 32]
    code, out, _ = run(["arch", "show", shown["arch"], "--json"], capsys)
    assert json.loads(out)["mflops"] == shown["mflops"]


def test_space_show_json(capsys) -> None:
    code, out, _ = run(["space", "show", "tiny", "--json"], capsys)
    shown = json.loads(out)
    assert code == 0 and shown["name"] == "tiny" and shown["signatures"] == 452
    assert shown["mflops_min"] < shown["mflops_max"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["arch", "show", "stem_c16_k3_s2_hs:mb_e4_k3_s2_c24_rx:head_c960_hs"], "'rx'"),
        (["arch", "show", "not_a_net"], "neither a zoo name"),
        (["arch", "show", "missing.json"], "does not exist"),
        (["arch", "show", "mnasnet0_5", "--input-size", "-3"], "--input-size"),
        (["space", "show", "nowhere.yaml"], "unknown search space"),
        (["zoo", "--bogus"], "No such option"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys) -> None:
    code, out, err = run(args, capsys)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_console_script_exit_codes() -> None:
    ok = subprocess.run([sys.executable, "-m", "nas.cli", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "multiply-adds" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "nas.cli", "arch", "show", "x"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("nas: error:")
