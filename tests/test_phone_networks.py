"""The candidate cost-model accounting and the whole-network benchmark's scoring.

The candidate must leave every current price alone (``current`` is the shipped accounting, and
fitting it reproduces the shipped fit), and must add exactly the operators a phone runtime runs
for h-swish and squeeze-and-excitation. The benchmark's arithmetic (one ratio per device, the
scores) is checked on numbers whose answer is known.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from nas.errors import InputError
from nas.evaluators.latency.arm_data import load_note10
from nas.evaluators.latency.cost_candidate import (
    CURRENT,
    NOTE10_EXCESS,
    SEPARATE_OPS,
    SEPARATE_OPS_ONLY,
    candidate_work,
    fit_candidate,
)
from nas.evaluators.latency.cost_model import fit_cost_model, op_work
from nas.search_spaces.blocks.mbconv import MBCONV
from nas.search_spaces.signatures import OpSignature, arch_signatures
from nas.search_spaces.zoo import mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import phone_networks  # noqa: E402

HSWISH_BLOCK = OpSignature(MBCONV, 14, 14, 80, 80, stride=1, expansion=6.0, kernel=3, act="hswish")
SE_BLOCK = OpSignature(
    MBCONV, 28, 28, 40, 40, stride=1, expansion=3.0, kernel=5, se_ratio=0.25, act="relu"
)
PLAIN_BLOCK = OpSignature(MBCONV, 28, 28, 32, 32, stride=1, expansion=6.0, kernel=3, act="relu6")


def test_current_accounting_is_the_shipped_one():
    for sig in arch_signatures(mobilenet_v3_large()) + arch_signatures(mobilenet_v2()):
        assert candidate_work(sig) == op_work(sig)


def test_current_fit_reproduces_the_shipped_fit():
    note10 = [s for s in load_note10() if s.resolution == 176]
    samples = [(s.op, s.ms) for s in note10]
    mids = [s.mid_c for s in note10]
    shipped = fit_cost_model(samples, mids=mids)
    mine = fit_candidate(samples, mids, variant=CURRENT)
    for name, rate in shipped.coefficients.items():
        assert mine.coefficients[name] == pytest.approx(rate, rel=1e-9, abs=1e-15)


def test_separate_ops_add_the_runtime_operators():
    for sig in (HSWISH_BLOCK, SE_BLOCK, PLAIN_BLOCK):
        before, after = op_work(sig), candidate_work(sig, variant=SEPARATE_OPS)
        mid = sig.block.mid_channels(sig.in_c)
        if sig is HSWISH_BLOCK:
            # Two h-swish layers (after the expansion and after the depthwise), one pass each.
            hswish = 2 * 14 * 14 * mid
            assert after["operator"] - before["operator"] == 2
            assert after["activation_bytes"] - before["activation_bytes"] == 4 * 2 * hswish
        elif sig is SE_BLOCK:
            gated = 28 * 28 * mid
            assert after["operator"] - before["operator"] == 4
            assert after["pool_elements"] - before.get("pool_elements", 0.0) == gated
            assert after["activation_bytes"] - before["activation_bytes"] == 4 * 2 * gated
        else:
            assert after == before
        # The Note10 excess terms stay under separate_ops and go under separate_ops_only.
        for name in NOTE10_EXCESS:
            assert after.get(name, 0.0) == before.get(name, 0.0)
            assert name not in candidate_work(sig, variant=SEPARATE_OPS_ONLY)


def test_pricing_without_the_excess_only_lowers_hswish_and_se_networks():
    note10 = load_note10()
    model = fit_candidate(
        [(s.op, s.ms) for s in note10], [s.mid_c for s in note10], variant=SEPARATE_OPS
    )
    without = model.without(NOTE10_EXCESS)
    assert all(without.coefficients[name] == 0.0 for name in NOTE10_EXCESS)
    v2 = arch_signatures(mobilenet_v2())
    assert sum(map(without.predict_ms, v2)) == pytest.approx(sum(map(model.predict_ms, v2)))
    v3 = arch_signatures(mobilenet_v3_small())
    assert sum(map(without.predict_ms, v3)) < sum(map(model.predict_ms, v3))


def test_unknown_variant_is_refused():
    with pytest.raises(InputError, match="unknown cost-model variant"):
        candidate_work(PLAIN_BLOCK, variant="faster")


def test_one_ratio_per_device_and_scores():
    measured = np.array([10.0, 20.0, 40.0])
    predicted = measured / 2.5
    assert phone_networks.fitted_ratio(measured, predicted) == pytest.approx(2.5)
    figures = phone_networks.scores([10.0, 20.0, 40.0], [11.0, 18.0, 40.0])
    assert figures["n"] == 3
    assert figures["mape_pct"] == pytest.approx((10 + 10 + 0) / 3)
    assert figures["within_pct"] == pytest.approx(100.0)
    assert figures["kendall_tau"] == pytest.approx(1.0)
    assert figures["worst_pct"] == pytest.approx(10.0)


def test_published_networks_build_as_described():
    a1 = phone_networks.mnasnet_a1(1.0)
    blocks = list(a1.blocks)
    assert len(blocks) == 16
    assert sum(1 for b in blocks if b.se_ratio) == 8
    assert a1.head.conv_channels == 1280
    # MnasNet-A1 keeps its 1280-wide head at every depth multiplier.
    assert phone_networks.mnasnet_a1(0.35).head.conv_channels == 1280
    plain = phone_networks.minimalistic(mobilenet_v3_large())
    assert all(b.se_ratio == 0 and b.act == "relu" and b.kernel == 3 for b in plain.blocks)
    for source in phone_networks.SOURCES:
        assert source.role in ("development", "check")
        for timings in source.devices.values():
            for network, width, size, ms in timings:
                assert network in phone_networks.NETWORKS
                assert size >= 96 and ms > 0 and not math.isnan(ms)
                phone_networks.build(network, width)
