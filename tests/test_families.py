"""The families the field is built on: MobileNetV1's depthwise-separable block, the ShuffleNetV1
and ShuffleNetV2 units, the Ghost bottleneck and max pooling, as block kinds, and the zoo
networks made of them.

Each zoo network must have exactly its reference implementation's parameters and its paper's
multiply-adds within 2%; each kind's layers must count what its built module holds and
computes, be priced on every shipped table, and export to ONNX.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nas.errors import InputError
from nas.evaluators.flops import count_cost, estimate_cost, module_macs, op_macs
from nas.evaluators.latency import load_table
from nas.evaluators.latency.cost_model import op_work
from nas.evaluators.latency.table import feature_map_bytes
from nas.export import ModelSpec, build, export
from nas.search_spaces.arch import Arch
from nas.search_spaces.blocks.fire import FireBlock
from nas.search_spaces.blocks.ghost import GhostBlock
from nas.search_spaces.blocks.maxpool import MaxPoolBlock
from nas.search_spaces.blocks.separable import SeparableBlock
from nas.search_spaces.blocks.shuffleonly import ShuffleOnlyBlock
from nas.search_spaces.blocks.shufflev1 import ShuffleV1Block
from nas.search_spaces.blocks.shufflev2 import ShuffleV2Block
from nas.search_spaces.builder import build_model, build_op
from nas.search_spaces.footprint import activation_values, op_params
from nas.search_spaces.kinds import BlockSpec
from nas.search_spaces.layers import (
    Branches,
    ChannelAggregate,
    ChannelShuffle,
    Conv,
    Layer,
    Pool,
    ShortcutAdd,
)
from nas.search_spaces.ops import op_layers
from nas.search_spaces.signatures import OpSignature, arch_signatures, block_signature
from nas.search_spaces.zoo import ZOO

# name: (parameters of the reference implementation at 224x224x3 and 1000 classes, the
# paper's millions of multiply-adds). Parameters: torchvision 0.28's `shufflenet_v2_x*` (as its
# documentation lists them); megvii's ShuffleNet-Series ShuffleNetV1 (group=3) plus the 1,000
# classifier biases its Linear(bias=False) leaves out; huawei-noah's ghostnet.pytorch
# `ghostnet(width=...)`, counted on its module definition; MobileNetV1's layer table (paper
# Table 1) with batch-norm scale and shift, which its 4.2M / 2.6M / 1.3M / 0.5M round.
# Multiply-adds: MobileNetV1 Tables 6-7 (569, 325, 149, 41), ShuffleNetV1 Table 2 (38, 140),
# ShuffleNetV2 Table 8 (41, 146, 299, 591; torchvision lists 0.58 GFLOPS for x2.0), GhostNet
# Table 7 (42, 141, 226).
REFERENCE = {
    "mobilenet_v1": (4_231_976, 569),
    "mobilenet_v1_0.75": (2_585_560, 325),
    "mobilenet_v1_0.5": (1_331_592, 149),
    "mobilenet_v1_0.25": (470_072, 41),
    "shufflenet_v2_x0_5": (1_366_792, 41),
    "shufflenet_v2_x1_0": (2_278_604, 146),
    "shufflenet_v2_x1_5": (3_503_624, 299),
    "shufflenet_v2_x2_0": (7_393_996, 591),
    "shufflenet_v1_g3_x0_5": (717_324 + 1_000, 38),
    "shufflenet_v1_g3_x1_0": (1_864_728 + 1_000, 140),
    "ghostnet_050": (2_587_292, 42),
    "ghostnet_100": (5_182_508, 141),
    "ghostnet_130": (7_358_820, 226),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_zoo_network_has_the_reference_parameters_and_the_papers_macs(name: str) -> None:
    params, mmacs = REFERENCE[name]
    arch = ZOO[name]()
    cost = count_cost(arch)  # built in torch, parameters summed, multiply-adds by fvcore
    assert cost.params == params
    assert cost.mflops == pytest.approx(mmacs, rel=0.02)
    estimate = estimate_cost(arch)  # the same from the layers alone
    assert estimate.params == cost.params
    assert estimate.mflops == pytest.approx(cost.mflops, abs=1e-9)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_zoo_network_round_trips_through_its_string_and_json(name: str) -> None:
    arch = ZOO[name]()
    assert Arch.from_string(arch.to_string()) == arch
    assert Arch.from_json(arch.to_json()) == arch
    assert Arch.from_string(arch.to_string()).to_string() == arch.to_string()


def test_arch_strings_name_the_kinds() -> None:
    assert ZOO["mobilenet_v1"]().to_string().startswith("stem_c32_k3_s2_re:ds_k3_s1_c64_re:")
    shufflenet = ZOO["shufflenet_v2_x1_0"]().to_string()
    assert shufflenet.startswith("stem_c24_k3_s2_re:mp_k3_s2_c24:sv2_k3_s2_c116_re,")
    assert shufflenet.endswith(":head_c1024_re_d0")
    ghostnet = ZOO["ghostnet_100"]().to_string()
    assert ":gb_e3_k5_s2_c40_se0.25_re," in ghostnet
    assert ghostnet.endswith(":head_c960_f1280_re_d0.2")


# ---- each kind's layers against its built module ------------------------------------------


def _sig(block: BlockSpec, height: int, width: int, in_c: int) -> OpSignature:
    return block_signature(block, height, width, in_c)


VARIETY = [
    _sig(SeparableBlock(3, 1, 24, "relu"), 9, 9, 16),
    _sig(SeparableBlock(4, 2, 32, "hswish"), 15, 13, 24),
    _sig(ShuffleV2Block(3, 1, 24, "relu"), 9, 9, 24),  # split form
    _sig(ShuffleV2Block(5, 2, 48, "relu"), 15, 13, 24),  # two branches, stride 2
    _sig(ShuffleV2Block(3, 1, 32, "swish"), 8, 8, 24),  # two branches, new width
    _sig(ShuffleV2Block(2, 1, 16, "relu"), 8, 8, 16),  # even kernel: padded
    _sig(GhostBlock(3, 3, 1, 24, act="relu"), 9, 9, 24),  # identity shortcut
    _sig(GhostBlock(1, 3, 1, 16), 9, 9, 16),  # no expansion
    _sig(GhostBlock(6, 5, 2, 40, 0.25, "relu"), 15, 13, 24),  # shortcut path, SE
    _sig(GhostBlock(2.5, 3, 1, 21, 0.25, "hswish"), 8, 8, 16),  # odd width: a sliced concat
    _sig(MaxPoolBlock(3, 2, 24), 15, 13, 24),
    _sig(ShuffleV1Block(3, 1, 24, 3), 9, 9, 24),  # added back
    _sig(ShuffleV1Block(3, 2, 48, 2, 1), 15, 13, 24),  # pooled and concatenated, ungrouped first
    _sig(ShuffleV1Block(4, 2, 64, 4, act="hswish"), 8, 8, 32),
    _sig(ShuffleOnlyBlock(3, 2, 24, 4), 15, 13, 16),  # max over pairs
    _sig(ShuffleOnlyBlock(2, 1, 24, 4, 3, 3, "mean", "hswish"), 9, 9, 24),  # padded, shortcut
    _sig(ShuffleOnlyBlock(1, 1, 32, 2, 1, 1), 8, 8, 24),  # no aggregation at all
    _sig(FireBlock(16, 128), 13, 13, 96),
    _sig(FireBlock(8, 24, act="hswish"), 7, 9, 24),
]


def _flat(layers: tuple[Layer, ...]) -> list[Layer]:
    flat: list[Layer] = []
    for layer in layers:
        flat.append(layer)
        if isinstance(layer, Branches):
            flat += _flat(tuple(inner for path in layer.paths for inner in path))
    return flat


def _input(sig: OpSignature) -> torch.Tensor:
    return torch.randn(1, sig.in_c, sig.in_h, sig.in_w)


@pytest.mark.parametrize("sig", VARIETY, ids=str)
def test_layers_count_what_the_built_module_holds_and_computes(sig: OpSignature) -> None:
    module = build_op(sig).eval()
    with torch.no_grad():
        out = module(_input(sig))
    assert tuple(out.shape[1:]) == (sig.out_c, sig.out_h, sig.out_w)
    assert op_params(sig) == sum(p.numel() for p in module.parameters())
    assert op_macs(sig) == module_macs(module, (sig.in_c, sig.in_h, sig.in_w))


@pytest.mark.parametrize("sig", VARIETY, ids=str)
def test_cost_model_work_holds_every_multiply_add_and_every_copy(sig: OpSignature) -> None:
    work = op_work(sig)
    conv_macs = sum(
        work.get(name, 0.0)
        for name in ("full_conv_macs", "pointwise_macs", "depthwise_s1_macs", "depthwise_s2_macs")
    )
    assert conv_macs + work.get("linear_weight_bytes", 0.0) / 4 == op_macs(sig)
    flat = _flat(op_layers(sig))
    # one operator for the block, one per copy: pad, shuffle, pooling, split, concat, slice
    copies = sum(isinstance(layer, (ChannelShuffle, Pool, ChannelAggregate)) for layer in flat)
    for layer in flat:
        if isinstance(layer, Branches):
            copies += bool(layer.split) + (layer.merge == "concat") + layer.sliced
    pads = sum(type(layer).__name__ == "ZeroPad" for layer in flat)
    assert work["operator"] == 1 + copies + pads
    assert feature_map_bytes(sig) > 4 * (sig.in_c * sig.in_h * sig.in_w)
    assert activation_values(sig) >= sig.out_c * sig.out_h * sig.out_w


def test_the_split_form_passes_half_its_input_to_the_even_channels() -> None:
    sig = _sig(ShuffleV2Block(3, 1, 8, "relu"), 5, 5, 8)
    module = build_op(sig).eval()
    x = _input(sig)
    with torch.no_grad():
        out = module(x)
    # concat(first half, branch(second half)) shuffled in two groups: channel 2i is input i
    assert torch.equal(out[:, 0::2], x[:, :4])
    assert not torch.equal(out[:, 1::2], x[:, 4:])


def test_the_shuffle_only_block_aggregates_neighbouring_channels() -> None:
    sig = _sig(ShuffleOnlyBlock(1, 2, 4, 2, convs=1, ratio=2, aggregate="max"), 4, 4, 4)
    module = build_op(sig).eval()
    aggregate = module.layers[-1]
    x = torch.arange(8 * 2 * 2, dtype=torch.float32).view(1, 8, 2, 2)
    assert torch.equal(aggregate(x), x.view(1, 4, 2, 2, 2).amax(2))
    assert torch.equal(aggregate(x)[:, 0], x[:, 1])  # channels 0 and 1 make output 0
    mean = build_op(_sig(ShuffleOnlyBlock(1, 2, 4, 2, 1, 2, "mean"), 4, 4, 4)).layers[-1]
    assert torch.allclose(mean(x)[:, 0], (x[:, 0] + x[:, 1]) / 2)


@pytest.mark.parametrize(
    "in_c, squeeze, out_c, params",  # torchvision's Fire(in_c, squeeze, out_c / 2, out_c / 2)
    [(96, 16, 128, 11_920), (128, 32, 256, 45_344), (512, 64, 512, 197_184)],
)
def test_a_fire_module_has_torchvisions_parameters(
    in_c: int, squeeze: int, out_c: int, params: int
) -> None:
    sig = _sig(FireBlock(squeeze, out_c), 13, 13, in_c)
    assert op_params(sig) == params == sum(p.numel() for p in build_op(sig).parameters())
    assert op_macs(sig) == 13 * 13 * (in_c * squeeze + squeeze * out_c // 2 * (1 + 9))


def test_a_ghost_module_keeps_its_primary_features_then_the_cheap_ones() -> None:
    sig = _sig(GhostBlock(2.5, 3, 1, 21, act="relu"), 6, 6, 21)
    layers = op_layers(sig)
    primary, branches = layers[:2]
    assert isinstance(primary, Conv) and primary.out_c == 26  # make_divisible(52.5, 4) / 2
    assert isinstance(branches, Branches) and branches.paths[0] == ()
    assert isinstance(layers[-1], ShortcutAdd)
    second = layers[-2]  # the second Ghost module, before the shortcut
    assert isinstance(second, Branches) and second.sliced  # 11 + 11 channels, 21 kept
    assert second.out_c == 21 and second.concatenated == 22 * 6 * 6


def test_ghost_shortcut_is_identity_only_where_the_shape_is_kept() -> None:
    kept = op_layers(_sig(GhostBlock(3, 3, 1, 24), 8, 8, 24))
    assert isinstance(kept[-1], ShortcutAdd)
    changed = op_layers(_sig(GhostBlock(3, 3, 2, 24), 8, 8, 24))
    assert len(changed) == 1 and isinstance(changed[0], Branches) and changed[0].merge == "add"


@pytest.mark.parametrize(
    "text, message",
    [
        ("stem_c16_k3_s2_re:sv2_k3_s2_c25_re:head_c0_re", "must be even"),
        ("stem_c16_k3_s2_re:mp_k3_s2_c24:head_c0_re", "keeps the width"),
        ("stem_c16_k3_s2_re:mp_k2_s2_c16:head_c0_re", "odd integer"),
        ("stem_c16_k3_s2_re:ds_k3_s3_c16_re:head_c0_re", "stride must be 1 or 2"),
        ("stem_c16_k3_s2_re:gb_e0_k3_s1_c16_re:head_c0_re", "expansion"),
        ("stem_c16_k3_s2_re:gb_e3_k3_s1_c16_se1_re:head_c0_re", "se_ratio"),
        ("stem_c16_k3_s2_re:ds_k3_s1_c16:head_c0_re", "lacks an activation"),
        ("stem_c24_k3_s2_re:sv1_k3_s1_c48_g3_re:head_c0_re", "needs 48 input channels"),
        ("stem_c24_k3_s2_re:sv1_k3_s2_c24_g3_re:head_c0_re", "must exceed"),
        ("stem_c24_k3_s2_re:sv1_k3_s2_c64_g3_re:head_c0_re", "not divisible by 3 groups"),
        ("stem_c24_k3_s2_re:so_k3_s2_c32_g4_asum_re:head_c0_re", "max or mean"),
        ("stem_c24_k3_s2_re:so_k3_s2_c32_g5_re:head_c0_re", "not divisible by groups=5"),
        ("stem_c24_k3_s2_re:so_k3_s2_c32_g4_n9_re:head_c0_re", "convs must be"),
        ("stem_c24_k3_s2_re:fire_q8_c33_re:head_c0_re", "must be even"),
        ("stem_c24_k3_s2_re:fire_q8_c32_s2_re:head_c0_re", "pool to stride"),
    ],
)
def test_bad_blocks_are_one_line_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Arch.from_string(text)


# ---- pricing and export -------------------------------------------------------------------


@pytest.mark.parametrize("target", ["armv8", "x86_64"])
def test_every_new_zoo_network_is_priced_on_the_shipped_tables(target: str) -> None:
    table = load_table(target)
    prices = {name: table.predict(ZOO[name]()).total_ms for name in REFERENCE}
    assert all(math.isfinite(ms) and ms > 0 for ms in prices.values())
    for family in ("mobilenet_v1", "shufflenet_v1", "shufflenet_v2", "ghostnet"):
        # wider is dearer within a family
        names = sorted(
            (name for name in REFERENCE if name.startswith(family)),
            key=lambda name: estimate_cost(ZOO[name]()).mflops,
        )
        ordered = [prices[name] for name in names]
        assert ordered == sorted(ordered), family


SHUFFLE_ONLY = "stem_c16_k3_s2_re:so_k3_s2_c24_g4_re,so_k2_s1_c24_g4_amean_re:head_c64_re_d0.2"
FIRE = "stem_c16_k3_s2_re:mp_k3_s2_c16:fire_q8_c32_re,fire_q8_c32_re:head_c0_re_d0.5"


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v1_0.25",
        "shufflenet_v1_g3_x0_5",
        "shufflenet_v2_x0_5",
        "ghostnet_050",
        SHUFFLE_ONLY,
        FIRE,
    ],
)
def test_export_to_onnx_passes_its_check(name: str, tmp_path: Path) -> None:
    import onnx

    arch = ZOO[name]() if name in ZOO else Arch.from_string(name)
    spec = ModelSpec(arch, (3, 64, 64), 10)
    check = export(build(spec), spec, "onnx", tmp_path / "m.onnx", {"arch": name})
    assert check is not None and check.tolerance_ok
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"))


def test_the_new_kinds_train_one_step() -> None:
    arch = Arch.from_string(
        "stem_c16_k3_s2_re:mp_k3_s2_c16:ds_k3_s1_c24_re,sv2_k3_s2_c32_re,sv2_k3_s1_c32_re:"
        "sv1_k3_s2_c48_g2_re,sv1_k3_s1_c48_g2_re,so_k2_s1_c48_g4_amean_re:"
        "gb_e3_k3_s2_c40_se0.25_re,gb_e3_k5_s1_c40_re:head_c64_re_d0.2"
    )
    model = build_model(arch, (3, 32, 32), 10).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


# ---- the families space -------------------------------------------------------------------


def test_families_space_mixes_the_kinds_and_every_operator_is_priced() -> None:
    import random

    from nas.evaluators.latency.cost_model import OpCostModel
    from nas.evaluators.latency.networks import SeededSuggester
    from nas.search_spaces.space import load_space

    space = load_space("families")
    archs = [space.sample(SeededSuggester(random.Random(seed))) for seed in range(20)]
    kinds = {block.kind.name for arch in archs for block in arch.blocks}
    assert kinds == {"mbconv", "shufflev2", "ghost", "shuffleonly"}
    for arch in archs:
        assert Arch.from_string(arch.to_string()) == arch
        assert {sig.key for sig in arch_signatures(arch)} <= {sig.key for sig in space.signatures()}
        assert space.params_of(arch) is not None  # how a zoo network is queued by its choices
    cheapest, dearest = estimate_cost(space.cheapest()), estimate_cost(space.dearest())
    assert all(cheapest.mflops <= estimate_cost(a).mflops <= dearest.mflops for a in archs)
    for target in ("armv8", "x86_64"):
        model = OpCostModel.from_dict(load_table(target).cost_model)
        prices = [model.predict_ms(sig) for sig in space.signatures()]
        assert all(math.isfinite(ms) and ms > 0 for ms in prices), target


def test_a_space_can_offer_each_new_kinds_own_choices_stage_by_stage() -> None:
    import random

    from nas.evaluators.latency.networks import SeededSuggester
    from nas.search_spaces.space import space_from_dict

    relu = {"act": ["relu"]}
    space = space_from_dict(
        {
            "name": "kinds",
            "stem": {"channels": 24},
            "head": {"conv_channels": 0},
            "stages": [
                {"depth": 1, "width": 24, "stride": 2, "kind": "maxpool", "kernel": [3]},
                {"depth": [1, 3], "width": [48, 60], "stride": 2, "kind": "shufflev2"}
                | {"kernel": [3, 5]}
                | relu,
                {"depth": [1, 3], "width": [96, 120], "stride": 2, "kind": "shufflev1"}
                | {"kernel": [3], "groups": [3]}
                | relu,
                {"depth": [1, 2], "width": [160], "stride": 2, "kind": "ghost"}
                | {"expansion": [3, 6], "kernel": [3, 5], "se_ratio": [0, 0.25]}
                | relu,
                {"depth": [1, 2], "width": [160], "stride": 1, "kind": "shuffleonly"}
                | {"kernel": [1, 2, 3], "groups": [4], "convs": [1, 2], "ratio": [2]}
                | {"aggregate": ["max", "mean"]}
                | relu,
                {"depth": 1, "width": [192, 256], "stride": 1, "kind": "separable"}
                | {"kernel": [3, 5]}
                | relu,
                {"depth": [1, 2], "width": [256], "stride": 1, "kind": "fire"}
                | {"squeeze": [32, 64]}
                | relu,
            ],
        }
    )
    cheapest, dearest = space.cheapest(), space.dearest()
    assert estimate_cost(cheapest).mflops < estimate_cost(dearest).mflops
    kernels = {getattr(block, "kernel", None) for block in cheapest.blocks[1:]} - {None}
    assert kernels == {1, 3}  # each kind's smallest: the shuffle-only block's 1x1
    for seed in range(5):
        arch = space.sample(SeededSuggester(random.Random(seed)))
        assert space.params_of(arch) is not None
        assert estimate_cost(cheapest).mflops <= estimate_cost(arch).mflops


@pytest.mark.parametrize(
    "stage, message",
    [
        ({"kind": "shufflev1", "width": [96], "stride": 1, "groups": [3]}, "needs 96 input"),
        ({"kind": "shufflev1", "width": [96, 100], "stride": 2, "groups": [3]}, "not divisible"),
        ({"kind": "shufflev2", "width": [48, 50, 51], "stride": 2}, "must be even"),
        ({"kind": "shuffleonly", "width": [48], "stride": 2, "groups": [5]}, "not divisible"),
    ],
)
def test_a_space_whose_options_cannot_all_be_built_is_refused_on_loading(
    stage: dict, message: str
) -> None:
    from nas.search_spaces.space import space_from_dict

    options = {"kernel": [3], "act": ["relu"], "groups": [4], "convs": [2], "ratio": [2]}
    options |= {"aggregate": ["max"]}
    kind = stage["kind"]
    allowed = {"shufflev1": ("kernel", "act", "groups"), "shufflev2": ("kernel", "act")}.get(
        kind, tuple(options)
    )
    raw = {"depth": [1, 2], **{name: options[name] for name in allowed}, **stage}
    with pytest.raises(InputError, match=message) as error:
        space_from_dict({"stem": {"channels": 24}, "head": {"conv_channels": 0}, "stages": [raw]})
    assert "stages[0]" in str(error.value) and "\n" not in str(error.value)
