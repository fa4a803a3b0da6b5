"""The zoo is faithful to torchvision: exact parameter counts, multiply-adds within 2%."""

from __future__ import annotations

import pytest

from nas.evaluators.flops import count_cost
from nas.search_spaces.zoo import ZOO

# torchvision's published figures at 224x224x3, 1000 classes.
PUBLISHED = {
    "mobilenet_v2": (3_504_872, 0.301),
    "mobilenet_v3_large": (5_483_032, 0.217),
    "mobilenet_v3_small": (2_542_856, 0.057),
    "mnasnet1_0": (4_383_312, 0.314),
    "mnasnet0_75": (3_170_208, 0.215),
    "mnasnet0_5": (2_218_512, 0.104),
    "squeezenet1_0": (1_248_424, 0.82),
    "squeezenet1_1": (1_235_496, 0.35),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_zoo_matches_torchvision(name: str) -> None:
    params, gflops = PUBLISHED[name]
    cost = count_cost(ZOO[name]())
    assert cost.params == params
    assert cost.mflops / 1000 == pytest.approx(gflops, rel=0.02)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_network_round_trips_and_shrinks_with_width(name: str) -> None:
    from nas.search_spaces.arch import Arch

    arch = ZOO[name]()
    assert Arch.from_string(arch.to_string()) == arch


def test_width_multipliers_order_costs() -> None:
    costs = [
        count_cost(ZOO[n]()).mflops
        for n in ("mobilenet_v2_0.5", "mobilenet_v2_0.75", "mobilenet_v2")
    ]
    assert costs == sorted(costs)
