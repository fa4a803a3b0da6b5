"""SqueezeNet 1.0 and 1.1 in the zoo, and what expressing them added: a stem that does not pad
and has no batch norm, max pooling in ceil mode, and a head that classifies with a convolution
before the pooling.

torchvision is not a dependency, so its `torchvision.models.squeezenet` is written out below as
its source builds it, and the zoo's networks must be that network: the same parameters in the
same order and, with those weights, the same outputs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nas.config import SearchConfig
from nas.errors import InputError
from nas.evaluators.flops import count_cost, estimate_cost, module_macs
from nas.evaluators.latency import load_table
from nas.evaluators.latency.cost_model import op_work
from nas.export import ModelSpec, build, export
from nas.pricing import Pricer
from nas.search_spaces.arch import Arch, Head, Stem
from nas.search_spaces.blocks.fire import FireBlock
from nas.search_spaces.blocks.maxpool import MaxPoolBlock
from nas.search_spaces.builder import build_model, build_op
from nas.search_spaces.footprint import op_macs, op_params
from nas.search_spaces.notation import out_size
from nas.search_spaces.signatures import (
    OpSignature,
    arch_signatures,
    block_signature,
    stem_signature,
)
from nas.search_spaces.space import builtin_spaces, load_space, space_from_dict
from nas.search_spaces.zoo import ZOO, zoo_at

# ---- torchvision's SqueezeNet, as torchvision/models/squeezenet.py builds it ----------------


class _Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [
                self.expand1x1_activation(self.expand1x1(x)),
                self.expand3x3_activation(self.expand3x3(x)),
            ],
            1,
        )


def _pool() -> nn.Module:
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


def torchvision_squeezenet(version: str, num_classes: int = 1000) -> nn.Module:
    if version == "1_0":
        features = [
            nn.Conv2d(3, 96, kernel_size=7, stride=2),
            nn.ReLU(inplace=True),
            _pool(),
            _Fire(96, 16, 64, 64),
            _Fire(128, 16, 64, 64),
            _Fire(128, 32, 128, 128),
            _pool(),
            _Fire(256, 32, 128, 128),
            _Fire(256, 48, 192, 192),
            _Fire(384, 48, 192, 192),
            _Fire(384, 64, 256, 256),
            _pool(),
            _Fire(512, 64, 256, 256),
        ]
    else:
        features = [
            nn.Conv2d(3, 64, kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            _pool(),
            _Fire(64, 16, 64, 64),
            _Fire(128, 16, 64, 64),
            _pool(),
            _Fire(128, 32, 128, 128),
            _Fire(256, 32, 128, 128),
            _pool(),
            _Fire(256, 48, 192, 192),
            _Fire(384, 48, 192, 192),
            _Fire(384, 64, 256, 256),
            _Fire(512, 64, 256, 256),
        ]
    classifier = [
        nn.Dropout(p=0.5),
        nn.Conv2d(512, num_classes, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(1),
    ]
    return nn.Sequential(*features, *classifier)


@pytest.mark.parametrize("version", ["1_0", "1_1"])
def test_the_zoo_network_is_torchvisions_squeezenet(version: str) -> None:
    torch.manual_seed(0)
    ours = build_model(ZOO[f"squeezenet{version}"]()).eval()
    reference = torchvision_squeezenet(version).eval()
    mine, theirs = list(ours.parameters()), list(reference.parameters())
    assert [p.shape for p in mine] == [p.shape for p in theirs]
    with torch.no_grad():
        for source, target in zip(mine, theirs):
            target.copy_(source)
        x = torch.randn(2, 3, 224, 224)
        out = ours(x)
        assert out.shape == (2, 1000)
        assert torch.allclose(out, reference(x), atol=1e-5, rtol=1e-4)
        # Inputs whose sides hit the ceil-mode pooling's uneven cases.
        for side in (21, 67, 100, 225):
            x = torch.randn(1, 3, side, side)
            assert torch.allclose(ours(x), reference(x), atol=1e-5, rtol=1e-4), side
    assert module_macs(ours, (3, 224, 224)) == module_macs(reference, (3, 224, 224))


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_counted_from_the_layers_as_fvcore_counts_the_built_model(name: str) -> None:
    arch = ZOO[name]()
    for shape in ((3, 224, 224), (3, 32, 32)):
        counted, estimated = count_cost(arch, shape), estimate_cost(arch, shape)
        assert estimated.params == counted.params
        assert estimated.mflops == pytest.approx(counted.mflops, abs=1e-9)


def test_arch_strings_say_what_squeezenet_adds() -> None:
    text = ZOO["squeezenet1_1"]().to_string()
    assert text.startswith("stem_c64_k3_s2_pvalid_bn0_re:mp_k3_s2_c64_pceil,fire_q16_c128_re,")
    assert text.endswith(":head_c0_clsconv_re_d0.5")
    arch = Arch.from_string(text)
    assert arch.stem == Stem(64, 3, 2, "relu", padding="valid", bn=False)
    assert arch.head == Head(0, act="relu", dropout=0.5, classifier="conv")
    assert arch.blocks[0] == MaxPoolBlock(3, 2, 64, padding="ceil")
    assert Arch.from_json(arch.to_json()) == arch
    # The defaults still write nothing new.
    plain = Arch.from_string("stem_c16_k3_s2_re:mp_k3_s2_c16:head_c0_re_d0.2")
    assert plain.to_string() == "stem_c16_k3_s2_re:mp_k3_s2_c16:head_c0_re_d0.2"
    assert plain.stem.bn and plain.stem.padding == "same" and plain.head.classifier == "linear"


@pytest.mark.parametrize(
    "text, message",
    [
        ("stem_c16_k3_s2_pceil_re:fire_q8_c16_re:head_c0_re", "stem padding must be one of"),
        ("stem_c16_k3_s2_bn2_re:fire_q8_c16_re:head_c0_re", "'bn' must be 0"),
        ("stem_c16_k3_s2_re:mp_k3_s2_c16_pround:head_c0_re", "maxpool padding must be one of"),
        ("stem_c16_k3_s2_re:fire_q8_c16_re:head_c0_clslinear2_re", "classifier must be one of"),
        ("stem_c16_k3_s2_re:fire_q8_c16_re:head_c0_f64_clsconv_re", "takes no fc_channels"),
    ],
)
def test_bad_new_fields_are_one_line_input_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as error:
        Arch.from_string(text)
    assert "\n" not in str(error.value)


def test_table_keys_keep_their_old_form_unless_a_new_field_is_set() -> None:
    """Every shipped entry was measured under the old keys: a default must not change one."""
    same = block_signature(MaxPoolBlock(3, 2, 24), 112, 112, 24)
    assert same.key == "maxpool:112x112x24>24:k3:s2" and same.out_h == 56
    ceil = block_signature(MaxPoolBlock(3, 2, 96, "ceil"), 109, 109, 96)
    assert ceil.key == "maxpool:109x109x96>96:k3:s2:pceil" and ceil.out_h == 54
    assert stem_signature(Stem(16, 3, 2, "hswish"), (3, 224, 224)).key == (
        "stem:224x224x3>16:k3:s2:hs"
    )
    squeezenet = stem_signature(Stem(96, 7, 2, padding="valid", bn=False), (3, 224, 224))
    assert squeezenet.key == "stem:224x224x3>96:k7:s2:bn0:pvalid:re"
    assert (squeezenet.out_h, squeezenet.out_w) == (109, 109)
    table = load_table("x86_64")
    shuffle = arch_signatures(ZOO["shufflenet_v2_x1_0"]())
    assert table.entries[shuffle[1].key]["source"] == "measured"  # its max pooling


@pytest.mark.parametrize("padding", ["same", "valid", "ceil"])
def test_out_size_is_what_torch_pools_to(padding: str) -> None:
    for kernel in (1, 3, 5):
        for stride in (1, 2, 3):
            pool = nn.MaxPool2d(
                kernel,
                stride,
                kernel // 2 if padding == "same" else 0,
                ceil_mode=padding == "ceil",
            )
            for side in range(1, 30):
                expected = out_size(side, kernel, stride, padding)
                if expected < 1:  # nothing left: torch refuses the input
                    with pytest.raises(RuntimeError):
                        pool(torch.zeros(1, 1, side, side))
                    continue
                out = pool(torch.zeros(1, 1, side, side)).shape[-1]
                assert expected == out, (kernel, stride, side)


SIGS = [
    stem_signature(Stem(96, 7, 2, padding="valid", bn=False), (3, 41, 38)),
    stem_signature(Stem(16, 4, 2, padding="valid"), (3, 17, 16)),
    block_signature(MaxPoolBlock(3, 2, 24, "ceil"), 14, 13, 24),
    block_signature(MaxPoolBlock(5, 2, 24, "valid"), 14, 13, 24),
    block_signature(FireBlock(16, 128), 13, 13, 96),
    OpSignature("conv_classifier", 13, 11, 64, 10, act="relu"),
]


@pytest.mark.parametrize("sig", SIGS, ids=str)
def test_each_new_operator_counts_and_prices_what_its_module_holds(sig: OpSignature) -> None:
    module = build_op(sig, dropout=0.5).eval()
    with torch.no_grad():
        out = module(torch.randn(1, sig.in_c, sig.in_h, sig.in_w))
    assert tuple(out.shape[1:]) == (sig.out_c, sig.out_h, sig.out_w)
    assert op_params(sig) == sum(p.numel() for p in module.parameters())
    assert op_macs(sig) == module_macs(module, (sig.in_c, sig.in_h, sig.in_w))
    work = op_work(sig)
    macs = sum(work.get(name, 0.0) for name in ("full_conv_macs", "pointwise_macs"))
    assert macs == op_macs(sig)
    for target in ("armv8", "x86_64"):
        ms = load_table(target).price([sig]).total_ms
        assert math.isfinite(ms) and ms > 0


def test_the_conv_classifier_drops_out_before_its_convolution_and_pools_after() -> None:
    model = build_model(ZOO["squeezenet1_0"](), (3, 64, 64), 10)
    last = model.features[-1]
    assert [type(m) for m in last] == [nn.Dropout, nn.Conv2d, nn.ReLU]
    assert last[0].p == 0.5 and last[1].bias is not None and last[1].out_channels == 10
    assert len(model.classifier) == 0
    sigs = arch_signatures(model.arch, (3, 64, 64), 10)
    assert [sig.kind for sig in sigs[-2:]] == ["conv_classifier", "pool"]


def test_an_input_too_small_is_refused_before_anything_is_built() -> None:
    for name, smallest in (("squeezenet1_0", 21), ("squeezenet1_1", 17)):
        arch = ZOO[name]()
        with pytest.raises(InputError, match="too small for this architecture"):
            arch_signatures(arch, (3, smallest - 1, smallest - 1))
        model = build_model(arch, (3, smallest, smallest), 10).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, smallest, smallest)).shape == (1, 10)
    assert set(ZOO) - set(zoo_at((3, 20, 20))) == {"squeezenet1_0"}
    assert set(zoo_at((3, 224, 224))) == set(ZOO)


def test_priced_on_both_tables_and_no_baseline_under_the_usual_budget() -> None:
    v10, v11 = ZOO["squeezenet1_0"](), ZOO["squeezenet1_1"]()
    for target in ("armv8", "x86_64"):
        table = load_table(target)
        assert 0 < table.predict(v11).total_ms < table.predict(v10).total_ms
        usual = Pricer(SearchConfig(budget_mflops=150.0, target=target), table)
        assert not usual.estimate(v11).feasible and not usual.estimate(v10).feasible
        wide = Pricer(SearchConfig(budget_mflops=400.0, target=target), table)
        assert wide.estimate(v11).feasible and not wide.estimate(v10).feasible
    # No built-in space expresses it, so a wide budget would queue it by its zoo name.
    assert all(load_space(name).params_of(v11) is None for name in builtin_spaces())


def test_a_space_may_use_the_new_stem_and_head_and_lists_their_operators() -> None:
    import random

    from nas.evaluators.latency.networks import SeededSuggester

    space = space_from_dict(
        {
            "name": "squeeze",
            "stem": {"channels": 32, "kernel": 3, "padding": "valid", "bn": False},
            "head": {"conv_channels": 0, "classifier": "conv", "dropout": 0.5},
            "stages": [
                {"depth": 1, "width": 32, "stride": 2, "kind": "maxpool", "kernel": [3]},
                {"depth": [1, 2], "width": [64, 96], "stride": 1, "kind": "fire"}
                | {"squeeze": [8, 16], "act": ["relu"]},
            ],
        }
    )
    listed = {sig.key for sig in space.signatures()}
    for seed in range(5):
        arch = space.sample(SeededSuggester(random.Random(seed)))
        assert {sig.key for sig in arch_signatures(arch)} <= listed
        assert Arch.from_string(arch.to_string()) == arch


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_export_to_onnx_passes_its_check(name: str, tmp_path: Path) -> None:
    import onnx

    spec = ModelSpec(ZOO[name](), (3, 64, 64), 10)
    check = export(build(spec), spec, "onnx", tmp_path / "m.onnx", {"arch": name})
    assert check is not None and check.tolerance_ok
    onnx.checker.check_model(onnx.load(tmp_path / "m.onnx"))
