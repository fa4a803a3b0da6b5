"""A latency table's metadata as one typed record: every table file reads into it and writes
back from it unchanged, whichever version of nas wrote the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas.errors import InputError
from nas.evaluators.latency.metadata import Adaptation, Calibration, TableMetadata
from nas.evaluators.latency.reports import TableSummary, list_tables
from nas.evaluators.latency.table import LatencyTable, shipped_tables
from nas.search_spaces.signatures import arch_signatures
from nas.search_spaces.space import load_space

EARLIER = {
    # As an earlier nas wrote a built table: no classes, overhead or calibration recorded, a
    # cache size the machine did not report, and a field this version has never heard of.
    "target": "pi",
    "input_size": 160,
    "method": "nas lut build (an earlier version)",
    "device": "Raspberry Pi 4",
    "l2_cache_bytes": None,
    "runtime": "onnxruntime",
    "threads": 4,
    "space": "mobile,tiny",
    "thermal_state": {"throttled": False, "governor": "performance"},
}


@pytest.mark.parametrize("target", sorted(shipped_tables()))
def test_every_shipped_table_round_trips_through_the_record_unchanged(target: str) -> None:
    path = shipped_tables()[target]
    raw = json.loads(path.read_text())["metadata"]
    record = TableMetadata.read(raw)
    assert json.dumps(record.to_dict()) == json.dumps(raw)  # values and key order alike
    assert LatencyTable.load(path).to_dict()["metadata"] == raw
    assert not record.others, "a field of a shipped table has no typed attribute"


def test_the_shipped_tables_read_as_attributes() -> None:
    x86 = TableMetadata.read(json.loads(shipped_tables()["x86_64"].read_text())["metadata"])
    assert (x86.runtime, x86.threads, x86.classes, x86.input_hw) == (
        "onnxruntime",
        1,
        1000,
        (224, 224),
    )
    assert isinstance(x86.calibration, Calibration) and x86.calibration.networks == 30
    assert x86.cold_ms == x86.cold_ms_per_mb > 0 and x86.probe_overhead_ms == x86.overhead_ms
    armv8 = TableMetadata.read(json.loads(shipped_tables()["armv8"].read_text())["metadata"])
    assert armv8.input_size == (3, 224, 224) and armv8.input_hw == (224, 224)
    assert armv8.is_unknown("runtime") and armv8.is_unknown("threads")  # null: not published
    assert not armv8.is_unknown("clock")  # absent: the file does not say
    assert armv8.first_space == "mobile" and armv8.spaces == ("mobile", "tiny", "survey")


def test_a_table_an_earlier_version_wrote_loads_prices_and_keeps_what_it_said(
    tmp_path: Path,
) -> None:
    space = load_space("mobile")
    arch = space.cheapest()
    sigs = space.signatures((3, 160, 160))
    entries = {sig.key: {"ms": 0.5, "std": 0.01, "source": "measured"} for sig in sigs}
    path = tmp_path / "pi.json"
    path.write_text(json.dumps({"format": 1, "metadata": EARLIER, "entries": entries}))
    table = LatencyTable.load(path)
    meta = table.metadata
    assert meta.classes == 1000 and table.per_op_overhead_ms == 0 and table.cold_ms_per_mb == 0
    assert meta.calibration is None and meta.l2_cache_bytes is None
    assert meta.space_names == ["mobile", "tiny"] and meta.first_space == "mobile"
    assert meta.others == {"thermal_state": EARLIER["thermal_state"]}
    operators = len(arch_signatures(arch, (3, 160, 160)))
    assert table.predict(arch, (3, 160, 160)).total_ms == pytest.approx(0.5 * operators)
    table.metadata = meta.replace(date="2027-01-01")
    table.save(path)
    written = json.loads(path.read_text())["metadata"]
    assert written == {**EARLIER, "date": "2027-01-01"}  # the null and the unknown field stay


def test_a_writer_says_unknown_with_none_and_leaves_out_what_it_does_not_give() -> None:
    made = TableMetadata.create(target="t", input_size=64, method="m", serial=None)
    assert made.to_dict() == {"target": "t", "input_size": 64, "method": "m", "serial": None}
    assert "serial" not in made.replace(serial=None).to_dict()  # replaced by None: left out
    progress = Adaptation.create(status="measuring", seed=0, rounds=5)
    filled = made.replace(adaptation=progress, cold_ms_per_mb=0.0)
    assert filled.to_dict()["adaptation"] == {"status": "measuring", "seed": 0, "rounds": 5}
    assert filled.to_dict()["cold_ms_per_mb"] == 0.0  # a zero is said, not dropped


def test_a_resumed_table_keeps_its_own_fields_and_gains_the_new_ones() -> None:
    recorded = TableMetadata.read({**EARLIER, "threads": 2})
    now = TableMetadata.create(
        target="pi", input_size=160, method="now", threads=4, num_classes=1000, clock="wall"
    )
    resumed = recorded.with_defaults(now)
    assert (resumed.threads, resumed.method, resumed.num_classes) == (2, EARLIER["method"], 1000)
    assert list(resumed.to_dict())[: len(EARLIER)] == list(EARLIER)  # the file's order first
    over = recorded.overlay(now)
    assert (over.threads, over.method, over.clock, over.device) == (
        4,
        "now",
        "wall",
        "Raspberry Pi 4",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_size": [3, 224]}, "'input_size' must be a positive integer"),
        ({"per_op_overhead_ms": -1.0}, "'per_op_overhead_ms' is -1.0"),
        ({"cold_ms_per_mb": True}, "'cold_ms_per_mb' is True"),
    ],
)
def test_metadata_pricing_cannot_trust_is_refused(change: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        TableMetadata.read({**EARLIER, **change}, where="latency table pi.json")
    with pytest.raises(InputError, match="metadata lacks 'method'"):
        TableMetadata.read({k: v for k, v in EARLIER.items() if k != "method"})


def test_reports_read_the_record(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NAS_TABLES_DIR", str(tmp_path))
    listings = {listing.target: listing for listing in list_tables()}
    assert listings["armv8"].runtime == "None"  # the table says it does not know
    assert listings["armv8"].input_size == [3, 224, 224]
    assert listings["x86_64"].runtime.startswith("onnxruntime ")
    table = LatencyTable.load(shipped_tables()["x86_64"])
    summary = TableSummary.of(table)
    assert summary.to_dict()["metadata"] == json.loads(table.path.read_text())["metadata"]
    assert summary.counts["measured"] + summary.counts["model"] == len(table.entries)
