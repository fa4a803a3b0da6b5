"""Latency tables: format, lookup, errors, a resumable real build and a real validation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from lut_spaces import SMALL_SPACE

from nas.cli import main
from nas.errors import InputError
from nas.evaluators.latency import build as lut_build
from nas.evaluators.latency.build import BuildOptions, build_table
from nas.evaluators.latency.networks import sample_archs
from nas.evaluators.latency.table import LatencyTable, feature_map_bytes, load_table
from nas.evaluators.latency.timing import get_backend
from nas.evaluators.latency.validate import check_operator_speed, validate_table, write_report
from nas.search_spaces.arch import Arch
from nas.search_spaces.signatures import OpSignature, arch_signatures
from nas.search_spaces.space import load_space

INPUT = 64


@pytest.fixture()
def small_space(tmp_path: Path) -> Path:
    path = tmp_path / "lut_test.yaml"
    path.write_text(SMALL_SPACE)
    return path


def _fast(space: Path, out: Path, **overrides) -> BuildOptions:
    settings = {
        "target": "testbox",
        "space": str(space),
        "input_size": INPUT,
        "out": out,
        "repeats": 3,
        "warmup": 1,
        "min_seconds": 0.0,
        "save_every": 2,
        "calibrate": 2,
    }
    settings.update(overrides)
    return BuildOptions(**settings)


def _synthetic_table(arch, overhead: float = 0.0) -> LatencyTable:
    sigs = arch_signatures(arch)
    entries = {
        sig.key: {"ms": float(i + 1), "std": 0.1, "source": "measured"}
        for i, sig in enumerate(sigs)
    }
    metadata = {
        "target": "synthetic",
        "input_size": 224,
        "method": "made up for a test",
        "per_op_overhead_ms": overhead,
        "space": "mobile",
    }
    return LatencyTable(metadata, entries)


# ---- format and lookup -------------------------------------------------------------------


def test_round_trip_keeps_metadata_entries_and_cost_model(tmp_path: Path) -> None:
    arch = load_space("mobile").cheapest()
    table = _synthetic_table(arch, overhead=0.005)
    table.set_entry("pool:7x7x960>960", 0.0123456789, 0.000123456, "model")
    table.cost_model = {"format": 1, "coefficients": {"a": 1.5}}
    path = table.save(tmp_path / "nested" / "t.json")
    loaded = LatencyTable.load(path)
    assert loaded.metadata == table.metadata
    assert loaded.cost_model == table.cost_model
    assert set(loaded.entries) == set(table.entries)
    assert loaded.entries["pool:7x7x960>960"] == {
        "ms": 0.01235,
        "std": 0.0001235,
        "source": "model",
    }
    assert loaded.to_json() == table.to_json()
    assert json.loads(path.read_text())["format"] == 1
    assert path.stat().st_mode & 0o044 == 0o044  # readable by others, like any package file


def test_predict_sums_entries_less_per_call_overhead_in_network_order() -> None:
    arch = load_space("mobile").dearest()
    table = _synthetic_table(arch, overhead=0.25)
    estimate = table.predict(arch)
    sigs = arch_signatures(arch)
    n = len(sigs)
    assert len({sig.key for sig in sigs}) < n  # repeated blocks share one entry
    each = [table.entries[sig.key]["ms"] for sig in sigs]
    assert estimate.total_ms == pytest.approx(sum(each) - (n - 1) * 0.25)
    assert [op.key for op in estimate.ops] == [sig.key for sig in sigs]
    assert [op.ms for op in estimate.ops] == each
    assert (estimate.n_measured, estimate.n_modelled) == (n, 0)
    assert estimate.to_dict(with_ops=False)["latency_ms"] == pytest.approx(estimate.total_ms)
    # The cold-cache term adds its rate times the feature-map megabytes the network moves.
    table.metadata = table.metadata.replace(cold_ms_per_mb=0.02)
    megabytes = sum(feature_map_bytes(sig) for sig in sigs) / 1e6
    assert 10 < megabytes < 500
    assert table.predict(arch).total_ms == pytest.approx(estimate.total_ms + 0.02 * megabytes)


def test_feature_map_bytes_follow_the_block_structure() -> None:
    plain = OpSignature("mbconv", 28, 28, 40, 40, expansion=3, kernel=3, act="relu")
    x, mid = 28 * 28 * 40, 28 * 28 * 120
    # expansion reads x writes mid; depthwise reads and writes mid; projection reads mid writes
    # x; the shortcut reads two tensors and writes one.
    assert feature_map_bytes(plain) == 4 * (x + mid + 2 * mid + mid + x + 3 * x)
    gated = OpSignature(
        "mbconv", 28, 28, 40, 40, expansion=3, kernel=3, act="relu", se_ratio=0.25, groups=2
    )
    assert feature_map_bytes(gated) - feature_map_bytes(plain) == 4 * (3 * mid + 2 * mid)
    assert feature_map_bytes(OpSignature("pool", 7, 7, 960, 960)) == 4 * (49 * 960 + 960)


def test_a_repeated_lookup_gives_the_first_answer() -> None:
    # The first lookup of an arch derives its signatures and keys, later ones reuse them; how
    # long either takes is measured by benchmarks/pricing.py, not bounded here.
    space = load_space("mobile")
    fresh = sample_archs(space, 30, seed=7)
    table = LatencyTable(
        {"target": "t", "input_size": 224, "method": "m", "cold_ms_per_mb": 0.02},
        {
            sig.key: {"ms": 1.0, "std": 0.0, "source": "measured"}
            for arch in fresh
            for sig in arch_signatures(arch)
        },
    )
    first = [table.predict(arch) for arch in fresh]
    for arch, estimate in zip(fresh, first):
        assert table.predict(arch) == estimate
        assert estimate.n_measured == len(estimate.ops) == len(arch_signatures(arch))
        assert estimate.total_ms > len(estimate.ops)  # every entry 1 ms, plus cold feature maps


def test_missing_entry_names_the_operator_and_the_command() -> None:
    arch = load_space("mobile").cheapest()
    table = _synthetic_table(arch)
    missing = arch_signatures(arch)[3].key
    del table.entries[missing]
    with pytest.raises(InputError, match="nas lut build --target synthetic --space mobile") as info:
        table.predict(arch)
    assert missing in str(info.value)


def test_cost_model_prices_what_the_table_lacks() -> None:
    from nas.evaluators.latency.cost_model import fit_cost_model

    space = load_space("mobile")
    arch = space.cheapest()
    sigs = arch_signatures(arch)
    table = _synthetic_table(arch)
    model = fit_cost_model([(sig, table.entries[sig.key]["ms"]) for sig in sigs])
    table.cost_model = model.to_dict()
    del table.entries[sigs[2].key]
    estimate = table.predict(arch)
    assert (estimate.n_measured, estimate.n_modelled) == (len(sigs) - 1, 1)
    assert estimate.ops[2].source == "model"
    assert estimate.ops[2].ms == pytest.approx(model.predict_ms(sigs[2]))


def test_other_input_size_without_a_cost_model_is_refused() -> None:
    arch = load_space("mobile").cheapest()
    with pytest.raises(InputError, match="built for 224x224 inputs and has no cost model") as info:
        _synthetic_table(arch).predict(arch, (3, 160, 160))
    assert "--input-size 224" in str(info.value) and "--input-size 160" in str(info.value)
    listed = _synthetic_table(arch)
    listed.metadata = listed.metadata.replace(input_size=(3, 224, 224))  # a table may say so too
    assert listed.predict(arch).total_ms > 0


def test_other_input_size_is_priced_by_entries_at_that_size_then_the_cost_model() -> None:
    from nas.evaluators.latency.cost_model import fit_cost_model

    arch = load_space("mobile").cheapest()
    table = _synthetic_table(arch)
    sigs = arch_signatures(arch)
    model = fit_cost_model([(sig, table.entries[sig.key]["ms"]) for sig in sigs])
    table.cost_model = model.to_dict()
    at_160 = arch_signatures(arch, (3, 160, 160))
    # The fc layer and the classifier see the pooled vector, so their entries hold at any input
    # size; one block measured at 160 is used as measured; everything else is the model's.
    table.set_entry(at_160[2].key, 0.5, 0.01, "measured")
    estimate = table.predict(arch, (3, 160, 160))
    shared = {sig.key for sig in at_160} & {sig.key for sig in sigs}
    assert shared == {at_160[-2].key, at_160[-1].key}
    assert estimate.n_measured == 3 and estimate.n_modelled == len(at_160) - 3
    assert estimate.ops[2].ms == 0.5 and estimate.ops[2].source == "measured"
    assert estimate.ops[1].ms == pytest.approx(model.predict_ms(at_160[1]))
    assert estimate.ops[-1].ms == table.entries[sigs[-1].key]["ms"]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            '{"format": 1, "metadata": {"target": "t", "input_size": 224, "meth',
            "corrupt or truncated",
        ),
        ("", "corrupt or truncated"),
        ("[1, 2]", "must be a JSON object"),
        ('{"format": 9, "metadata": {}, "entries": {}}', "has format 9"),
        (
            '{"format": 1, "metadata": {"target": "t", "method": "m"}, "entries": {}}',
            "lacks 'input_size'",
        ),
        (
            '{"format": 1, "metadata": {"target": "t", "input_size": "big", "method": "m"}, '
            + '"entries": {}}',
            "'input_size' must be",
        ),
        (
            '{"format": 1, "metadata": {"target": "t", "input_size": 224, "method": "m"}, '
            + '"entries": {"stem:x": {"ms": "fast", "std": 0, "source": "measured"}}}',
            "entry 'stem:x'",
        ),
        (
            '{"format": 1, "metadata": {"target": "t", "input_size": 224, "method": "m"}, '
            + '"entries": {"stem:x": {"ms": 1, "std": 0, "source": "guessed"}}}',
            "entry 'stem:x'",
        ),
    ],
)
def test_bad_table_files_are_input_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_table(str(path))


def test_load_table_finds_user_tables_first_then_shipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NAS_TABLES_DIR", str(tmp_path))
    shipped = load_table("x86_64")
    assert shipped.target == "x86_64"
    mine = _synthetic_table(load_space("mobile").cheapest())
    mine.metadata = mine.metadata.replace(target="x86_64")
    mine.save(tmp_path / "x86_64.json")
    assert load_table("x86_64").path == tmp_path / "x86_64.json"
    with pytest.raises(
        InputError, match="unknown latency target 'pi5'.*nas lut build --target pi5"
    ):
        load_table("pi5")
    with pytest.raises(InputError, match="does not exist"):
        load_table(str(tmp_path / "absent.json"))


def test_shipped_x86_64_table_covers_the_default_space() -> None:
    table = load_table("x86_64")
    sigs = load_space("mobile").signatures()
    assert len(sigs) == 2959
    assert not table.missing(sigs)
    assert table.metadata.threads == 1 and table.metadata.runtime == "onnxruntime"
    assert table.metadata.per_op_overhead_ms > 0
    assert table.metadata.cold_ms_per_mb > 0 and table.metadata.calibration.seed != 0
    assert table.cost_model is not None
    assert Path(table.path).stat().st_size < 1_000_000


# ---- a real build: resume, then validate --------------------------------------------------


def test_interrupted_build_resumes_and_skips_what_it_measured(
    small_space: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "box.json"
    first: list[str] = []

    def stop_after_five(sig) -> None:
        first.append(sig.key)
        if len(first) == 5:
            raise KeyboardInterrupt

    report = build_table(_fast(small_space, out), show_progress=False, on_measured=stop_after_five)
    assert report.interrupted and report.measured == 5
    saved = LatencyTable.load(out)
    assert sorted(saved.entries) == sorted(first)

    timed: list[str] = []
    real_measure = lut_build.measure_op
    monkeypatch.setattr(
        lut_build,
        "measure_op",
        lambda sig, *a, **k: timed.append(sig.key) or real_measure(sig, *a, **k),
    )
    report = build_table(_fast(small_space, out), show_progress=False)
    total = len(load_space(str(small_space)).signatures((3, INPUT, INPUT)))
    assert not report.interrupted
    assert (report.skipped, report.measured, report.total) == (5, total - 5, total)
    assert not set(timed) & set(first) and len(timed) == total - 5
    table = LatencyTable.load(out)
    assert len(table.entries) == total
    assert all(e["source"] == "measured" and e["ms"] > 0 for e in table.entries.values())
    assert table.metadata.cpu_model and table.metadata.runtime == "onnxruntime"
    assert table.metadata.threads == 1 and table.metadata.input_size == INPUT
    assert table.metadata.per_op_overhead_ms > 0
    assert table.cost_model is not None and table.cost_model["fit"]["samples"] == total
    assert table.metadata.calibration.networks == 2
    assert table.metadata.cold_ms_per_mb >= 0
    # The calibration's timings come back, so a fit can be redone without timing them again.
    timings = report.calibration_timings
    assert len(timings.archs) == len(timings.measured_ms) == 2
    assert all(ms > 0 for ms in timings.measured_ms)

    # Nothing left: a third run measures nothing; a different thread count is refused.
    assert build_table(_fast(small_space, out), show_progress=False).measured == 0
    with pytest.raises(InputError, match="threads=1.*another --out"):
        build_table(_fast(small_space, out, threads=2), show_progress=False)

    # The table it made validates end to end against networks of its space.
    report = validate_table(
        table,
        load_space(str(small_space)),
        n_archs=3,
        seed=1,
        include_zoo=False,
        rounds=1,
        repeats=5,
        show_progress=False,
        speed_check=6,
    )
    random_rows = [row for row in report.rows if row.group == "random"]
    assert len(random_rows) == 3
    # How close predictions come is a benchmark's question (BENCHMARKS.md); timings of
    # sub-millisecond networks on a shared machine are too noisy to bound in a test.
    for row in random_rows:
        assert row.measured_ms > 0 and row.predicted_ms > 0
        estimate = table.predict(
            Arch.from_string(row.arch),
            (3, INPUT, INPUT),
            table.num_classes,
        )
        assert row.predicted_ms == pytest.approx(estimate.total_ms)
        assert row.sum_ms == pytest.approx(sum(op.ms for op in estimate.ops))
    assert not [row for row in report.rows if row.group == "zoo"]
    metrics = report.metrics("random")
    assert metrics.n == 3 and 0 <= metrics.within_pct <= 100 and -1 <= metrics.kendall_tau <= 1
    assert report.speed is not None and report.speed.n == min(6, total)
    assert report.speed.ratio > 0 and report.speed.low <= report.speed.high
    # Every kind in networks of the space it measured is priced from its own measurements.
    trust = report.trust
    assert {k.price for k in trust.kinds if k.priced} == {"measured"}
    assert trust.identity["runtime"].startswith("onnxruntime") and trust.identity["threads"] == "1"
    assert trust.error.pct == table.metadata.calibration.mape_fitted_pct
    json_path, png_path = write_report(report, tmp_path / "report")
    saved = json.loads(json_path.read_text())
    assert saved["metrics"]["random"]["n"] == 3 and saved["metrics"]["zoo"] is None
    assert saved["operator_speed"]["ratio"] == report.speed.ratio

    # A table whose entries are a thousandth of what this machine took moments ago reports the
    # change of speed; the margin is wide enough that no load on a shared machine hides it.
    faster = LatencyTable(
        table.metadata,
        {key: {**entry, "ms": entry["ms"] / 1000} for key, entry in table.entries.items()},
    )
    speed = check_operator_speed(
        faster, load_space(str(small_space)), get_backend("onnxruntime", 1), count=6
    )
    assert speed.changed and speed.ratio > 100 and speed.n == 6
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_torch_backend_builds_a_table(small_space: Path, tmp_path: Path) -> None:
    out = tmp_path / "torch.json"
    limited: list[str] = []

    def stop_after_three(sig) -> None:
        limited.append(sig.key)
        if len(limited) == 3:
            raise KeyboardInterrupt

    build_table(
        _fast(small_space, out, backend="torch"), show_progress=False, on_measured=stop_after_three
    )
    table = LatencyTable.load(out)
    assert table.metadata.runtime == "torch" and len(table.entries) == 3


# ---- the command line ---------------------------------------------------------------------


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_cli_bad_input_exits_2_with_one_line(
    tmp_path: Path, small_space: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("NAS_TABLES_DIR", str(tmp_path / "tables"))
    code, _, err = _run(["lut", "show", "nowhere"], capsys)
    assert code == 2 and "unknown latency target 'nowhere'" in err and err.count("\n") == 1
    code, _, err = _run(["lut", "build", "--target", "x", "--backend", "tvm"], capsys)
    assert code == 2 and "'tvm' is not one of" in err
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": 1, "metad')
    code, _, err = _run(["lut", "show", str(corrupt)], capsys)
    assert code == 2 and "corrupt or truncated" in err
    code, _, err = _run(["arch", "show", "mobilenet_v2", "--target", "nowhere"], capsys)
    assert code == 2 and "unknown latency target" in err
    code, _, err = _run(["lut", "validate", "--target", "armv8"], capsys)
    assert code == 2 and "validate it on that device" in err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as on a device without it
    code, _, err = _run(
        [
            "lut",
            "build",
            "--target",
            "x",
            "--space",
            str(small_space),
            "--out",
            str(tmp_path / "x.json"),
        ],
        capsys,
    )
    assert code == 2 and "backend 'onnxruntime' is not installed" in err
    assert not (tmp_path / "x.json").exists()


def test_cli_list_show_and_arch_latency(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NAS_TABLES_DIR", str(tmp_path))
    code, out, _ = _run(["lut", "list", "--json"], capsys)
    targets = {row["target"]: row for row in json.loads(out)}
    assert code == 0 and {"armv8", "x86_64"} <= set(targets)
    assert targets["x86_64"]["origin"] == "shipped"
    code, out, _ = _run(["lut", "show", "x86_64", "--json"], capsys)
    shown = json.loads(out)
    assert code == 0 and shown["n_measured"] == shown["entries"] >= 2959
    code, out, _ = _run(
        ["arch", "show", "mobilenet_v3_large", "--target", "armv8", "--json"], capsys
    )
    result = json.loads(out)
    assert code == 0 and result["latency_ms"] > 0 and result["mflops"] > 0
    assert result["n_measured"] + result["n_modelled"] == len(result["blocks"])
    # Another deployment resolution is priced by the table's cost model, and costs less.
    code, out, _ = _run(
        [
            "arch",
            "show",
            "mobilenet_v3_large",
            "--target",
            "armv8",
            "--input-size",
            "192",
            "--json",
        ],
        capsys,
    )
    smaller = json.loads(out)
    assert code == 0 and smaller["input"] == [3, 192, 192]
    assert 0 < smaller["latency_ms"] < result["latency_ms"]
    assert smaller["n_modelled"] == len(smaller["blocks"])


def test_a_search_prices_its_candidates_at_its_own_deployment_input() -> None:
    from nas.config import SearchConfig
    from nas.pricing import check_budget_is_reachable, price

    space = load_space("mobile")
    arch = space.dearest()
    table = load_table("armv8")
    at_224 = price(arch, SearchConfig(budget_mflops=150.0), table)
    small = SearchConfig(budget_mflops=150.0, input_size=192)
    at_192 = price(arch, small, table)
    assert at_192.mflops < at_224.mflops and at_192.latency_ms < at_224.latency_ms
    assert at_192.latency_n_modelled == len(arch_signatures(arch, (3, 192, 192)))
    assert small.identity()["input_size"] == 192  # a resumed study keeps its deployment input
    check_budget_is_reachable(space, small, table)
