"""benchmarks/proxy_truth.py: its sample is distinct networks, balanced in every prefix, and a bad
plan is one line and exit code 2 before any data is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nas.evaluators.nasbench_macro import NasBenchMacro

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import proxy_truth  # noqa: E402


@pytest.fixture(scope="module")
def table() -> NasBenchMacro:
    return NasBenchMacro.load()


def test_the_sample_is_distinct_networks_half_in_the_band(table: NasBenchMacro) -> None:
    keys = proxy_truth.canonical_sample(table, (40.0, 60.0), 40, seed=0)
    assert keys == proxy_truth.canonical_sample(table, (40.0, 60.0), 40, seed=0)
    networks = {table.arch_of(key).network_key() for key in keys}
    assert len(networks) == len(keys) == 40
    inside = [40 <= table.rows[key]["flops"] / 1e6 <= 60 for key in keys]
    for prefix in (10, 20, 40):
        assert sum(inside[:prefix]) == prefix // 2
    outside = sorted(table.rows[k]["flops"] for k, i in zip(keys, inside) if not i)
    assert outside[0] / 1e6 < 30 and outside[-1] / 1e6 > 70  # spread over the whole range


def test_a_bad_plan_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "proxy_truth.py"), "--plan", "r99-e1:10"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "bad pass 'r99-e1:10'" in done.stderr
