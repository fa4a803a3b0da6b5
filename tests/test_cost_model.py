"""The ARM cost model and the shipped ``armv8`` table: parsing, pricing, round trips, honesty."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import nas.evaluators.latency
from nas.errors import InputError
from nas.evaluators.latency.arm_data import (
    NOTE10,
    PIXEL1,
    default_data_dir,
    load_note10,
    load_pixel1,
    parse_key,
)
from nas.evaluators.latency.cost_model import (
    RUNTIME_EXCESS,
    SEPARATE,
    TERM_NAMES,
    OpCostModel,
    cross_validate,
    fit_cost_model,
    op_work,
    pooled_mape,
)
from nas.search_spaces.signatures import OpSignature
from nas.search_spaces.space import load_space

TABLE = Path(nas.evaluators.latency.__file__).parent / "tables" / "armv8.json"
DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / NOTE10).is_dir(), reason=f"published ARM tables not found at {DATA}"
)


@pytest.fixture(scope="module")
def table() -> dict:
    return json.loads(TABLE.read_text())


@pytest.fixture(scope="module")
def model(table: dict) -> OpCostModel:
    return OpCostModel.from_dict(table["cost_model"])


@pytest.fixture(scope="module")
def note10() -> list:
    return load_note10()


# ---- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, expected",
    [
        (
            "expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:5-stride:2-idskip:0-se:0"
            "-hs:0",
            OpSignature("mbconv", 112, 112, 24, 32, stride=2, expansion=6.0, kernel=5, act="relu"),
        ),
        (
            "expanded_conv-input:10x10x136-output:10x10x136-expand:408-kernel:3-stride:1-idskip:1-se:1"
            "-hs:1",
            OpSignature(
                "mbconv",
                10,
                10,
                136,
                136,
                stride=1,
                expansion=3.0,
                kernel=3,
                se_ratio=0.25,
                act="hswish",
            ),
        ),
        (
            "expanded_conv-input:80x80x24-output:80x80x24-expand:24-kernel:3-stride:1-idskip:1-se:0"
            "-hs:0",
            OpSignature("mbconv", 80, 80, 24, 24, expansion=1.0, kernel=3, act="relu"),
        ),
        (
            "Conv-input:160x160x3-output:80x80x24",
            OpSignature("stem", 160, 160, 3, 24, stride=2, kernel=3, act="hswish"),
        ),
        (
            "Conv_1-input:5x5x192-output:5x5x1152",
            OpSignature("head", 5, 5, 192, 1152, act="hswish"),
        ),
        (
            "Conv_2-input:1x1x1152-output:1x1x1536",
            OpSignature("fc", 1, 1, 1152, 1536, act="hswish"),
        ),
        ("AvgPool2D-input:5x5x1152-output:1x1x1152", OpSignature("pool", 5, 5, 1152, 1152)),
        ("Logits-input:1x1x1536-output:1000", OpSignature("classifier", 1, 1, 1536, 1000)),
    ],
)
def test_note10_keys_map_to_exact_signatures(key: str, expected: OpSignature) -> None:
    sigs, mid = parse_key(key, NOTE10)
    assert sigs == (expected,)
    if expected.kind == "mbconv":
        assert mid == expected.block.mid_channels(expected.in_c)


def test_pixel1_keys_use_expansion_ratios_relu6_and_split_logits() -> None:
    sigs, mid = parse_key(
        "expanded_conv-input:28x28x40-output:14x14x80-expand:6-kernel:7-stride:2-idskip:0", PIXEL1
    )
    assert sigs == (
        OpSignature("mbconv", 28, 28, 40, 80, stride=2, expansion=6.0, kernel=7, act="relu6"),
    )
    assert mid == 240
    sigs, _ = parse_key("Logits-input:7x7x1280-output:1000", PIXEL1)
    assert sigs == (
        OpSignature("pool", 7, 7, 1280, 1280),
        OpSignature("classifier", 1, 1, 1280, 1000),
    )


@pytest.mark.parametrize(
    "key",
    [
        "expanded_conv-input:10x10x136-output:10x10x136-expand:408-kernel:3-stride:1-idskip:0-se:0"
        "-hs:0",  # a shortcut the shapes imply, denied
        "expanded_conv-input:10x10x136-output:4x4x136-expand:408-kernel:3-stride:2-idskip:0-se:0"
        "-hs:0",  # 10 at stride 2 is 5, not 4
        "Softmax-input:1x1x1000-output:1000",
        "not a key",
    ],
)
def test_malformed_published_keys_are_input_errors(key: str) -> None:
    with pytest.raises(InputError):
        parse_key(key, NOTE10)


@needs_data
def test_every_published_entry_parses_and_reproduces_its_middle_width(note10: list) -> None:
    pixel1 = load_pixel1()
    assert len(note10) == 4 * 96 and len(pixel1) == 72
    blocks = [s for s in note10 + pixel1 if s.kind == "mbconv"]
    assert all(s.sigs[0].block.mid_channels(s.sigs[0].in_c) == s.mid_c for s in blocks)


# ---- pricing ---------------------------------------------------------------------------------


def _variety() -> list[OpSignature]:
    """Every kind, with the choices no publication measured: 2x2 kernels, groups, swish."""
    sigs = [
        OpSignature("stem", 224, 224, 3, 16, stride=2, kernel=3, act="hswish"),
        OpSignature("stem", 224, 224, 3, 16, stride=2, kernel=2, act="relu"),
        OpSignature("head", 7, 7, 160, 960, act="hswish"),
        OpSignature("pool", 7, 7, 960, 960),
        OpSignature("fc", 1, 1, 960, 1280, act="swish"),
        OpSignature("classifier", 1, 1, 1280, 1000),
    ]
    for kernel in (2, 3, 5, 7):
        for groups in (1, 2, 4):
            for stride in (1, 2):
                sigs.append(
                    OpSignature(
                        "mbconv",
                        56,
                        56,
                        32,
                        32 if stride == 1 else 48,
                        stride=stride,
                        expansion=4,
                        kernel=kernel,
                        groups=groups,
                        se_ratio=0.25,
                        act="hswish",
                    )
                )
    return sigs


@pytest.mark.parametrize("sig", _variety(), ids=lambda sig: sig.key)
def test_every_kind_and_choice_gets_a_positive_finite_price(
    model: OpCostModel, sig: OpSignature
) -> None:
    ms = model.predict_ms(sig)
    assert math.isfinite(ms) and ms > 0
    assert sum(model.breakdown(sig).values()) == pytest.approx(ms)


def test_work_counts_the_same_macs_as_fvcore_pricing() -> None:
    from nas.evaluators.flops import op_macs

    for sig in load_space("survey").signatures()[::7] + _variety():
        work = op_work(sig)
        macs = (
            sum(
                work.get(name, 0.0)
                for name in (
                    "full_conv_macs",
                    "pointwise_macs",
                    "depthwise_s1_macs",
                    "depthwise_s2_macs",
                )
            )
            + work.get("linear_weight_bytes", 0.0) / 4
        )
        assert macs == pytest.approx(op_macs(sig)), sig.key


@pytest.mark.parametrize(
    "field, values",
    [
        ("expansion", (3.0, 4.0, 6.0)),
        ("kernel", (3, 5, 7)),
        ("out_c", (32, 40, 48, 64)),
        ("in_h", (14, 28, 56, 112)),
        ("se_ratio", (0.0, 0.25)),
    ],
)
def test_more_work_of_the_same_kind_is_never_cheaper(
    model: OpCostModel, field: str, values: tuple
) -> None:
    for groups in (1, 2):
        for stride in (1, 2):
            # 24 -> 32+ channels: no shortcut appears or disappears along the way.
            base = OpSignature(
                "mbconv",
                28,
                28,
                24,
                32,
                stride=stride,
                expansion=4,
                kernel=3,
                groups=groups,
                act="relu",
            )
            prices = []
            for value in values:
                sig = replace(base, **{field: value})
                if field == "in_h":
                    sig = replace(sig, in_w=value)
                prices.append(model.predict_ms(sig))
            assert prices == sorted(prices), (field, groups, stride, prices)
    assert model.predict_ms(OpSignature("head", 7, 7, 160, 1280, act="hswish")) >= model.predict_ms(
        OpSignature("head", 7, 7, 160, 960, act="hswish")
    )


def test_even_kernels_save_taps_but_pay_for_their_padding_copy(model: OpCostModel) -> None:
    """The builder pads 2x2 kernels explicitly, so the copy is priced; the taps still shrink."""
    two, three = (
        OpSignature("mbconv", 56, 56, 24, 24, expansion=4, kernel=k, act="relu") for k in (2, 3)
    )
    assert op_work(two)["depthwise_s1_macs"] < op_work(three)["depthwise_s1_macs"]
    assert op_work(two)["operator"] == op_work(three)["operator"] + 1
    assert op_work(two)["activation_bytes"] > op_work(three)["activation_bytes"]


def test_depthwise_taps_cost_more_once_the_input_leaves_the_cache(model: OpCostModel) -> None:
    small = OpSignature("mbconv", 14, 14, 32, 32, expansion=4, kernel=3, act="relu")
    large = replace(small, in_h=112, in_w=112)
    assert "depthwise_spill_macs" not in model.breakdown(small)
    assert model.breakdown(large)["depthwise_spill_macs"] > 0


def test_round_trip_through_json_predicts_identically(model: OpCostModel) -> None:
    again = OpCostModel.from_dict(json.loads(json.dumps(model.to_dict())))
    for sig in _variety():
        assert again.predict_ms(sig) == model.predict_ms(sig)
    assert again.coefficients == model.coefficients and again.device == model.device
    assert again.cache_bytes == model.cache_bytes


@pytest.mark.parametrize(
    "broken",
    [
        None,
        {},
        {"coefficients": {"operator": 1.0}},
        {"coefficients": {name: -1.0 for name in TERM_NAMES}},
        {"coefficients": {name: 1.0 for name in TERM_NAMES}, "format": 99},
        {"coefficients": {name: 1.0 for name in TERM_NAMES}, "cache_bytes": 0},
        {"coefficients": {name: 1.0 for name in TERM_NAMES}, "accounting": "fastest"},
    ],
)
def test_malformed_cost_models_are_input_errors(broken: object) -> None:
    with pytest.raises(InputError):
        OpCostModel.from_dict(broken)


def test_fit_recovers_rates_that_generated_the_data() -> None:
    """With exact synthetic timings the fit must find the generating rates again."""
    truth = OpCostModel({name: 0.0 for name in TERM_NAMES})
    rates = dict(
        truth.coefficients,
        operator=2e-3,
        pointwise_macs=4e-8,
        depthwise_s1_macs=2e-7,
        depthwise_s2_macs=3e-7,
        activation_bytes=7e-8,
        hswish_elements=1.5e-6,
        add_elements=1e-6,
        full_conv_macs=5e-8,
        linear_weight_bytes=1e-7,
        pool_elements=3e-7,
        se_elements=1.2e-6,
    )
    truth = OpCostModel(rates)
    sigs = load_space("mobile").signatures()[::5]
    fitted = fit_cost_model([(sig, truth.predict_ms(sig)) for sig in sigs])
    for sig in sigs[::10]:
        assert fitted.predict_ms(sig) == pytest.approx(truth.predict_ms(sig), rel=1e-4)


# ---- honesty: held-out error -----------------------------------------------------------------


@needs_data
def test_held_out_resolution_error_stays_within_what_was_measured(note10: list) -> None:
    """Fit on three resolutions, predict the fourth; the build measured 2.1-3.4% (pooled 2.6%)."""
    folds = cross_validate(
        [(s.op, s.ms) for s in note10],
        [s.resolution for s in note10],
        mids=[s.mid_c for s in note10],
    )
    assert [fold.group for fold in folds] == [160, 176, 192, 208]
    assert all(fold.mape < 5.0 for fold in folds), [fold.mape for fold in folds]
    assert pooled_mape(folds) < 4.0


@needs_data
def test_held_out_block_shape_error_stays_within_what_was_measured(note10: list) -> None:
    """Hold out every block of one shape across all resolutions; the build measured 3.5%."""
    blocks = [s for s in note10 if s.kind == "mbconv"]
    others = [s for s in note10 if s.kind != "mbconv"]
    errors = []
    for shape in sorted({(s.sigs[0].in_c, s.sigs[0].out_c, s.sigs[0].stride) for s in blocks}):
        held = [s for s in blocks if (s.sigs[0].in_c, s.sigs[0].out_c, s.sigs[0].stride) == shape]
        kept = [s for s in blocks if s not in held] + others
        fitted = fit_cost_model([(s.op, s.ms) for s in kept], mids=[s.mid_c for s in kept])
        errors += [abs(fitted.predict_ms(s.op, s.mid_c) - s.ms) / s.ms for s in held]
    assert np.mean(errors) * 100 < 5.5


# ---- the shipped table -----------------------------------------------------------------------


def test_shipped_table_prices_every_mobile_signature(table: dict, model: OpCostModel) -> None:
    assert table["format"] == 1 and table["metadata"]["target"] == "armv8"
    assert table["metadata"]["input_size"] == [3, 224, 224]
    assert TABLE.stat().st_size < 1_000_000
    entries = table["entries"]
    for name in ("mobile", "tiny", "survey"):
        missing = [sig.key for sig in load_space(name).signatures() if sig.key not in entries]
        assert not missing, (name, missing[:3])
    for key, entry in entries.items():
        assert entry["source"] in ("measured", "model")
        assert entry["ms"] > 0 and entry["std"] >= 0


def test_model_entries_are_the_cost_model_of_the_same_file(table: dict, model: OpCostModel) -> None:
    sigs = {sig.key: sig for sig in load_space("mobile").signatures()}
    for key, sig in list(sigs.items())[::13]:
        entry = table["entries"][key]
        if entry["source"] == "model":
            assert entry["ms"] == pytest.approx(model.predict_ms(sig), rel=1e-3)


@needs_data
def test_measured_entries_are_the_published_note10_values(table: dict, note10: list) -> None:
    published = {s.sigs[0].key: s for s in note10 if len(s.sigs) == 1}
    for key, entry in table["entries"].items():
        if entry["source"] == "measured":
            assert entry["ms"] == pytest.approx(published[key].ms, rel=1e-3)
            assert entry["std"] == pytest.approx(published[key].std, rel=1e-2)
        else:
            assert key not in published


# ---- the armv8-xnnpack table: h-swish and SE as XNNPACK runs them ----------------------------

XNNPACK_TABLE = TABLE.with_name("armv8-xnnpack.json")


@pytest.fixture(scope="module")
def xnnpack_table() -> dict:
    return json.loads(XNNPACK_TABLE.read_text())


def _se_hswish_block() -> OpSignature:
    return OpSignature(
        "mbconv", 40, 40, 28, 28, 1, kernel=5, expansion=6.0, se_ratio=0.25, act="hswish"
    )


def test_separate_accounting_adds_the_runtime_operators_and_keeps_the_rest() -> None:
    block = _se_hswish_block()
    fused, separate = op_work(block), op_work(block, accounting=SEPARATE)
    # Two h-swish passes (expand, depthwise) and four SE operators (pool, reduce, expand, mul).
    assert separate["operator"] - fused["operator"] == 6
    assert separate["activation_bytes"] > fused["activation_bytes"]
    assert separate["pool_elements"] > fused.get("pool_elements", 0.0)
    for name in ("pointwise_macs", "depthwise_s1_macs", "hswish_elements", "se_elements"):
        assert separate[name] == fused[name]
    plain = replace(block, se_ratio=0.0, act="relu")
    assert op_work(plain, accounting=SEPARATE) == op_work(plain)
    with pytest.raises(InputError, match="accounting"):
        op_work(block, accounting="fastest")


def test_pricing_without_terms_zeroes_them_and_says_so(model: OpCostModel) -> None:
    cheaper = model.priced_without(RUNTIME_EXCESS)
    assert all(cheaper.coefficients[name] == 0 for name in RUNTIME_EXCESS)
    assert cheaper.fit["priced_at_zero"] == sorted(RUNTIME_EXCESS)
    block = _se_hswish_block()
    assert cheaper.predict_ms(block) < model.predict_ms(block)
    plain = replace(block, se_ratio=0.0, act="relu")
    assert cheaper.predict_ms(plain) == model.predict_ms(plain)
    with pytest.raises(InputError, match="unknown"):
        model.priced_without(("warp_drive",))


def test_xnnpack_table_says_what_it_prices(xnnpack_table: dict) -> None:
    metadata, cost_model = xnnpack_table["metadata"], xnnpack_table["cost_model"]
    assert metadata["target"] == "armv8-xnnpack" and metadata["runtime"] == "XNNPACK"
    assert "h-swish and SE" in metadata["runtime_note"]
    assert cost_model["accounting"] == SEPARATE
    assert all(cost_model["coefficients"][name] == 0 for name in RUNTIME_EXCESS)
    again = OpCostModel.from_dict(json.loads(json.dumps(cost_model)))
    assert again.accounting == SEPARATE
    block = _se_hswish_block()
    assert again.predict_ms(block) == OpCostModel.from_dict(cost_model).predict_ms(block)


@needs_data
def test_xnnpack_table_is_the_note10_fit_under_separate_accounting(
    xnnpack_table: dict, note10: list
) -> None:
    fitted = fit_cost_model(
        [(s.op, s.ms) for s in note10],
        mids=[s.mid_c for s in note10],
        cache_bytes=xnnpack_table["cost_model"]["cache_bytes"],
        accounting=SEPARATE,
    ).priced_without(RUNTIME_EXCESS)
    shipped = OpCostModel.from_dict(xnnpack_table["cost_model"])
    for name in TERM_NAMES:
        assert shipped.coefficients[name] == pytest.approx(fitted.coefficients[name], rel=1e-9)
    sigs = {sig.key: sig for sig in load_space("mobile").signatures()}
    for key, sig in list(sigs.items())[::13]:
        assert xnnpack_table["entries"][key]["ms"] == pytest.approx(
            shipped.predict_ms(sig), rel=1e-3
        )


def test_xnnpack_table_cheapens_mobilenet_v3_and_leaves_v2() -> None:
    """What the table was built for: MobileNetV3's h-swish and SE no longer priced as the Note10
    runtime ran them (V3-Large over V2 measured at 0.69-0.93 on phones, armv8 says 0.94)."""
    from nas.evaluators.latency import load_table
    from nas.search_spaces.zoo import ZOO

    note10, xnnpack = load_table("armv8"), load_table("armv8-xnnpack")
    v2, v3 = ZOO["mobilenet_v2"](), ZOO["mobilenet_v3_large"]()

    def ratio(table: object) -> float:
        return table.predict(v3).total_ms / table.predict(v2).total_ms  # type: ignore[attr-defined]

    assert ratio(xnnpack) < 0.9 < ratio(note10)
    assert xnnpack.predict(v2).total_ms == pytest.approx(note10.predict(v2).total_ms, rel=0.01)
