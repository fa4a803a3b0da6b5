"""A block kind defined here, in the test, and nowhere in the product: parsed, built, counted,
priced, sampled by a space and trained, with no product file edited.

The kind is EfficientNetV2's fused MBConv: a full k x k convolution expands (and strides), a 1x1
convolution projects, and the input is added back when the shapes match. It is made only of the
layers every count and price already knows, so declaring it is all that it takes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

import optuna
import pytest
import torch
from torch import nn

from nas.errors import InputError
from nas.evaluators.datasets import Dataset
from nas.evaluators.flops import count_cost, estimate_cost
from nas.evaluators.latency import load_table
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import Status
from nas.evaluators.training import train
from nas.search_spaces import kinds
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import LayerBlock, build_model, build_op
from nas.search_spaces.footprint import count_params
from nas.search_spaces.kinds import BlockKind, BlockSpec, Choice, Param
from nas.search_spaces.layers import Conv, Layer, ShortcutAdd, same
from nas.search_spaces.notation import ACTIVATIONS, check, make_divisible
from nas.search_spaces.signatures import OpSignature, arch_signatures
from nas.search_spaces.space import space_from_dict


@dataclass(frozen=True)
class FusedBlock(BlockSpec):
    expansion: float
    kernel: int
    stride: int
    out_channels: int
    act: str = "relu"

    def __post_init__(self) -> None:
        check(self.kernel in (1, 3, 5), f"fused kernel must be 1, 3 or 5, got {self.kernel!r}")
        check(self.stride in (1, 2), f"fused stride must be 1 or 2, got {self.stride!r}")
        check(self.act in ACTIVATIONS, f"fused act must be one of {', '.join(ACTIVATIONS)}")
        object.__setattr__(self, "expansion", float(self.expansion))


def fused_layers(sig: OpSignature, mid: int | None = None) -> tuple[Layer, ...]:
    mid = mid or make_divisible(sig.in_c * sig.expansion)
    layers: list[Layer] = [
        *same(Conv("full", sig.in_c, mid, sig.in_h, sig.in_w, sig.kernel, sig.stride, act=sig.act)),
        *same(Conv("pointwise", mid, sig.out_c, sig.out_h, sig.out_w)),
    ]
    if sig.stride == 1 and sig.in_c == sig.out_c:
        layers.append(ShortcutAdd(sig.out_c, sig.out_h, sig.out_w))
    return tuple(layers)


FUSED = BlockKind(
    name="fused",
    token="fu",
    block=FusedBlock,
    params=(
        Param("e", "expansion", float),
        Param("k", "kernel", int),
        Param("s", "stride", int),
        Param("c", "out_channels", int),
    ),
    layers=fused_layers,
    choices=(
        Choice("expansion", float, lambda e: e > 0, "low"),
        Choice("kernel", int, lambda k: k in (1, 3, 5), "low"),
        Choice("act", str, lambda a: a in ACTIVATIONS, None),
    ),
)

TEXT = (
    "stem_c16_k3_s2_re:fu_e4_k3_s2_c24_re,fu_e2_k3_s1_c24_hs:"
    "mb_e4_k3_s2_c32_se0.25_hs:head_c64_re_d0.1"
)


@pytest.fixture
def fused() -> Iterator[BlockKind]:
    with kinds.registered(FUSED) as kind:
        yield kind


def test_parsed_and_written_back(fused: BlockKind) -> None:
    arch = Arch.from_string(TEXT)
    first = arch.stages[0][0]
    assert isinstance(first, FusedBlock) and first.kind is fused
    assert first == FusedBlock(4, 3, 2, 24, "relu")
    assert arch.to_string() == TEXT
    assert Arch.from_json(arch.to_json()) == arch
    assert arch.to_dict()["stages"][0][0]["kind"] == "fused"
    assert "kind" not in arch.to_dict()["stages"][1][0]  # MBConv's JSON is as it always was
    with pytest.raises(InputError, match="fused kernel must be 1, 3 or 5"):
        Arch.from_string(TEXT.replace("fu_e4_k3", "fu_e4_k7"))
    with pytest.raises(InputError, match="lacks field"):
        Arch.from_string(TEXT.replace("fu_e4_k3_s2", "fu_k3_s2"))


def test_unknown_until_registered() -> None:
    with pytest.raises(InputError, match="block prefix"):
        Arch.from_string(TEXT)
    with pytest.raises(InputError, match="unknown block kind 'fused'"):
        Arch.from_dict(
            {
                "stem": {"channels": 8},
                "stages": [[{"kind": "fused", "expansion": 2, "kernel": 3, "stride": 1}]],
                "head": {"conv_channels": 0},
            }
        )


def test_signatures_and_keys(fused: BlockKind) -> None:
    sigs = arch_signatures(Arch.from_string(TEXT), (3, 32, 32), 10)
    assert [sig.kind for sig in sigs[:4]] == ["stem", "fused", "fused", "mbconv"]
    assert sigs[1].key == "fused:16x16x16>24:e4:k3:s2:re"
    assert sigs[1].block == FusedBlock(4, 3, 2, 24, "relu")
    assert sigs[3].key == "mbconv:8x8x24>32:e4:k3:s2:g1:se0.25:hs"


def test_built_module_matches_its_layers_and_counts(fused: BlockKind) -> None:
    arch = Arch.from_string(TEXT)
    model = build_model(arch, (3, 32, 32), 10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) == count_params(arch, (3, 32, 32), 10)
    counted, estimated = count_cost(arch, (3, 64, 64), 10), estimate_cost(arch, (3, 64, 64), 10)
    assert counted.mflops == pytest.approx(estimated.mflops, rel=1e-9)  # fvcore agrees
    assert counted.params == estimated.params
    repeat = arch_signatures(arch, (3, 32, 32), 10)[2]
    module = build_op(repeat)
    x = torch.randn(1, 24, 8, 8)
    assert module(x).shape == x.shape  # stride 1, same width: the shortcut is added


def test_priced_by_a_table_that_never_saw_it(fused: BlockKind) -> None:
    estimate = load_table("x86_64").predict(Arch.from_string(TEXT))
    priced = {op.key: op for op in estimate.ops}
    fused_ops = [op for key, op in priced.items() if key.startswith("fused:")]
    assert len(fused_ops) == 2
    assert all(op.source == "model" and op.ms > 0 for op in fused_ops)
    assert estimate.n_modelled >= 2 and math.isfinite(estimate.total_ms)


def test_a_space_samples_it(fused: BlockKind) -> None:
    space = space_from_dict(
        {
            "name": "fused-toy",
            "stem": {"channels": 16, "act": "relu"},
            "head": {"conv_channels": 64, "act": "relu"},
            "stages": [
                {"kind": "fused", "depth": [1, 2], "width": [16, 24], "stride": 2,
                 "expansion": [1, 4], "kernel": [1, 3], "act": ["relu"]},
                {"depth": 1, "width": 32, "stride": 2, "expansion": [3], "kernel": [3],
                 "groups": [1], "se_ratio": [0], "act": ["hswish"]},
            ],
        }
    )  # fmt: skip
    assert space.size() == 2 * (4 + 16) * 1
    assert space.cheapest().stages[0] == (FusedBlock(1, 1, 2, 16),)
    assert space.dearest().stages[0][1] == FusedBlock(4, 3, 1, 24)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask()
        arch = space.sample(trial)
        assert all(isinstance(block, FusedBlock) for block in arch.stages[0])
        assert space.params_of(arch) == trial.params
        study.tell(trial, 0.0)
    keys = {sig.key for sig in space.signatures((3, 32, 32), 10)}
    assert "fused:16x16x16>24:e4:k3:s2:re" in keys and "fused:8x8x24>24:e1:k1:s1:re" in keys
    assert space_from_dict(space.to_dict()) == space
    with pytest.raises(InputError, match=r"stages\[0\]\.kernel\[0\] has invalid value 7"):
        space_from_dict(
            {**space.to_dict(), "stages": [{**space.to_dict()["stages"][0], "kernel": [7]}]}
        )


def test_trained_for_a_step(fused: BlockKind) -> None:
    torch.manual_seed(0)
    images = torch.randint(0, 255, (16, 3, 16, 16), dtype=torch.uint8)
    labels = torch.arange(16) % 4
    data = Dataset(
        name="random",
        train_images=images,
        train_labels=labels,
        val_images=images[:8],
        val_labels=labels[:8],
        test_images=images[:8],
        test_labels=labels[:8],
        num_classes=4,
        channels=3,
        resolution=(16, 16),
        class_names=("a", "b", "c", "d"),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        hflip_ok=False,
        provenance="random",
    )
    result = train(Arch.from_string(TEXT), data, Recipe(epochs=1, batch_size=16, threads=1))
    assert result.status == Status.OK, result.error
    assert len(result.curve) == 1 and result.val_count == 8


def test_a_kind_brings_its_own_module(fused: BlockKind) -> None:
    kinds.unregister_block_kind("fused")
    kinds.register_block_kind(dataclasses.replace(FUSED, build=_Scaled))
    try:
        model = build_model(Arch.from_string(TEXT), (3, 32, 32), 10)
        assert sum(isinstance(m, _Scaled) for m in model.modules()) == 2
    finally:
        kinds.unregister_block_kind("fused")
        kinds.register_block_kind(FUSED)


class _Scaled(nn.Module):
    """A kind's own module: the default layers, then a learned scale."""

    def __init__(self, sig: OpSignature) -> None:
        super().__init__()
        self.body = LayerBlock(sig)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.scale


def test_clashing_registration_is_refused(fused: BlockKind) -> None:
    with pytest.raises(ValueError, match="clashes"):
        kinds.register_block_kind(dataclasses.replace(FUSED, name="other"))
