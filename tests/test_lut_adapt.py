"""`nas lut adapt`: the speed fit on known factors, the sample it times, and real runs that resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas.cli import main
from nas.errors import InputError
from nas.evaluators.latency import adapt as lut_adapt
from nas.evaluators.latency.adapt import (
    AdaptOptions,
    adapt_table,
    choose_operators,
    fit_speed,
    term_shares,
    variant,
)
from nas.evaluators.latency.build import BuildOptions, build_table
from nas.evaluators.latency.cost_model import TERM_NAMES, OpCostModel
from nas.evaluators.latency.metadata import AdaptedFrom
from nas.evaluators.latency.table import LatencyTable, load_table
from nas.search_spaces.space import load_space

SMALL_SPACE = """\
name: adapt_test
description: a few dozen operators over several variants, so a real adaptation takes seconds
stem: {channels: 8, kernel: 3, stride: 2, act: relu}
head: {conv_channels: 32, fc_channels: 0, act: hswish, dropout: 0.0}
block_choices: {expansion: [3], kernel: [3, 5], groups: [1, 2], se_ratio: [0, 0.25], act: [relu, hswish]}
stages:
  - {depth: [1, 2], width: [8, 16], stride: 2}
  - {depth: [1, 2], width: [16], stride: 2}
"""
INPUT = 48


@pytest.fixture()
def small_space(tmp_path: Path) -> Path:
    path = tmp_path / "adapt_test.yaml"
    path.write_text(SMALL_SPACE)
    return path


@pytest.fixture()
def source_table(small_space: Path, tmp_path: Path) -> Path:
    """A real table of the small space, built on this machine with few repeats."""
    out = tmp_path / "source.json"
    build_table(
        BuildOptions(
            target="source",
            space=str(small_space),
            input_size=INPUT,
            out=out,
            repeats=3,
            warmup=1,
            min_seconds=0.0,
            save_every=50,
            calibrate=2,
        ),
        show_progress=False,
    )
    return out


def _fast(source: Path, out: Path, **overrides) -> AdaptOptions:
    settings = {
        "source": str(source),
        "space": str(out.parent / "adapt_test.yaml"),
        "target": "here",
        "operators": 14,
        "networks": 2,
        "rounds": 1,
        "out": out,
        "repeats": 3,
        "warmup": 1,
        "min_seconds": 0.0,
        "save_every": 2,
    }
    settings.update(overrides)
    return AdaptOptions(**settings)


# ---- the fit ------------------------------------------------------------------------------


def _model(space_sigs) -> OpCostModel:
    """A cost model with every term in use, so each one carries part of some operator's time."""
    return OpCostModel({name: 1e-9 * (index + 1) for index, name in enumerate(TERM_NAMES)})


def test_one_speed_for_every_term_is_found_exactly() -> None:
    sigs = choose_operators(load_space("mobile").signatures((3, 224, 224)), 40, seed=0)
    model = _model(sigs)
    shares = np.array([term_shares(model, sig) for sig in sigs])
    source = shares.sum(axis=1)
    fit = fit_speed(source, shares, 2.5 * source)
    assert fit.overall == pytest.approx(2.5)
    assert all(value == pytest.approx(2.5, rel=1e-3) for value in fit.scales.values())


def test_different_speeds_per_kind_of_work_are_followed() -> None:
    # This machine multiplies 4x slower than the source but moves memory only 1.5x slower:
    # the per-term fit must follow that, and predict held-out operators better than one ratio.
    sigs = choose_operators(load_space("mobile").signatures((3, 224, 224)), 60, seed=0)
    model = _model(sigs)
    true = np.array([4.0 if name.endswith("_macs") else 1.5 for name in TERM_NAMES])
    shares = np.array([term_shares(model, sig) for sig in sigs])
    source = shares.sum(axis=1)
    here = shares @ true
    fit = fit_speed(source, shares, here)
    assert fit.ridge != float("inf")
    scores = fit.cv_mape_by_ridge
    assert scores[f"{fit.ridge:g}"] < scores["overall ratio only"] / 3
    predicted = np.array([s * fit.factor(row) for s, row in zip(source, shares)])
    assert np.max(np.abs(predicted / here - 1)) < 0.05


