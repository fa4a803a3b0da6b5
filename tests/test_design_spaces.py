"""benchmarks/design_spaces.py: latency-matched sampling, the complexity normalisation, and
verdicts computed from the data (checked on synthetic results whose answer is known)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.config import SearchConfig
from nas.evaluators.latency.table import load_table
from nas.pricing import estimate_price
from nas.search_spaces.space import load_space

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import design_spaces as ds  # noqa: E402


def test_the_four_spaces_differ_only_in_their_question() -> None:
    base = load_space(ds.SPACES_DIR / "base.yaml")
    for name in ("k2", "gpw", "so"):
        space = load_space(ds.SPACES_DIR / f"{name}.yaml")
        assert (space.stem, space.head) == (base.stem, base.head)
        assert [(s.depth, s.widths, s.stride) for s in space.stages] == [
            (s.depth, s.widths, s.stride) for s in base.stages
        ]
    assert dict(load_space(ds.SPACES_DIR / "k2.yaml").stages[1].choices.options)["kernel"] == (
        2, 3, 5, 7,
    )  # fmt: skip
    assert dict(load_space(ds.SPACES_DIR / "gpw.yaml").stages[1].choices.options)["groups"] == (
        2, 4,
    )  # fmt: skip
    assert load_space(ds.SPACES_DIR / "so.yaml").stages[1].choices.kind == "shuffleonly"


@pytest.mark.parametrize("name", ["base", "so"])
def test_each_network_is_priced_into_the_bin_its_position_asks_for(name: str) -> None:
    table, config = load_table("x86_64"), SearchConfig()
    plan = ds.Plan((4.5, 6.5), 4, 12, seed=3, match="x86_64")
    space = load_space(ds.SPACES_DIR / f"{name}.yaml")

    def price(arch):
        return estimate_price(arch, config, table).latency_ms

    archs = ds.sample_space(space, plan, price, stream=1)
    assert [a.to_string() for a in archs] == [
        a.to_string() for a in ds.sample_space(space, plan, price, stream=1)
    ]
    assert len({a.network_key() for a in archs}) == 12
    edges = plan.edges()
    for arch, wanted in zip(archs, plan.bin_order(), strict=True):
        assert edges[wanted] <= price(arch) < edges[wanted + 1]
    order = plan.bin_order()
    for cycle in range(3):
        assert sorted(order[4 * cycle : 4 * cycle + 4]) == [0, 1, 2, 3]


def test_spaces_are_interleaved_so_a_partial_run_is_balanced() -> None:
    order = ds.interleave({"a": [1, 2, 3], "b": [4, 5, 6]})  # type: ignore[dict-item]
    assert [(name, i) for name, i, _ in order] == [
        ("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2),
    ]  # fmt: skip


def test_bin_weights_give_every_bin_equal_mass() -> None:
    edges = np.array([0.0, 1.0, 2.0])
    weights = ds.bin_weights(np.array([0.5, 0.6, 0.7, 1.5, 3.0]), edges)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[:3].sum() == pytest.approx(0.5) and weights[3] == pytest.approx(0.5)
    assert weights[4] == 0.0


def synthetic(shift: dict[str, float], n: int, seed: int = 0) -> dict:
    """Results whose spaces' errors differ from base's by `shift`, prices spread alike."""
    rng = np.random.default_rng(seed)
    networks, runs = {}, {}
    for name in ds.SPACES:
        networks[name] = []
        for i in range(n):
            ms = {"x86_64": 4.5 + 2 * (i % 4 + rng.random()) / 4, "armv8": 15 + 10 * rng.random()}
            networks[name].append(
                {
                    "arch": f"{name}{i}",
                    "latency": {t: {"ms": v, "modelled_share": 0.0} for t, v in ms.items()},
                }
            )
            error = 0.7 + shift.get(name, 0.0) + rng.normal(0, 0.02)
            runs[ds.run_key(name, i, 0)] = {
                "status": "ok", "error": error, "cpu_s": 10.0, "load": 2.0,
            }  # fmt: skip
    plan = ds.Plan((4.5, 6.5), 4, n, 0, "x86_64")
    return {"sample": {"plan": plan.to_dict(), "networks": networks}, "runs": runs}


def test_the_verdicts_are_read_off_the_data(tmp_path: Path) -> None:
    data = synthetic({"k2": -0.05, "so": 0.05}, n=24)
    plan = ds.Plan((4.5, 6.5), 4, 24, 0, "x86_64")
    text = ds.report(data, plan, tmp_path / "edf.svg")

    def verdict(question: str, target: str) -> str:
        (row,) = [
            line for line in text.splitlines() if line.startswith(f"| {question} | {target} (")
        ]
        return row.rsplit(" | ", 1)[1].rstrip(" |")

    assert verdict("(a) 2x2 depthwise kernels allowed", "x86_64") == "helps"
    assert verdict("(c) shuffle-only blocks", "armv8") == "hurts"
    assert (
        verdict("(b) pointwise replaced by grouped convolution + shuffle", "x86_64")
        == "no difference beyond the noise"
    )
    assert (tmp_path / "edf.svg").stat().st_size > 0


def test_too_few_networks_is_said_not_judged(tmp_path: Path) -> None:
    one = ds.report(synthetic({}, n=1), ds.Plan((4.5, 6.5), 4, 1, 0, "x86_64"), tmp_path / "a.svg")
    assert "too few to compare" in one and not (tmp_path / "a.svg").exists()
    two = ds.report(synthetic({}, n=2), ds.Plan((4.5, 6.5), 4, 2, 0, "x86_64"), tmp_path / "b.svg")
    rows = [line for line in two.splitlines() if line.startswith("| (")]
    assert len(rows) == 6
    matched = [row for row in rows if "| x86_64 (" in row]
    assert len(matched) == 3 and all(
        row.endswith("| too few networks to tell |") for row in matched
    )


def test_a_bad_band_is_one_line_and_exit_code_2() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "design_spaces.py"), "--band", "3", "2"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--band" in done.stderr


def test_the_sample_is_priced_again_on_the_table_as_it_is_now() -> None:
    from nas.config import SearchConfig
    from nas.evaluators.latency.table import load_table
    from nas.search_spaces.space import load_space

    arch = load_space(ds.SPACES_DIR / "base.yaml").cheapest()
    price = ds.table_price(arch, load_table("x86_64"), SearchConfig())["ms"]
    drawn = {"arch": arch.to_string(), "latency": {"x86_64": {"ms": price}}}
    moved = {"arch": arch.to_string(), "latency": {"x86_64": {"ms": price / 2}}}
    plan = ds.Plan((price - 1, price + 1), 2, 1, 0, "x86_64")
    lines = ds.rematch_lines({"base": [drawn], "so": [moved]}, plan)
    rows = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ")}
    assert "| 1.000 [1.000-1.000] | 100% | 100% |" in rows["base"]
    assert "| 2.000 [2.000-2.000] | 100% |" in rows["so"]  # priced twice what it was drawn at
