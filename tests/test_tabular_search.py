"""`nas search --evaluator table`: the real search (pricing, study, driver, Ray, confirm, report)
with training swapped for a lookup in NAS-Bench-Macro's published results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.cli import main
from nas.config import SearchConfig
from nas.evaluators.nasbench_macro import PUBLISHED_RECIPE, NasBenchMacro
from nas.search import search
from nas.search_spaces.arch import Arch
from nas.study import CONFIRM_SUFFIX
from nas.trials import Outcome, TrialAttrs

TABLE_SEARCH = dict(
    space="nasbench-macro",
    evaluator="table",
    input_size=32,
    budget_mflops=40.0,
    trials=12,
    workers=2,
    confirm_seeds=1,
    seed=4,
)


@pytest.fixture(scope="module")
def table() -> NasBenchMacro:
    return NasBenchMacro.load()


def test_a_table_search_reads_the_published_runs(
    local_ray, tmp_path: Path, table: NasBenchMacro
) -> None:
    config = SearchConfig(
        **TABLE_SEARCH, storage=f"sqlite:///{tmp_path / 'nas.db'}", out=str(tmp_path / "out")
    )
    result = search(config)
    assert result.n_trained == 12 and result.pareto and result.n_failed == 0
    study = optuna.load_study(study_name=result.study_name, storage=config.storage)
    trained = [
        TrialAttrs.of(trial)
        for trial in study.get_trials(states=(TrialState.COMPLETE,))
        if TrialAttrs.of(trial).outcome is Outcome.TRAINED
    ]
    networks = set()
    for attrs in trained:
        arch = Arch.from_string(attrs.arch)
        published = table.lookup(arch)
        assert attrs.accuracy == published.runs[4 % 3]  # the run the training seed stands for
        assert attrs.val_count == 10_000 and attrs.cost_input == [3, 32, 32]
        assert attrs.mflops == pytest.approx(published.flops / 1e6, abs=1e-4)  # 10-way classifier
        assert attrs.params == published.params
        assert attrs.recipe == {**attrs.recipe, **PUBLISHED_RECIPE, "seed": 4}
        networks.add(arch.network_key())
    assert len(networks) == len(trained)  # one network, however its skips sit, trains once
    confirm = optuna.load_study(
        study_name=result.study_name + CONFIRM_SUFFIX, storage=config.storage
    )
    for run in confirm.get_trials(states=(TrialState.COMPLETE,)):
        attrs = TrialAttrs.of(run)
        assert attrs.seed != 4
        assert attrs.accuracy == table.lookup(Arch.from_string(attrs.arch)).runs[attrs.seed % 3]
    assert study.user_attrs["dataset"]["name"] == "nasbench-macro"
    assert not [t for t in study.trials if TrialAttrs.of(t).baseline]  # the zoo is not in it
    pareto = json.loads((tmp_path / "out" / "pareto.json").read_text())
    assert pareto["config"]["evaluator"] == "table"


def test_the_mean_on_request(local_ray, tmp_path: Path, table: NasBenchMacro) -> None:
    config = SearchConfig(
        **{**TABLE_SEARCH, "evaluator": "table-mean", "trials": 3, "confirm_seeds": 0},
        storage=f"sqlite:///{tmp_path / 'nas.db'}",
        out=str(tmp_path / "out"),
    )
    result = search(config)
    for row in result.pareto:
        assert row.accuracy == pytest.approx(table.lookup(Arch.from_string(row.arch)).mean)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--space", "tiny"], "exist for the nasbench-macro space only: add --space"),
        (["--input-size", "224"], "run on 32x32 images: add --input-size 32"),
        (["--dataset", "cifar100"], "reads CIFAR-10 accuracies, not cifar100's"),
        (["--finalize", "2"], "--finalize trains networks on images"),
    ],
)
def test_what_a_table_cannot_answer_is_refused_at_once(
    flags: list[str], message: str, tmp_path: Path, capsys
) -> None:
    base = {"--space": "nasbench-macro", "--input-size": "32", "--evaluator": "table"}
    for flag, value in zip(flags[::2], flags[1::2]):
        base[flag] = value
    args = ["search", "--budget-mflops", "40", *(x for pair in base.items() for x in pair)]
    args += ["--storage", f"sqlite:///{tmp_path / 'nas.db'}", "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exited:
        main(args)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err, err
    assert err.count("\n") == 1 and err.startswith("nas: error: "), err


def test_the_regret_curves_are_drawn_from_the_raw_results(tmp_path: Path) -> None:
    """Every prefix of a search's trained candidates is judged, and the figure is written from
    the results file's records alone."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from tabular_search import MIN_SEEDS_TESTED, Truth, curves, hypervolume, plot_curves

    mean = {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}
    latency = {"a": 4.0, "b": 2.0, "c": 3.0, "d": 1.0}
    scale = (0.6, 0.9, 1.0, 4.0)
    true_area = hypervolume([(mean[k], latency[k]) for k in mean], scale)
    truths = {"55 MFLOPs": Truth(mean, latency, 0.9, true_area, scale)}
    runs = {
        f"55 MFLOPs/{strategy}/n2/seed{seed:02d}": {
            "strategy": strategy,
            "budget": {"budget_mflops": 55.0},
            "seed": seed,
            "trained": trained,
            "asks": [1, 2],
            "stopped": None,
            "cpu_seconds": 0.1,
        }
        for strategy, trained in (("random", [["d", 0.6], ["a", 0.9]]), ("default", [["b", 0.8]]))
        for seed in range(MIN_SEEDS_TESTED)
    }
    data = curves(runs, truths)
    assert data["55 MFLOPs", "random", "regret_pp"] == {
        1: [pytest.approx(30.0)] * MIN_SEEDS_TESTED,
        2: [0.0] * MIN_SEEDS_TESTED,
    }
    # a and d alone dominate no area in the unit square: the whole true front is missed
    assert (
        data["55 MFLOPs", "random", "hv_regret"][2]
        == [pytest.approx(100 * true_area, abs=1e-3)] * MIN_SEEDS_TESTED
    )
    assert list(data["55 MFLOPs", "default", "regret_pp"]) == [1]
    path = tmp_path / "curves.png"
    assert plot_curves(runs, truths, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plot_curves({}, truths, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