def test_too_few_operators_cannot_be_fitted() -> None:
    with pytest.raises(InputError, match="at least 12 timed operators"):
        fit_speed(np.ones(5), np.ones((5, len(TERM_NAMES))), np.ones(5))


def test_operators_priced_or_timed_at_zero_are_left_out_of_the_fit() -> None:
    sigs = choose_operators(load_space("mobile").signatures((3, 224, 224)), 40, seed=0)
    model = _model(sigs)
    shares = np.array([term_shares(model, sig) for sig in sigs])
    source = shares.sum(axis=1)
    here = 2.5 * source
    source[0], here[1] = 0.0, 0.0  # nothing in the source; no time here
    fit = fit_speed(source, shares, here)
    assert fit.overall == pytest.approx(2.5)
    with pytest.raises(InputError, match=r"got 10 \(2 more priced or timed at zero\)"):
        fit_speed(source[:12], shares[:12], here[:12])


def test_the_sample_covers_every_variant_and_repeats_for_a_seed() -> None:
    sigs = load_space("mobile").signatures((3, 224, 224))
    variants = {variant(sig) for sig in sigs}
    chosen = choose_operators(sigs, len(variants), seed=3)
    assert {variant(sig) for sig in chosen} == variants
    assert len(set(chosen)) == len(chosen)
    assert choose_operators(sigs, 60, seed=3) == choose_operators(sigs, 60, seed=3)
    assert choose_operators(sigs, 60, seed=3) != choose_operators(sigs, 60, seed=4)
    assert len(choose_operators(sigs[:5], 60, seed=0)) == len(set(sigs[:5]))


# ---- real runs ----------------------------------------------------------------------------


