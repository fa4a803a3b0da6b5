"""Zero-cost scores: finite, deterministic, blind to the caller's model state, and telling a
network with no layers apart from one with many, as each score's definition implies."""

from __future__ import annotations

import math

import pytest
import torch

from nas.evaluators.nasbench_macro import NasBenchMacro
from nas.evaluators.zero_cost import SCORES, naswot, synflow, zero_cost_scores
from nas.search_spaces.builder import build_model

CIFAR = (3, 32, 32)


@pytest.fixture(scope="module")
def table() -> NasBenchMacro:
    return NasBenchMacro.load()


def _model(table: NasBenchMacro, key: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(table.arch_of(key), CIFAR, 10)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn((n, *CIFAR), generator=generator), torch.arange(n) % 10


def test_scores_are_finite_repeatable_and_leave_the_model_alone(table: NasBenchMacro) -> None:
    model = _model(table, "01010100")
    before = {name: value.clone() for name, value in model.state_dict().items()}
    images, labels = _batch()
    first = zero_cost_scores(model, images, labels)
    second = zero_cost_scores(model, images, labels)
    assert set(first) == set(SCORES)
    assert all(math.isfinite(value) for value in first.values()), first
    assert first == second
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in model.parameters())


def test_more_layers_score_higher(table: NasBenchMacro) -> None:
    """Every searchable layer a skip against every one an e6 k5 inverted residual: synflow sums
    over more weights on longer paths, and NASWOT sees more activation units telling images
    apart, so both must rank the full network above the empty one."""
    images, labels = _batch()
    empty, full = _model(table, "00000000"), _model(table, "22222222")
    assert synflow(full, images, labels) > synflow(empty, images, labels)
    assert naswot(full, images, labels) > naswot(empty, images, labels)


def test_unknown_score_is_refused(table: NasBenchMacro) -> None:
    images, labels = _batch()
    with pytest.raises(ValueError, match="unknown zero-cost score"):
        zero_cost_scores(_model(table, "00000000"), images, labels, names=("snip",))
