"""How far to trust a table: what it is, the error it states, per operator kind whether its
price rests on measurements or is extrapolated, and the search's line when a front's latency
order is finer than that error."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from nas.cli import main
from nas.evaluators.latency.arm_data import default_data_dir, load_note10
from nas.evaluators.latency.evidence import KindEvidence, gather, table_evidence
from nas.evaluators.latency.metadata import Calibration, TableMetadata
from nas.evaluators.latency.op_kinds import KINDS, KindUse, kind_uses
from nas.evaluators.latency.reports import TableView, trust_parts
from nas.evaluators.latency.table import LatencyTable, load_table, shipped_tables
from nas.evaluators.latency.trust import identity, kind_trust, stated_error
from nas.evaluators.latency.validate import Row, ValidationReport
from nas.front import TrainedRow
from nas.latency_order import close_in_latency
from nas.search_spaces.signatures import OpSignature, arch_signatures
from nas.search_spaces.space import load_space
from nas.search_spaces.zoo import ZOO

ROOT = Path(__file__).resolve().parents[1]


def _kinds(arch_name: str) -> set[str]:
    return {use.kind for sig in arch_signatures(ZOO[arch_name]()) for use in kind_uses(sig)}


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


# ---- what a table is ---------------------------------------------------------------------------


def test_a_table_says_what_it_is_and_what_it_does_not_record() -> None:
    armv8 = identity(load_table("armv8").metadata)
    assert armv8["device"] == "Samsung Galaxy Note10"
    assert armv8["runtime"] == armv8["threads"] == "not recorded"
    assert armv8["precision"].startswith("float32 (assumed")  # the table's own note
    x86 = identity(load_table("x86_64").metadata)
    assert (x86["runtime"], x86["threads"], x86["precision"]) == (
        "onnxruntime 1.31.1",
        "1",
        "float32",
    )
    bare = TableMetadata.create(target="t", input_size=64, method="hand-made")
    assert set(identity(bare).values()) == {"not recorded"}


def test_the_stated_error_is_the_tables_own_figure_and_says_what_it_was_measured_on() -> None:
    x86 = load_table("x86_64").metadata
    error = stated_error(x86)
    assert error is not None and error.pct == x86.calibration.mape_fitted_pct
    assert "30 whole networks" in error.basis
    armv8 = load_table("armv8").metadata
    arm_error = stated_error(armv8)
    cv = armv8.cv_mape
    # The spread the armv8 method gives its model entries: the larger held-out figure.
    assert arm_error is not None
    assert arm_error.pct == max(cv["resolution"]["pooled"], cv["block_shape"]["pooled"])
    assert stated_error(TableMetadata.create(target="t", input_size=64, method="m")) is None
    # As a search stores it (a mapping), and a record too damaged to read says nothing.
    assert stated_error(x86.to_dict()) == error
    assert stated_error({"calibration": {"mape_fitted_pct": 2.0}}) is None
    calibrated = TableMetadata.create(
        target="t", input_size=64, method="m", calibration=Calibration(mape_fitted_pct=4.25)
    )
    assert stated_error(calibrated).pct == 4.25


# ---- operator kinds ----------------------------------------------------------------------------


def test_every_operator_of_every_space_and_zoo_network_has_named_kinds() -> None:
    sigs = [
        sig for name in ("mobile", "survey", "families") for sig in load_space(name).signatures()
    ]
    sigs += [sig for factory in ZOO.values() for sig in arch_signatures(factory())]
    found = {use.kind for sig in sigs for use in kind_uses(sig)}
    assert found <= set(KINDS)
    # The branched kinds' copies and poolings are named where they occur.
    assert {"channel split", "concat", "channel shuffle", "max pool"} <= _kinds(
        "shufflenet_v2_x1_0"
    )
    assert {"grouped pointwise", "avg pool"} <= _kinds("shufflenet_v1_g3_x1_0")
    assert {"squeeze-excite", "hswish", "shortcut add"} <= _kinds("mobilenet_v3_large")
    assert "relu6" in _kinds("mobilenet_v2") and "channel split" not in _kinds("mobilenet_v2")
    shuffle_only = {
        use.kind
        for s in load_space("families").signatures()
        for use in kind_uses(s)
        if s.kind == "shuffleonly"
    }
    assert {"channel max", "channel mean", "grouped conv kxk"} <= shuffle_only


def test_a_kind_use_beyond_the_measured_shapes_says_which_bounds_it_crosses() -> None:
    measured = KindEvidence(n=3, side=(7, 56), channels=(16, 96), kernels=(3, 5), strides=(1,))
    assert measured.beyond(KindUse("depthwise", 28, 64, 5, 1)) == ()
    assert measured.beyond(KindUse("depthwise", 112, 64, 7, 2)) == ("side", "kernel", "stride")
    assert measured.beyond(KindUse("depthwise", 28, 8)) == ("channels",)
    assert measured.range_text() == "side 7-56, ch 16-96, k3/5, s1"
    conv = KindEvidence(n=1, side=(224, 224), channels=(3, 3), out_channels=(16, 16))
    assert conv.beyond(KindUse("conv kxk", 224, 3, out_channels=32)) == ("channels",)
    assert KindEvidence.from_dict(conv.to_dict(), "t") == conv


def test_gathered_evidence_counts_operators_and_averages_held_out_errors_per_kind() -> None:
    relu = OpSignature("mbconv", 28, 28, 32, 32, expansion=3, kernel=3, act="relu")
    hswish = OpSignature("mbconv", 14, 14, 64, 64, expansion=6, kernel=5, act="hswish")
    found = gather([((relu,), 1.0, 1.1), ((hswish,), 2.0, 1.9)])
    assert found["depthwise"].n == 2 and found["depthwise"].kernels == (3, 5)
    assert found["depthwise"].held_out_mape_pct == pytest.approx(7.5)
    assert found["relu"].n == 1 and found["relu"].held_out_mape_pct == pytest.approx(10.0)
    assert found["depthwise"].side == (14, 28) and found["depthwise"].channels == (96, 384)
    # Too few held-out operators of a kind give no error for it.
    assert gather([((relu,), 1.0, 1.1)], min_held_out=2)["relu"].held_out_mape_pct is None


@pytest.mark.skipif(
    not (default_data_dir() / "note10").is_dir(), reason="the published Note10 tables are not here"
)
def test_the_armv8_fit_evidence_is_what_the_published_operators_give() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_armv8", ROOT / "scripts/build_armv8_table.py"
    )
    script = importlib.util.module_from_spec(spec)
    sys.modules["build_armv8"] = script
    spec.loader.exec_module(script)
    table = load_table("armv8")
    recorded = dict(table.metadata.fit_evidence)
    again = script.note10_evidence(
        load_note10(), table.cost_model["cache_bytes"], recorded["stated_error_pct"]
    )
    assert json.loads(json.dumps(again)) == json.loads(json.dumps(recorded))


# ---- per kind over what a table prices -----------------------------------------------------


def test_armv8_names_the_kinds_no_phone_measurement_covers() -> None:
    table = load_table("armv8")
    sigs = [sig for factory in ZOO.values() for sig in arch_signatures(factory())]
    trust = kind_trust(table, sigs, "the zoo")
    by_kind = {k.kind: k for k in trust.kinds}
    for kind in ("channel split", "concat", "channel shuffle", "grouped pointwise", "max pool"):
        assert by_kind[kind].price == "extrapolated"
        assert by_kind[kind].why == "no measurement of this kind"
        assert kind in trust.unmeasured
    assert by_kind["depthwise"].evidence is not None and by_kind["depthwise"].evidence.n > 300
    assert by_kind["slice"].price == "not priced"
    # A block of published shapes (ReLU, no SE, in the measured widths and sides) is fitted.
    inside = OpSignature("mbconv", 56, 56, 48, 48, expansion=4, kernel=5, act="relu")
    fitted = {k.kind: k.price for k in kind_trust(table, [inside], "one block").kinds if k.priced}
    assert set(fitted.values()) == {"fitted"}
    assert set(fitted) == {"pointwise", "depthwise", "relu", "shortcut add"}


def test_a_measured_table_prices_its_own_operators_as_measured_and_cross_validates() -> None:
    table = load_table("x86_64")
    evidence = table_evidence(table)
    assert evidence.kinds["grouped pointwise"].n > 1000
    assert evidence.kinds["depthwise"].held_out_mape_pct is not None
    # Stems and SqueezeNet's 3x3 expands: enough full convolutions to hold some out.
    assert evidence.kinds["conv kxk"].n > 10
    assert evidence.kinds["conv kxk"].held_out_mape_pct is not None
    trust = kind_trust(table, load_space("mobile").signatures(), "mobile", evidence=evidence)
    prices = {k.kind: k.price for k in trust.kinds if k.priced}
    assert prices["depthwise"] == prices["grouped pointwise"] == "measured"
    # Every operator of the families space is timed, the shuffle-only block's grouped k x k
    # convolutions and channel aggregations included: nothing there is left to a model.
    families = kind_trust(table, load_space("families").signatures(), "families", evidence=evidence)
    assert families.unmeasured == []
    family_prices = {k.kind: k.price for k in families.kinds if k.priced}
    assert {"channel max", "channel mean", "grouped conv kxk", "channel split"} <= set(
        family_prices
    )
    assert set(family_prices.values()) == {"measured"}


def test_validation_reports_each_kind_with_the_error_of_the_networks_that_contain_it() -> None:
    table = load_table("armv8")
    rows = [
        Row("shufflenet", "zoo", ZOO["shufflenet_v2_x1_0"]().to_string(), 10.0, measured_ms=12.5),
        Row("mobilenet", "zoo", ZOO["mobilenet_v2"]().to_string(), 9.5, measured_ms=10.0),
        Row("unpriced", "zoo", ZOO["mobilenet_v2"]().to_string(), None),
    ]
    report = ValidationReport(
        "armv8", "t", rows, settings={"input": [3, 224, 224], "num_classes": 1000}
    ).with_trust(table)
    by_kind = {k.kind: k for k in report.trust.kinds}
    assert (by_kind["channel split"].networks, by_kind["channel split"].network_mape_pct) == (
        1,
        20.0,
    )
    assert (by_kind["depthwise"].networks, by_kind["depthwise"].network_mape_pct) == (2, 12.5)
    written = json.loads(json.dumps(report.to_dict()))
    assert "channel split" in written["trust"]["unmeasured"]
    assert written["trust"]["identity"]["runtime"] == "not recorded"
    views = [
        part for part in trust_parts(report.trust, validated=True) if isinstance(part, TableView)
    ]
    assert views and views[0].columns[-2:] == ["networks", "their error"]


def test_lut_show_prints_what_the_table_is_and_its_kinds(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NAS_TABLES_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = _run(["lut", "show", "armv8"], capsys)
    assert code == 0
    assert "runtime: not recorded" in out and "threads: not recorded" in out
    assert "stated error: 3.5%" in out and "no measurement behind:" in out
    code, out, _ = _run(["lut", "show", "x86_64", "--space", "families", "--json"], capsys)
    shown = json.loads(out)
    # Every operator of the families space is timed; the zoo networks `lut show` prices beside
    # it add MobileNetV2's ReLU6, which no table entry measures alone.
    assert code == 0 and shown["trust"]["unmeasured"] == ["relu6"]
    assert shown["trust"]["identity"]["runtime"] == "onnxruntime 1.31.1"
    code, _, err = _run(["lut", "show", "x86_64", "--space", "nowhere"], capsys)
    assert code == 2 and "unknown search space 'nowhere'" in err and err.count("\n") == 1


def test_every_shipped_table_reports_its_trust() -> None:
    for target, path in shipped_tables().items():
        trust = kind_trust(LatencyTable.load(path), load_space("tiny").signatures(), "tiny")
        assert trust.error is not None, f"{target} states no error"
        assert all(k.priced for k in trust.kinds if k.kind in ("depthwise", "pointwise"))


# ---- the search's line -------------------------------------------------------------------------


def _row(number: int, ms: float, accuracy: float, baseline: str | None = None) -> TrainedRow:
    return TrainedRow(
        number=number,
        accuracy=accuracy,
        latency_ms=ms,
        mflops=100.0,
        params=1,
        arch="a",
        baseline=baseline,
    )


def test_front_neighbours_closer_than_the_stated_error_are_named_in_one_line() -> None:
    meta = load_table("x86_64").metadata  # states 2.55%
    front = [_row(4, 10.0, 0.80), _row(9, 10.2, 0.81, "mobilenet_v2"), _row(2, 12.0, 0.83)]
    close = close_in_latency(front, meta, "x86_64")
    assert close is not None and [(a.number, b.number) for a, b in close.pairs] == [(4, 9)]
    line = close.line()
    assert "\n" not in line and "trial 4 and trial 9 (mobilenet_v2)" in line
    assert "10.00 vs 10.20 ms, 2.0%" in line and "x86_64's stated 2.5%" in line
    assert close_in_latency(front[1:], meta, "x86_64") is None  # 17.6% apart: resolved
    assert close_in_latency(front, None, "x86_64") is None  # no table record: nothing to say
    many = [_row(n, 10.0 + 0.01 * n, 0.5 + 0.01 * n) for n in range(8)]
    assert "and 3 more" in close_in_latency(many, meta.to_dict(), "x86_64").line()


def test_the_search_prints_the_line_under_its_front(capsys) -> None:
    from nas.commands.search import _print_result
    from nas.counts import StudyCounts
    from nas.search import SearchResult

    front = [_row(4, 10.0, 0.80), _row(9, 10.1, 0.81)]
    result = SearchResult(
        study_name="s",
        storage="sqlite://",
        out_dir=Path("results/s"),
        pareto=front,
        n_trained=2,
        n_infeasible=0,
        n_failed=0,
        wall_seconds=1.0,
        counts=StudyCounts(),
        close_in_latency=close_in_latency(front, load_table("armv8").metadata, "armv8"),
    )
    _print_result(result)
    out = capsys.readouterr().out
    assert "latency order within the table's error: trial 4 and trial 9" in " ".join(out.split())


def test_report_md_writes_the_line_under_its_front() -> None:
    from nas.counts import StudyCounts
    from nas.reporting.data import ReportData
    from nas.reporting.summary import _front_section
    from nas.study_attrs import DatasetInfo

    front = [_row(4, 10.0, 0.80), _row(9, 10.1, 0.81)]
    data = ReportData(
        study_name="s",
        storage="sqlite://",
        config={},
        dataset=DatasetInfo(),
        target="armv8",
        counts=StudyCounts(),
        trained=front,
        front=front,
        mflops_front=front,
        zoo=[],
        close_in_latency=close_in_latency(front, load_table("armv8").metadata, "armv8"),
    )
    text = "\n".join(_front_section(data))
    assert "latency order within the table's error: trial 4 and trial 9" in text
