"""A zoo network the training input is too small for is left out of what trains it, in one line.

SqueezeNet's unpadded stem and ceil-mode pools leave nothing of a small input (21 pixels a side
for 1.0, 17 for 1.1 with its strides as deployed); a search's proxy input or a finalize's
training input can be smaller. The warm start and finalize leave such a network out rather than
queue a run that fails every attempt, and say which, where the stride plan decides what the
network sees.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from rich.console import Console
from tiny_search import TINY_SEARCH

from nas.config import SearchConfig
from nas.errors import InputError
from nas.evaluators.latency import load_table
from nas.evaluators.recipe import Recipe
from nas.finalize import plan_picks, trainable_zoo, zoo_under_budget
from nas.lookup import evaluation_data
from nas.monitor import SearchMonitor
from nas.pricing import Pricer
from nas.proposals import Proposer, cannot_train, spread_over_latency
from nas.recipes import recipe_for
from nas.recorder import Recorder
from nas.search import search
from nas.search_spaces.builder import build_model
from nas.search_spaces.space import load_space
from nas.search_spaces.zoo import ZOO
from nas.study import open_study

TARGET = "armv8"


@pytest.fixture(scope="module")
def at_squeezenet() -> dict:
    """A warm start on the tiny space whose latency budget is SqueezeNet 1.1's own: of the zoo
    networks it admits, SqueezeNet 1.1 is the slowest, so one baseline (always the slowest,
    `spread_over_latency`) is SqueezeNet 1.1 wherever the proxy input can take it."""
    pricer = Pricer(SearchConfig(target=TARGET), load_table(TARGET))
    budget_ms = pricer.estimate(ZOO["squeezenet1_1"]()).latency_ms
    return dict(
        TINY_SEARCH, target=TARGET, budget_mflops=None, budget_ms=budget_ms, warm_start=True
    )


def queue(settings: dict) -> tuple[list[str], list[str], dict[str, float]]:
    """The baselines the product's proposer queues on an in-memory study, on the shipped images;
    the lines it says; and every zoo network's latency within the budget."""
    config = SearchConfig(**settings)
    space, table = load_space(config.space), load_table(config.target)
    recipe = recipe_for(config)
    data, _ = evaluation_data(config, space)
    study = open_study(config, optuna.storages.InMemoryStorage(), recipe)
    recorder = Recorder(study, config, space=space, table=table, recipe=recipe, data=data)
    out = io.StringIO()
    monitor = SearchMonitor(config.trials, console=Console(file=out, width=300), live=False)
    proposer = Proposer(study, config, space=space, table=table, recorder=recorder, monitor=monitor)
    proposer.enqueue_baselines()
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    within = {}
    for name, factory in ZOO.items():
        cost = proposer.pricer.estimate(factory())
        if cost.feasible:
            within[name] = cost.latency_ms
    return [t.user_attrs["baseline"] for t in waiting], out.getvalue().splitlines(), within


def test_a_baseline_the_proxy_input_is_too_small_for_is_left_out_and_said(at_squeezenet) -> None:
    queued, said, within = queue(dict(at_squeezenet, baselines=1))
    assert max(within, key=within.get) == "squeezenet1_1"
    assert queued == ["squeezenet1_1"] and said == []  # 28x28, strides as deployed: it fits

    queued, said, within = queue(dict(at_squeezenet, baselines=1, proxy_resolution=16))
    others = {name: ms for name, ms in within.items() if name != "squeezenet1_1"}
    assert queued == spread_over_latency(others, 1)  # the slowest that trains, in its place
    assert said == [
        "baselines: squeezenet1_1 within the budget but left out: the 16x16 proxy input is too "
        "small for it; --proxy-resolution 17 takes it"
    ]
    every, said, _ = queue(dict(at_squeezenet, baselines="all", proxy_resolution=16))
    assert sorted(every) == sorted(others) and len(said) == 1


def test_the_stride_plan_decides_what_the_network_sees(at_squeezenet) -> None:
    # At 16x16 the stride plan frees SqueezeNet 1.1's stem stride, which leaves it enough.
    queued, said, _ = queue(dict(at_squeezenet, baselines=1, proxy_resolution=16, min_final_map=2))
    assert queued == ["squeezenet1_1"] and said == []
    recipe = Recipe(resolution=16, min_final_map=2)
    proxy = recipe.proxy_arch(ZOO["squeezenet1_1"](), (1, 28, 28))
    assert proxy.stem.stride == 1
    model = build_model(proxy, (1, 16, 16), 10).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 10)


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
@pytest.mark.parametrize("side", [8, 12, 16, 17, 20, 21])
@pytest.mark.parametrize("plan", [0, 2, 100])
def test_refused_exactly_where_torch_cannot_run_it(name: str, side: int, plan: int) -> None:
    """`cannot_train` against the network itself: it builds and runs where it is accepted, and
    fails where it is refused. A plan of 100 frees every stride, where each stride-1 pool still
    takes two pixels off: more freed strides is not always a larger final map."""
    recipe = Recipe(resolution=side, min_final_map=plan)
    data_shape = (1, 28, 28)
    arch = recipe.proxy_arch(ZOO[name](), data_shape)
    inputs = torch.zeros(1, 1, side, side)
    if cannot_train(ZOO[name](), recipe, data_shape) is None:
        with torch.no_grad():
            assert build_model(arch, (1, side, side), 10).eval()(inputs).shape == (1, 10)
    else:
        with pytest.raises((InputError, RuntimeError)), torch.no_grad():
            build_model(arch, (1, side, side), 10).eval()(inputs)


@pytest.mark.slow
def test_a_warm_start_at_a_small_proxy_trains_the_others_and_finalize_plans_by_its_input(
    local_ray, at_squeezenet, tmp_path: Path, capsys
) -> None:
    name = f"small-proxy-{uuid.uuid4().hex[:8]}"
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    config = SearchConfig(
        **dict(at_squeezenet, baselines=1, proxy_resolution=16, trials=1),
        storage=storage,
        study=name,
        out=str(tmp_path / "out"),
    )
    result = search(config)
    assert "squeezenet1_1 within the budget but left out" in capsys.readouterr().err
    study = optuna.load_study(study_name=name, storage=storage)
    baselines = [t for t in study.trials if t.user_attrs.get("baseline")]
    assert len(baselines) == 1 and baselines[0].user_attrs["baseline"] != "squeezenet1_1"
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert result.n_failed == 0 and result.n_baselines == 1 and result.n_trained == 1
    assert baselines[0].user_attrs["proxy_input"] == [1, 16, 16]

    # Finalize trains at the images' own 28x28, which takes SqueezeNet 1.1; images of 16x16
    # would not, and then no searched pick is chosen to challenge it.
    under = {pick.label for pick in zoo_under_budget(study, config)}
    assert "squeezenet1_1" in under
    planned = {pick.baseline for pick in plan_picks(study, 1) if pick.baseline}
    assert planned == under
    small = {pick.baseline for pick in plan_picks(study, 1, data_shape=(1, 16, 16))}
    assert small == (under - {"squeezenet1_1"}) | {None}
    recipe = Recipe(min_final_map=config.min_final_map or 0)
    kept, left_out = trainable_zoo(zoo_under_budget(study, config), recipe, (1, 16, 16))
    assert left_out == ["squeezenet1_1"] and len(kept) == len(under) - 1
