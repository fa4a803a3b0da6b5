"""Genotype, builder and signatures over architectures sampled from the built-in spaces."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from strategies import archs, archs_with_params

from nas.errors import InputError
from nas.evaluators.flops import count_cost, estimate_cost
from nas.search_spaces.arch import Arch, Block, make_divisible
from nas.search_spaces.builder import build_model
from nas.search_spaces.footprint import count_params
from nas.search_spaces.signatures import arch_signatures
from nas.search_spaces.space import load_space

MOBILE = load_space("mobile")
SURVEY = load_space("survey")
MOBILE_KEYS = {sig.key for sig in MOBILE.signatures()}
SURVEY_KEYS = {sig.key for sig in SURVEY.signatures()}
SLOW = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(archs(MOBILE))
def test_json_and_string_round_trips_are_exact(arch: Arch) -> None:
    assert Arch.from_json(arch.to_json()) == arch
    assert Arch.from_string(arch.to_string()) == arch
    assert Arch.from_string(arch.to_string()).to_string() == arch.to_string()
    assert hash(Arch.from_json(arch.to_json())) == hash(arch)


@given(archs_with_params(MOBILE))
def test_params_of_inverts_sample(pair) -> None:
    arch, params = pair
    assert MOBILE.params_of(arch) == params


@given(archs(MOBILE))
def test_signatures_are_deterministic_and_enumerated_by_the_space(arch: Arch) -> None:
    first = [sig.key for sig in arch_signatures(arch)]
    assert first == [sig.key for sig in arch_signatures(Arch.from_string(arch.to_string()))]
    assert set(first) <= MOBILE_KEYS
    assert len(first) == 1 + len(arch.blocks) + 4  # stem, blocks, head conv, pool, fc, classifier


@given(archs(SURVEY))
def test_survey_space_signatures_are_enumerated(arch: Arch) -> None:
    assert {sig.key for sig in arch_signatures(arch)} <= SURVEY_KEYS


@SLOW
@given(archs(SURVEY))
def test_built_model_runs_and_matches_genotype_counts(arch: Arch) -> None:
    for shape, classes in (((3, 224, 224), 1000), ((3, 32, 32), 10), ((1, 28, 28), 10)):
        model = build_model(arch, shape, classes).eval()
        with torch.no_grad():
            out = model(torch.randn(2, *shape))
        assert out.shape == (2, classes)
        assert torch.isfinite(out).all()
        assert sum(p.numel() for p in model.parameters()) == count_params(arch, shape, classes)


@settings(max_examples=6, deadline=None)
@given(archs(SURVEY))
def test_fvcore_count_equals_signature_count(arch: Arch) -> None:
    counted, estimated = count_cost(arch), estimate_cost(arch)
    assert counted.params == estimated.params
    assert counted.mflops == pytest.approx(estimated.mflops, rel=1e-9)


@pytest.mark.parametrize("kernel", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 13])
def test_every_kernel_keeps_same_output_size(kernel: int, stride: int, size: int) -> None:
    arch = Arch.from_string(
        f"stem_c8_k3_s1_re:mb_e2_k{kernel}_s{stride}_c16_g2_se0.25_hs:head_c0_re_d0"
    )
    features = build_model(arch, (3, size, size), 10).features
    assert features(torch.randn(1, 3, size, size)).shape[-1] == -(-size // stride)


def test_grouped_block_shuffles_and_keeps_groups() -> None:
    arch = Arch.from_string("stem_c16_k3_s2_re:mb_e4_k3_s1_c16_g4_re:head_c0_re_d0")
    convs = [m for m in build_model(arch).modules() if isinstance(m, torch.nn.Conv2d)]
    # stem, grouped expansion, depthwise, grouped projection
    assert [c.groups for c in convs] == [1, 4, 64, 4]
    assert any(type(m).__name__ == "ChannelShuffle" for m in build_model(arch).modules())


def test_expansion_one_omits_the_expansion_conv() -> None:
    arch = Arch.from_string("stem_c16_k3_s2_re:mb_e1_k3_s1_c16_re:head_c0_re_d0")
    convs = [m for m in build_model(arch).features[1].modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.groups for c in convs] == [16, 1]


def test_make_divisible_matches_reference_rounding() -> None:
    assert make_divisible(18) == 24  # 16 would lose more than 10%
    assert make_divisible(183.99999999999997) == 184
    assert make_divisible(4) == 8


@pytest.mark.parametrize(
    "text, bad",
    [
        ("stem_c16_k3_s2_hs:mb_e4_k3_s2_c24_rx:head_c960_hs", "'mb_e4_k3_s2_c24_rx'"),
        ("stem_c16_k3_s2_hs:mb_e4_k9_s2_c24_re:head_c960_hs", "'mb_e4_k9_s2_c24_re'"),
        ("stem_c16_k3_s2_hs:mb_e4_k3_s2_re:head_c960_hs", "lacks field(s) c"),
        ("stem_c16_k3_s2_hs:xx_e4_k3_s2_c24_re:head_c960_hs", "'xx_e4_k3_s2_c24_re'"),
        ("stem_c16_k3_s2_hs:mb_e4_k3_s2_c24_g3_re:head_c960_hs", "power of two"),
        ("stem_c16_k3_s2_hs:mb_eX_k3_s2_c24_re:head_c960_hs", "'eX'"),
        ("stem_c16_k3_s2:mb_e4_k3_s2_c24_re:head_c960_hs", "lacks an activation"),
        ("stem_c16_k3_s2_hs:head_c960_hs", "needs a stem, at least one stage"),
        ("stem_c16_k3_s2_hs:mb_e4_k3_s2_c20_g8_re:head_c960_hs", "not divisible by groups=8"),
    ],
)
def test_malformed_arch_strings_name_the_bad_token(text: str, bad: str) -> None:
    with pytest.raises(InputError, match=None) as raised:
        Arch.from_string(text)
    assert bad in str(raised.value)


def test_malformed_json_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        Arch.from_json("{")
    with pytest.raises(InputError, match="lacks head"):
        Arch.from_json('{"stem": {"channels": 8}, "stages": []}')
    with pytest.raises(InputError, match="unexpected keyword"):
        Arch.from_dict({"stem": {"channels": 8, "colour": 1}, "stages": [], "head": {}})


def test_block_validation() -> None:
    with pytest.raises(InputError, match="stride"):
        Block(6, 3, 3, 24)
    with pytest.raises(InputError, match="se_ratio"):
        Block(6, 3, 1, 24, se_ratio=1.5)
    with pytest.raises(InputError, match="act"):
        Block(6, 3, 1, 24, act="gelu")