def test_adapt_times_here_resumes_and_recovers_a_speed_change(
    source_table: Path, small_space: Path, tmp_path: Path, monkeypatch
) -> None:
    # The source as if measured on a machine a thousand times faster: adapting it here must
    # bring its entries back to this machine's scale, whatever the load on the machine.
    built = LatencyTable.load(source_table)
    faster = LatencyTable(
        built.metadata.replace(target="fast"),
        {key: {**e, "ms": e["ms"] / 1000} for key, e in built.entries.items()},
    )
    fast_path = faster.save(tmp_path / "fast.json")
    out = tmp_path / "here.json"

    first: list[str] = []

    def stop_after_five(sig) -> None:
        first.append(sig.key)
        if len(first) == 5:
            raise KeyboardInterrupt

    report = adapt_table(_fast(fast_path, out), show_progress=False, on_measured=stop_after_five)
    assert report.interrupted and report.operators_measured == 5
    partial = LatencyTable.load(out)
    assert sorted(partial.entries) == sorted(first)
    assert partial.metadata.adaptation.status == "measuring"

    timed: list[str] = []
    real_measure = lut_adapt.measure_op
    monkeypatch.setattr(
        lut_adapt,
        "measure_op",
        lambda sig, *a, **k: timed.append(sig.key) or real_measure(sig, *a, **k),
    )
    report = adapt_table(_fast(fast_path, out), show_progress=False)
    assert not report.interrupted and report.operators_resumed == 5
    assert len(timed) == 14 - 5 and not set(timed) & set(first)

    table = LatencyTable.load(out)
    sigs = load_space(str(small_space)).signatures((3, INPUT, INPUT))
    assert set(table.entries) == {sig.key for sig in sigs}
    sources = [entry["source"] for entry in table.entries.values()]
    assert sources.count("measured") == 14 and sources.count("model") == len(sigs) - 14
    done = table.metadata.adaptation
    assert done.status == "complete" and done.operators == 14
    assert done.speed_ratio_median > 100 and len(done.networks) == 2
    assert set(done.cv_operator_mape_pct_by_ridge) >= {"overall ratio only", "1"}
    assert table.metadata.adapted_from.target == "fast"
    assert table.metadata.adapted_from.path == str(fast_path)
    assert table.metadata.runtime == "onnxruntime" and table.metadata.threads == 1
    assert table.metadata.per_op_overhead_ms > 0 and table.metadata.cold_ms_per_mb >= 0
    assert table.metadata.calibration.networks == 2
    # Modelled entries are on this machine's scale, not the fast source's.
    modelled = [key for key, e in table.entries.items() if e["source"] == "model"]
    ratios = [table.entries[key]["ms"] / faster.entries[key]["ms"] for key in modelled]
    assert np.median(ratios) > 100
    # The adapted cost model prices an operator outside the space on the same scale.
    assert table.cost_model is not None
    arch = load_space(str(small_space)).dearest()
    assert table.predict(arch, (3, INPUT, INPUT)).total_ms > 0

    # A finished adaptation reruns without timing any operator again.
    timed.clear()
    again = adapt_table(_fast(fast_path, out), show_progress=False)
    assert timed == [] and again.operators_resumed == 14
    with pytest.raises(InputError, match="threads=1.*another --out"):
        adapt_table(_fast(fast_path, out, threads=2), show_progress=False)
    with pytest.raises(InputError, match="not an adaptation of 'source'"):
        adapt_table(_fast(source_table, out), show_progress=False)


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_cli_adapts_and_validates(
    source_table: Path, small_space: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "cli.json"
    argv = ["lut", "adapt", "--from", str(source_table), "--target", "cli", "--out", str(out)]
    code, _, err = _run(argv, capsys)
    assert code == 2 and "space 'adapt_test', which is not a built-in space" in err
    argv += ["--space", str(small_space), "--operators", "12", "--networks", "2", "--rounds", "1"]
    code, printed, _ = _run(argv, capsys)
    printed = " ".join(printed.split())  # rich folds long lines at the terminal's width
    assert code == 0 and "adapted from 'source'" in printed and "held-out" in printed
    assert f"nas lut validate --target {out}" in printed
    assert load_table(str(out)).metadata.adaptation.status == "complete"
    code, printed, _ = _run(
        [
            "lut",
            "validate",
            "--target",
            str(out),
            "--archs",
            "2",
            "--rounds",
            "1",
            "--no-zoo",
            "--space",
            str(small_space),
            "--out",
            str(tmp_path / "report"),
        ],
        capsys,
    )
    assert code == 0 and "x speed ratio" in " ".join(printed.split())
    saved = json.loads((tmp_path / "report" / "validate_cli.json").read_text())
    assert saved["speed_scaled_metrics"]["random"]["n"] == 2


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    code, _, err = _run(["lut", "adapt", "--from", "nowhere", "--target", "x"], capsys)
    assert code == 2 and "unknown latency target 'nowhere'" in err and err.count("\n") == 1
    blocked = tmp_path / "file"
    blocked.write_text("")
    code, _, err = _run(
        ["lut", "adapt", "--from", "x86_64", "--target", "x", "--out", str(blocked / "t.json")],
        capsys,
    )
    assert code == 2 and "--out" in err and err.count("\n") == 1
    bare = LatencyTable({"target": "bare", "input_size": 224, "method": "m"})
    path = bare.save(tmp_path / "bare.json")
    code, _, err = _run(
        ["lut", "adapt", "--from", str(path), "--target", "x", "--out", str(tmp_path / "x.json")],
        capsys,
    )
    assert code == 2 and "no cost model and only 0 entries" in err
    assert not (tmp_path / "x.json").exists()
    code, _, err = _run(["lut", "validate", "--target", "x86_64", "--input-size", "3"], capsys)
    assert code == 2 and "--input-size" in err
    code, _, err = _run(["lut", "validate", "--target", "x86_64", "--input-size", "100000"], capsys)
    assert code == 2 and "over the limit" in err and err.count("\n") == 1


def test_a_build_does_not_mix_into_an_adapted_table(source_table: Path, tmp_path: Path) -> None:
    adapted = LatencyTable.load(source_table)
    adapted.metadata = adapted.metadata.replace(adapted_from=AdaptedFrom(target="x86_64"))
    path = adapted.save(tmp_path / "adapted.json")
    options = BuildOptions(target="x", space=str(tmp_path / "adapt_test.yaml"), out=path)
    with pytest.raises(InputError, match="made by 'nas lut adapt'.*another --out"):
        build_table(options, show_progress=False)
