"""The warm start's zoo baselines: how many, and which, a search trains beside its candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState
from test_reach import proposer_for

from nas.cli import main
from nas.config import DEFAULT_BASELINES, SearchConfig, build_config
from nas.errors import InputError
from nas.evaluators.latency import load_table
from nas.pricing import price
from nas.proposals import spread_over_latency
from nas.search_spaces.space import load_space
from nas.search_spaces.zoo import ZOO


def queued_baselines(**settings) -> list[str]:
    """The baselines the product's proposer queues on an in-memory study, in queue order."""
    # The warm start does not depend on the sampler; NSGA-II's proposer is the cheapest to make.
    config = SearchConfig(
        budget_mflops=150.0, target="armv8", space="mobile", sampler="nsga2", **settings
    )
    proposer = proposer_for(config, load_table(config.target))
    proposer.enqueue_baselines()
    waiting = proposer.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    return [trial.user_attrs["baseline"] for trial in waiting]


def zoo_latencies_within(budget_mflops: float, target: str = "armv8") -> dict[str, float]:
    """Latency of each zoo network within the budget, as fvcore and the table price it."""
    config = SearchConfig(budget_mflops=budget_mflops, target=target)
    table = load_table(target)
    prices = {name: price(factory(), config, table) for name, factory in ZOO.items()}
    return {name: cost.latency_ms for name, cost in prices.items() if cost.feasible}


def test_spread_keeps_both_ends_and_fills_between() -> None:
    latencies = {"a": 1.0, "b": 1.1, "c": 1.2, "d": 5.0, "e": 9.0, "f": 9.5, "g": 10.0}
    assert spread_over_latency(latencies, 3) == ["a", "d", "g"]
    assert spread_over_latency(latencies, 1) == ["g"]  # the one closest to the budget
    assert spread_over_latency(latencies, 2) == ["a", "g"]
    assert spread_over_latency(latencies, 0) == []
    assert spread_over_latency(latencies, None) == sorted(latencies, key=latencies.get)
    assert spread_over_latency(latencies, 7) == spread_over_latency(latencies, 50)
    # The same networks whatever order they come in: the choice never depends on dict order.
    reordered = dict(reversed(list(latencies.items())))
    assert spread_over_latency(reordered, 4) == spread_over_latency(latencies, 4)


def test_spread_is_even_in_latency_not_in_rank() -> None:
    # Nine networks bunched at the fast end and two at the slow end: picking every third by rank
    # would leave the slow half of the range with one yardstick; picking by latency does not.
    latencies = {f"fast{i}": 1.0 + 0.1 * i for i in range(9)} | {"mid": 6.0, "slow": 11.0}
    assert spread_over_latency(latencies, 3) == ["fast0", "mid", "slow"]


@pytest.fixture(scope="module")
def within_150() -> dict[str, float]:
    return zoo_latencies_within(150.0)


def test_default_warm_start_trains_a_spread_of_the_zoo_under_the_budget(
    within_150: dict[str, float],
) -> None:
    within = within_150
    assert len(within) > DEFAULT_BASELINES  # the case the bound exists for
    queued = queued_baselines()
    assert len(queued) == DEFAULT_BASELINES
    assert set(queued) == set(spread_over_latency(within, DEFAULT_BASELINES))
    fastest, slowest = min(within, key=within.get), max(within, key=within.get)
    assert fastest in queued and slowest in queued
    assert all(within[name] <= within[slowest] for name in queued)


def test_all_and_none(within_150: dict[str, float]) -> None:
    within = within_150
    assert sorted(queued_baselines(baselines="all")) == sorted(within)
    assert queued_baselines(baselines=0) == []


@pytest.mark.parametrize("value", [-1, "many", 2.5, True])
def test_a_bad_count_is_refused(value) -> None:
    with pytest.raises(InputError, match="baselines"):
        build_config({"baselines": value}, {})


def test_a_config_file_and_a_flag_mean_the_same(tmp_path: Path) -> None:
    assert build_config({"baselines": "all"}, {}).baselines == "all"
    assert build_config({"baselines": "ALL"}, {}).baselines == "all"
    assert build_config({"baselines": 2}, {}).baselines == 2
    assert build_config({}, {}).baselines == DEFAULT_BASELINES


@pytest.mark.parametrize("value", ["some", "-2"])
def test_the_command_refuses_a_bad_count_in_one_line(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["search", "--baselines", value])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "--baselines" in err and "Traceback" not in err
    assert not (tmp_path / "nas.db").exists()  # refused before a study was opened


def test_the_quick_start_trains_on_part_of_the_embedded_images_unless_told() -> None:
    """The embedded dataset's default subset keeps the README's first command short; 0 takes
    every image, and a named dataset trains on all of its own unless told."""
    from nas.lookup import evaluation_data

    space = load_space("tiny")
    default, _ = evaluation_data(SearchConfig(), space)
    every, _ = evaluation_data(SearchConfig(limit_train=0), space)
    assert len(default.train_labels) == 6000
    assert len(every.train_labels) == 9000
    # The validation split is the same images either way: a subset never moves them.
    assert np.array_equal(default.val_labels, every.val_labels)
    assert np.bincount(default.train_labels).min() >= 590  # stratified: every class kept
    assert SearchConfig(dataset="cifar10").proxy_setting("limit_train") is None
    with pytest.raises(InputError, match="--limit-train"):
        SearchConfig(limit_train=-1)
