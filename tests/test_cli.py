"""CLI contract: JSON output for scripts, one line and exit code 2 for bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

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
    assert all({"name", "arch", "mflops", "params", "latency_ms"} <= set(row) for row in rows)
    # Each zoo network is priced on every shipped table, as a search with that --target would.
    from nas.evaluators.latency.table import load_table, shipped_tables
    from nas.search_spaces.zoo import ZOO

    assert {"armv8", "armv8-xnnpack", "x86_64"} <= set(shipped_tables())
    for target in shipped_tables():
        table = load_table(target)
        for name, factory in ZOO.items():
            priced = table.predict(factory()).total_ms
            assert by_name[name]["latency_ms"][target] == pytest.approx(priced, abs=5e-4)


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


def _search_help() -> dict[str, str]:
    """`nas search`'s help text of each option, by its first flag."""
    from nas.commands.search import command

    return {param.opts[0]: param.help or "" for param in command.params}


@pytest.mark.parametrize(
    "flag, setting, otherwise",
    [
        ("--epochs", "epochs", "4"),
        ("--proxy-resolution", "proxy_resolution", "their own"),
        ("--min-final-map", "min_final_map", "0"),
    ],
)
def test_search_help_shows_the_proxy_defaults_table(flag: str, setting: str, otherwise: str):
    from nas.config import PROXY_DEFAULTS

    default = _search_help()[flag].split("[default: ")[-1]
    groups = dict(part.split(" for ") for part in default.split(", else ")[0].split("; "))
    told = {name: int(value) for value, names in groups.items() for name in names.split(", ")}
    table = {name: given[setting] for name, given in PROXY_DEFAULTS.items() if setting in given}
    assert told == table
    assert default.split(", else ")[1].rstrip("].") == otherwise


def test_search_help_shows_the_confirm_seeds_table() -> None:
    from nas.config import DEFAULT_CONFIRM_SEEDS, OTHER_CONFIRM_SEEDS, SearchConfig

    text = _search_help()["--confirm-seeds"]
    for dataset, seeds in DEFAULT_CONFIRM_SEEDS.items():
        assert f"{seeds} for {dataset}" in text
        assert SearchConfig(budget_mflops=150, dataset=dataset).seeds_to_confirm == seeds
    assert f"else {OTHER_CONFIRM_SEEDS};" in text
    assert SearchConfig(budget_mflops=150, dataset="cifar10").seeds_to_confirm == 2


def test_per_dataset_groups_the_datasets_that_share_a_value() -> None:
    from nas.commands.search import per_dataset

    assert per_dataset({"a": 2, "b": 3, "c": 2}, 4) == "2 for a, c; 3 for b, else 4"
    assert per_dataset({}, "their own") == "their own"


def test_the_readme_flag_table_is_the_search_help() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = re.findall(r"^\| `(--[^` ]+)[^`]*` \| (.*) \|$", readme, re.M)
    assert dict(rows) == _search_help()
    assert [flag for flag, _ in rows] == list(_search_help())


def test_search_help_names_every_dataset_and_which_is_embedded() -> None:
    from nas.evaluators.datasets import DATASET_NAMES, DEFAULT_DATASET

    text = _search_help()["--dataset"]
    assert [name.split(" (")[0] for name in text.split(". [")[0].split(", ")] == list(DATASET_NAMES)
    assert f"{DEFAULT_DATASET} (embedded)" in text
