"""One study, one set of counts: the search's closing lines, `nas report`, the plots' legends
and pareto.json all say the same numbers (`nas.counts`)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from results_studies import make_search_study

from nas.cli import main
from nas.commands.search import _print_result
from nas.counts import StudyCounts
from nas.front import pareto_rows
from nas.outputs import write_outputs
from nas.reporting import collect
from nas.reporting.figures import draw_history, draw_tradeoff
from nas.search import SearchResult


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[optuna.Study, str]:
    made = make_search_study(tmp_path_factory.mktemp("counts") / "nas.db")
    return optuna.load_study(study_name=made.name, storage=made.url), made.url


def test_the_counts_of_the_made_study_are_what_it_holds(study) -> None:
    counts = StudyCounts.of(study[0])
    # Five sampled + two zoo networks trained to the end (neither zoo one is a warm-start
    # baseline), one stopped early, one over budget, one failed (results_studies).
    assert counts.trained == 7 and counts.stopped_early == 1
    assert counts.searched == 8 and counts.baselines == 0
    assert counts.over_budget == 1 and counts.failed == 1
    assert counts.searched + counts.baselines == counts.trained + counts.stopped_early
    assert counts.front == len(pareto_rows(study[0])) > 0


def test_search_summary_report_legends_and_pareto_json_agree(study, tmp_path: Path, capsys) -> None:
    found, url = study
    counts = StudyCounts.of(found)
    rows = pareto_rows(found)

    write_outputs(found, tmp_path / "search", rows)
    document = json.loads((tmp_path / "search" / "pareto.json").read_text())
    assert document["counts"] == counts.to_dict()
    assert len(document["pareto"]) == counts.front

    _print_result(
        SearchResult(
            study_name=found.study_name,
            storage=url,
            out_dir=tmp_path / "search",
            pareto=rows,
            n_trained=counts.searched,
            n_infeasible=counts.over_budget,
            n_failed=counts.failed,
            wall_seconds=60.0,
            counts=counts,
        )
    )
    searched = capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["report", "--storage", url, "--out", str(tmp_path / "report")])
    reported = capsys.readouterr().out
    assert exited.value.code == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    for text in (searched, reported):
        flat = " ".join(text.split())
        assert counts.sentence() in flat and counts.front_title() in flat
    assert counts.sentence() in markdown and counts.front_title() in markdown

    data = collect(found, url)
    assert data.counts == counts
    assert (len(data.front), len(data.trained)) == (counts.front, counts.trained)
    for cost, front_label in (
        ("latency_ms", f"Pareto front ({counts.front})"),
        ("mflops", f"Pareto front ({counts.front}), on latency"),
    ):
        labels = _legend_labels(lambda ax: draw_tradeoff(ax, data, cost, None, cost))
        assert front_label in labels and f"trained to the end ({counts.trained})" in labels
    assert f"trained to the end ({counts.trained})" in _legend_labels(
        lambda ax: draw_history(ax, data)
    )


def _legend_labels(draw) -> list[str]:
    figure = Figure(layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    draw(ax)
    return [text.get_text() for text in ax.get_legend().get_texts()]
