"""NAS-Bench-Macro in the arch language: every one of its 6,561 networks is an architecture of
the `nasbench-macro` space whose parameters and multiply-adds equal the published ones."""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from nas.errors import InputError
from nas.evaluators.flops import count_cost, estimate_cost
from nas.evaluators.nasbench_macro import NasBenchMacro
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model
from nas.search_spaces.signatures import arch_signatures

CIFAR = (3, 32, 32)
PUBLISHED = Path(__file__).resolve().parents[2] / "shared/benchmarks/nasbench-macro"


@pytest.fixture(scope="module")
def table() -> NasBenchMacro:
    return NasBenchMacro.load()


def test_every_key_counts_as_published(table: NasBenchMacro) -> None:
    assert len(table) == 3**8
    wrong = []
    for key, row in table.rows.items():
        arch = table.arch_of(key)
        assert table.key_of(arch) == key
        cost = estimate_cost(arch, CIFAR, 10)
        if round(cost.mflops * 1e6) != row["flops"] or cost.params != row["params"]:
            wrong.append((key, round(cost.mflops * 1e6), row["flops"], cost.params, row["params"]))
    assert not wrong, wrong[:5]


def test_built_networks_count_as_published(table: NasBenchMacro) -> None:
    """The counts above are the builder's and fvcore's: checked on built models for a sample."""
    for key in random.Random(0).sample(sorted(table.rows), 6) + ["00000000", "22222222"]:
        arch, row = table.arch_of(key), table.rows[key]
        model = build_model(arch, CIFAR, 10)
        assert sum(p.numel() for p in model.parameters()) == row["params"]
        assert round(count_cost(arch, CIFAR, 10).mflops * 1e6) == row["flops"]


def test_identities_collapse_as_the_benchmark_says(table: NasBenchMacro) -> None:
    """A skip that changes no shape is no operator, so keys that differ only in where such skips
    sit are one network: 3,969 of them, each with one published result."""
    networks = defaultdict(set)
    for key, row in table.rows.items():
        sigs = tuple(sig.key for sig in arch_signatures(table.arch_of(key), CIFAR, 10))
        networks[sigs].add(tuple(row["test_acc"]))
    assert len(networks) == 3969
    assert all(len(results) == 1 for results in networks.values())


def test_the_shipped_table_is_the_published_one(table: NasBenchMacro) -> None:
    path = PUBLISHED / "nas-bench-macro_cifar10.json"
    if not path.is_file():
        pytest.skip(f"the published table is not at {path}")
    assert json.loads(path.read_text()) == table.rows
    assert NasBenchMacro.load(path).rows == table.rows


def test_lookup(table: NasBenchMacro, tmp_path: Path) -> None:
    arch = Arch.from_string(
        "stem_c32_k3_s1_re:skip_s2_c64,mb_e3_k3_s1_c64_re:mb_e6_k5_s2_c128_re,skip_s1_c128,"
        "skip_s1_c128:skip_s2_c256,skip_s1_c256,mb_e3_k3_s1_c256_re:head_c1280_re_d0"
    )
    result = table.lookup(arch)
    row = table.rows["01200001"]
    assert result.key == "01200001"
    assert result.runs == tuple(acc / 100 for acc in row["test_acc"])
    assert [result.accuracy(seed) for seed in range(4)] == [*result.runs, result.runs[0]]
    assert result.accuracy(7, mean=True) == row["mean_acc"] / 100
    with pytest.raises(InputError, match="not a network of the nasbench-macro space"):
        table.key_of(Arch.from_string("stem_c32_k3_s1_re:skip_s2_c64:head_c1280_re_d0"))
    with pytest.raises(InputError, match="not a key"):
        table.arch_of("0120000")
    packed = tmp_path / "copy.json.gz"
    packed.write_bytes(gzip.compress(json.dumps({"00000000": row}).encode()))
    assert NasBenchMacro.load(packed).rows == {"00000000": row}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="is not its JSON"):
        NasBenchMacro.load(tmp_path / "bad.json")
