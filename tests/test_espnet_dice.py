"""ESPNetV2's EESP unit as a block kind: the authors' unit (sacmehta/ESPNetv2), counted from its
layers as fvcore counts the built module, priced by every shipped table with its unmeasured
kinds named as such, sampled by a space, and exported to ONNX.

The reference is written out below as the authors' code computes it (PReLU, which `nas` does
not offer, replaced by ReLU; the project's batch-norm epsilon), and the built unit must be that
unit: the same parameters in the same order and, with those weights, the same outputs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from torch import nn

from nas.cli import main
from nas.errors import InputError
from nas.evaluators.flops import count_cost, estimate_cost, module_macs
from nas.evaluators.latency import load_table
from nas.evaluators.latency.cost_model import op_work
from nas.evaluators.latency.op_kinds import KINDS, kind_uses
from nas.evaluators.latency.table import feature_map_bytes
from nas.evaluators.latency.trust import kind_trust
from nas.export import ModelSpec, build, export
from nas.search_spaces.arch import Arch
from nas.search_spaces.blocks.eesp import EESPBlock, dilations
from nas.search_spaces.builder import build_model, build_op
from nas.search_spaces.footprint import activation_values, op_macs, op_params
from nas.search_spaces.layers import Branches, Conv, Pool
from nas.search_spaces.ops import op_layers
from nas.search_spaces.signatures import OpSignature, arch_signatures, block_signature
from nas.search_spaces.space import space_from_dict

BN_EPS = 1e-3  # the builder's batch norm (the reference keeps torch's default)

# ---- the authors' EESP and down-sampler (sacmehta/ESPNetv2, imagenet/Model.py) -----------------


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class _ReferenceEESP(nn.Module):
    """Reduce (grouped 1x1 + BN + act), K dilated depthwise 3x3 branches fused hierarchically,
    BN + act on their concatenation, grouped 1x1 + BN; the input added where the shapes match,
    then the activation, except inside the down-sampler ('avg'), which thresholds itself."""

    def __init__(self, n_in: int, n_out: int, stride: int, k: int, r_lim: int, avg: bool) -> None:
        super().__init__()
        n = n_out // k
        assert n * k == n_out
        self.proj = nn.Sequential(nn.Conv2d(n_in, n, 1, groups=k, bias=False), _bn(n), nn.ReLU())
        receptive_to_rate = {3: 1, 5: 2, 7: 3, 9: 4, 11: 5, 13: 6, 15: 7, 17: 8}
        sizes = sorted(3 + 2 * i if 3 + 2 * i <= r_lim else 3 for i in range(k))
        self.rates = [receptive_to_rate[size] for size in sizes]
        self.branches = nn.ModuleList(
            nn.Conv2d(n, n, 3, stride, padding=rate, dilation=rate, groups=n, bias=False)
            for rate in self.rates
        )
        self.after_cat = nn.Sequential(_bn(n_out), nn.ReLU())
        self.expand = nn.Sequential(nn.Conv2d(n_out, n_out, 1, groups=k, bias=False), _bn(n_out))
        self.act = nn.ReLU()
        self.stride, self.avg = stride, avg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.proj(x)
        fused = [self.branches[0](reduced)]
        for branch in self.branches[1:]:
            fused.append(branch(reduced) + fused[-1])
        out = self.expand(self.after_cat(torch.cat(fused, 1)))
        if self.stride == 2 and self.avg:
            return out
        if out.shape == x.shape:
            out = out + x
        return self.act(out)


class _ReferenceDownSampler(nn.Module):
    """The strided unit next to a 3x3 stride-2 average pooling of its input, concatenated
    (pooled first), then the activation; without the input reinforcement."""

    def __init__(self, n_in: int, n_out: int, k: int, r_lim: int) -> None:
        super().__init__()
        self.eesp = _ReferenceEESP(n_in, n_out - n_in, 2, k, r_lim, avg=True)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(torch.cat([self.avg(x), self.eesp(x)], 1))


def _reference(block: EESPBlock, in_c: int) -> nn.Module:
    if block.stride == 2:
        return _ReferenceDownSampler(in_c, block.out_channels, block.branches, block.rf_limit)
    return _ReferenceEESP(in_c, block.out_channels, 1, block.branches, block.rf_limit, False)


def _sig(block: EESPBlock, height: int, width: int, in_c: int) -> OpSignature:
    return block_signature(block, height, width, in_c)


CASES = [
    _sig(EESPBlock(7, 1, 128), 28, 28, 128),  # ESPNetV2's level 3: residual
    _sig(EESPBlock(13, 2, 64), 56, 56, 32),  # its first down-sampler
    _sig(EESPBlock(5, 1, 96, branches=2, act="hswish"), 15, 13, 64),  # new width: no residual
    _sig(EESPBlock(9, 2, 80, branches=8), 15, 13, 16),  # odd sides, eight branches
    _sig(EESPBlock(3, 1, 24, branches=1, act="swish"), 7, 9, 24),  # one branch, rate 1
]


# ---- the arch string ---------------------------------------------------------------------------

TEXT = (
    "stem_c32_k3_s2_re:eesp_r13_s2_c64_re:eesp_r11_s2_c128_re,eesp_r9_s1_c128_re:"
    "eesp_b2_r5_s1_c96_hs:head_c256_re_d0.1"
)


def test_the_arch_string_names_branches_receptive_field_stride_and_width() -> None:
    arch = Arch.from_string(TEXT)
    assert arch.blocks[0] == EESPBlock(13, 2, 64)  # four branches when omitted
    assert arch.blocks[3] == EESPBlock(5, 1, 96, branches=2, act="hswish")
    assert arch.to_string() == TEXT
    assert Arch.from_json(arch.to_json()) == arch
    assert arch.to_dict()["stages"][0][0] == {
        "kind": "eesp",
        "rf_limit": 13,
        "stride": 2,
        "out_channels": 64,
        "branches": 4,
        "act": "relu",
    }
    sigs = arch_signatures(arch, (3, 224, 224))
    assert sigs[1].key == "eesp:112x112x32>64:b4:r13:s2:re"
    assert sigs[4].key == "eesp:28x28x128>96:b2:r5:s1:hs"
    assert sigs[1].block == arch.blocks[0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("eesp_r8_s1_c32_re", "rf_limit must be an odd integer from 3 to 17"),
        ("eesp_r19_s1_c32_re", "rf_limit must be an odd integer from 3 to 17"),
        ("eesp_b9_r7_s1_c32_re", "branches must be an integer from 1 to 8"),
        ("eesp_b0_r7_s1_c32_re", "branches must be an integer from 1 to 8"),
        ("eesp_r7_s3_c32_re", "eesp stride must be 1 or 2"),
        ("eesp_s1_c32_re", "lacks field"),
        ("eesp_r7_s1_c30_re", "channels 30 are not divisible by 4 branches"),
        ("eesp_r7_s2_c32_re", "must exceed its 32 input channels"),
        ("eesp_r7_s2_c54_re", "unit channels 22 are not divisible by 4 branches"),
        ("eesp_r7_s1_c24_re", "reduced channels 6 are not divisible by 4 branches"),
    ],
)
def test_bad_units_are_one_line_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as error:
        Arch.from_string(f"stem_c32_k3_s2_re:{text}:head_c64_re")
    assert "\n" not in str(error.value)


def test_dilation_rates_follow_the_receptive_field_limit_as_espnetv2_picks_them() -> None:
    # ESPNetV2's levels, K = 4: r_lim 13, 11, 9, 7, 5.
    assert [dilations(4, r) for r in (13, 11, 9, 7, 5)] == [
        (1, 2, 3, 4),
        (1, 2, 3, 4),
        (1, 2, 3, 4),
        (1, 1, 2, 3),
        (1, 1, 1, 2),
    ]
    assert dilations(8, 17) == (1, 2, 3, 4, 5, 6, 7, 8) and dilations(1, 17) == (1,)
    module = build_op(_sig(EESPBlock(5, 1, 64), 14, 14, 64))
    built = [m.dilation[0] for m in module.modules() if isinstance(m, nn.Conv2d) and m.groups > 4]
    assert built == [1, 1, 1, 2]


# ---- the built unit is the authors' unit ------------------------------------------------------


@pytest.mark.parametrize("sig", CASES, ids=str)
def test_the_built_unit_computes_what_the_reference_computes(sig: OpSignature) -> None:
    block = sig.block
    assert isinstance(block, EESPBlock)
    if block.act != "relu":
        block = EESPBlock(block.rf_limit, block.stride, block.out_channels, block.branches)
        sig = _sig(block, sig.in_h, sig.in_w, sig.in_c)
    torch.manual_seed(0)
    ours, theirs = build_op(sig).eval(), _reference(block, sig.in_c).eval()
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert [v.shape for v in mine.values()] == [v.shape for v in reference.values()]
    with torch.no_grad():
        for name, value in mine.items():  # random statistics, so batch norm is not a no-op
            if value.is_floating_point():
                value.copy_(
                    torch.rand_like(value) + 0.5 if "var" in name else torch.randn_like(value)
                )
        theirs.load_state_dict(dict(zip(reference, mine.values())))
        x = torch.randn(2, sig.in_c, sig.in_h, sig.in_w)
        out = ours(x)
        assert out.shape == (2, sig.out_c, sig.out_h, sig.out_w)
        assert torch.allclose(out, theirs(x), atol=1e-5, rtol=1e-4)


# ---- counts and prices -------------------------------------------------------------------------


@pytest.mark.parametrize("sig", CASES, ids=str)
def test_layers_count_what_the_built_module_holds_and_computes(sig: OpSignature) -> None:
    module = build_op(sig).eval()
    assert op_params(sig) == sum(p.numel() for p in module.parameters())
    assert op_macs(sig) == module_macs(module, (sig.in_c, sig.in_h, sig.in_w))
    assert activation_values(sig) > sig.out_c * sig.out_h * sig.out_w
    assert feature_map_bytes(sig) > 4 * sig.in_c * sig.in_h * sig.in_w


def test_one_unit_counted_by_hand() -> None:
    """eesp_r7_s1_c128 on 28x28x128: n = 32 reduced channels in 4 groups."""
    sig = CASES[0]
    reduce = 128 // 4 * 32 + 2 * 32  # grouped 1x1 + BN
    branches = 4 * 32 * 9  # four depthwise 3x3, no BN
    merge = 2 * 128  # BN after the concatenation
    expand = 128 // 4 * 128 + 2 * 128  # grouped 1x1 + BN
    assert op_params(sig) == reduce + branches + merge + expand == 6_848
    pixels = 28 * 28
    assert op_macs(sig) == pixels * (128 // 4 * 32 + 4 * 32 * 9 + 128 // 4 * 128) == 4_917_248
    strided = CASES[1]  # eesp_r13_s2_c64 on 56x56x32: the unit makes 32 channels, n = 8
    assert op_params(strided) == (32 // 4 * 8 + 16) + 4 * 8 * 9 + 2 * 32 + (32 // 4 * 32 + 64)
    # the reduction runs before the stride, at 56x56; the branches stride to 28x28
    assert op_macs(strided) == 56 * 56 * 32 // 4 * 8 + 28 * 28 * (4 * 8 * 9 + 32 // 4 * 32)
    assert op_macs(strided) == 627_200


@pytest.mark.parametrize("sig", CASES, ids=str)
def test_the_cost_model_holds_every_multiply_add_sum_and_copy(sig: OpSignature) -> None:
    work = op_work(sig)
    conv_macs = sum(
        work.get(name, 0.0)
        for name in ("full_conv_macs", "pointwise_macs", "depthwise_s1_macs", "depthwise_s2_macs")
    )
    assert conv_macs == op_macs(sig)
    block = sig.block
    assert isinstance(block, EESPBlock)
    # the block, the branches' concatenation and its batch norm; at stride 2 the pooling and
    # the concatenation with it
    assert work["operator"] == 3 + 2 * (sig.stride == 2)
    made = block.unit_channels(sig.in_c)
    sums = (block.branches - 1) * made // block.branches * sig.out_h * sig.out_w
    residual = sig.out_c * sig.out_h * sig.out_w if sig.stride == 1 and sig.in_c == sig.out_c else 0
    assert work.get("add_elements", 0.0) == sums + residual


def test_dilated_branches_and_the_merged_batch_norm_are_kinds_of_their_own() -> None:
    uses = kind_uses(CASES[0])  # r7: rates 1, 1, 2, 3
    kinds = [use.kind for use in uses]
    assert {"dilated depthwise", "batch norm"} <= set(KINDS)
    assert kinds.count("depthwise") == 2 and kinds.count("dilated depthwise") == 2
    assert kinds.count("grouped pointwise") == 2 and kinds.count("batch norm") == 1
    # three fusion sums of 32 channels and the residual
    assert [use.channels for use in uses if use.kind == "shortcut add"] == [32, 32, 32, 128]


@pytest.mark.parametrize("target", ["armv8", "x86_64"])
def test_priced_by_every_shipped_table_with_its_unmeasured_kinds_named(target: str) -> None:
    table = load_table(target)
    arch = Arch.from_string(TEXT)
    estimate = table.predict(arch)
    eesp = [op for op in estimate.ops if op.key.startswith("eesp:")]
    assert len(eesp) == 4 and all(op.source == "model" and op.ms > 0 for op in eesp)
    assert math.isfinite(estimate.total_ms)
    trust = kind_trust(table, arch_signatures(arch), "eesp")
    by_kind = {k.kind: k for k in trust.kinds}
    for kind in ("dilated depthwise", "batch norm"):
        assert by_kind[kind].price == "extrapolated"
        assert by_kind[kind].why == "no measurement of this kind"
        assert kind in trust.unmeasured
    assert by_kind["depthwise"].evidence is not None  # the rate-1 branches are plain depthwise


def test_lut_show_lists_the_unmeasured_kinds_of_a_space_of_eesp_units(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NAS_TABLES_DIR", str(tmp_path))
    path = tmp_path / "eesp.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    with pytest.raises(SystemExit) as info:
        main(["lut", "show", "x86_64", "--space", str(path), "--json"])
    out, _ = capsys.readouterr()
    assert info.value.code == 0
    shown = json.loads(out)["trust"]
    assert {"dilated depthwise", "batch norm"} <= set(shown["unmeasured"])
    prices = {k["kind"]: k["price"] for k in shown["kinds"]}
    assert prices["dilated depthwise"] == prices["batch norm"] == "extrapolated"


def test_a_network_is_counted_from_its_layers_as_fvcore_counts_it() -> None:
    arch = Arch.from_string(TEXT)
    for shape in ((3, 224, 224), (3, 32, 32)):
        counted, estimated = count_cost(arch, shape, 10), estimate_cost(arch, shape, 10)
        assert counted.params == estimated.params
        assert counted.mflops == pytest.approx(estimated.mflops, abs=1e-9)


# ---- spaces and export -------------------------------------------------------------------------

SPACE = {
    "name": "eesp-toy",
    "stem": {"channels": 32, "act": "relu"},
    "head": {"conv_channels": 256, "act": "relu"},
    "stages": [
        {"kind": "eesp", "depth": 1, "width": [64, 96], "stride": 2,
         "branches": [4], "rf_limit": [13], "act": ["relu"]},
        {"kind": "eesp", "depth": [1, 3], "width": [128], "stride": 2,
         "branches": [2, 4], "rf_limit": [7, 9], "act": ["relu", "hswish"]},
    ],
}  # fmt: skip


def test_a_space_samples_eesp_units_and_lists_their_operators() -> None:
    space = space_from_dict(SPACE)
    assert space.cheapest().stages[1] == (EESPBlock(7, 2, 128, branches=4),)
    assert space.dearest().stages[1][-1] == EESPBlock(7, 1, 128, branches=2, act="relu")
    listed = {sig.key for sig in space.signatures()}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(6):
        trial = study.ask()
        arch = space.sample(trial)
        assert space.params_of(arch) == trial.params
        assert {sig.key for sig in arch_signatures(arch)} <= listed
        assert Arch.from_string(arch.to_string()) == arch
        study.tell(trial, 0.0)
    # a width the branches cannot divide is refused when the space loads
    bad = {**SPACE, "stages": [{**SPACE["stages"][0], "width": [66]}, SPACE["stages"][1]]}
    with pytest.raises(InputError, match="not divisible by 4 branches"):
        space_from_dict(bad)


def test_exports_to_ncnn_and_passes_its_check(tmp_path: Path) -> None:
    spec = ModelSpec(Arch.from_string(TEXT), (3, 32, 32), 10)
    check = export(build(spec), spec, "ncnn", tmp_path / "m.param", {"arch": TEXT})
    assert check is not None and check.tolerance_ok and check.runtime.startswith("ncnn ")


def test_export_to_onnx_passes_its_check(tmp_path: Path) -> None:
    import onnx

    spec = ModelSpec(Arch.from_string(TEXT), (3, 64, 64), 10)
    check = export(build(spec), spec, "onnx", tmp_path / "m.onnx", {"arch": TEXT})
    assert check is not None and check.tolerance_ok
    graph = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(graph)
    dilated = [
        node
        for node in graph.graph.node
        if node.op_type == "Conv"
        and any(a.name == "dilations" and max(a.ints) > 1 for a in node.attribute)
    ]
    assert len(dilated) == 3 * 3 + 1  # r13, r11, r9: rates 2-4; b2 r5: rate 2


def test_layers_of_a_strided_unit_pool_the_shortcut_and_fuse_its_branches() -> None:
    (merged,) = op_layers(CASES[1])
    assert isinstance(merged, Branches) and merged.merge == "concat" and merged.act == "relu"
    pooled, unit = merged.paths
    assert pooled == (Pool("avg", 3, 2, 32, 56, 56),)
    reduce, fused, expand = unit
    assert isinstance(fused, Branches) and fused.merge == "hierarchical" and fused.bn
    assert [path[0].dilation for path in fused.paths] == [1, 2, 3, 4]
    assert all(isinstance(path[0], Conv) and path[0].stride == 2 for path in fused.paths)
    assert isinstance(expand, Conv) and expand.groups == 4 and expand.act == ""
    model = build_model(Arch.from_string(TEXT), (3, 32, 32), 10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
