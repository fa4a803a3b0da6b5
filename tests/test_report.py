"""`nas report`: the files a user takes away from a search, and its bad-input paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from PIL import Image
from results_studies import MadeStudy, make_search_study

from nas.cli import main
from nas.front import TrainedRow, pareto_rows
from nas.outputs import accuracy_text, seeds_text, versus_text
from nas.reporting import collect
from nas.search_spaces.zoo import ZOO


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> MadeStudy:
    return make_search_study(tmp_path_factory.mktemp("report") / "nas.db")


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_report_writes_markdown_pngs_and_html(
    made: MadeStudy, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the storage's only study, into results/<study>/ by default
    code, stdout, err = run(["report", "--storage", made.url], capsys)
    assert code == 0, err
    out = Path("results") / made.name
    study = optuna.load_study(study_name=made.name, storage=made.url)
    front = pareto_rows(study)
    assert "Pareto front of demo" in stdout and str(out / "report.md") in stdout.replace("\n", "")

    markdown = (out / "report.md").read_text()
    for row in front:
        assert (
            f"| {row.number} | {accuracy_text(row)} | {seeds_text(row)} | {versus_text(row)} | "
            f"{row.latency_ms:.2f} |"
        ) in markdown
        assert row.accuracy_low < row.accuracy < row.accuracy_high
        assert f"{row.accuracy:.1%} [{row.accuracy_low * 100:.1f}" in markdown
        assert f"`{row.arch}`" in markdown
    links = re.findall(r"\]\(([^)]+)\)", markdown)
    assert {
        "report.html",
        "accuracy_vs_latency.png",
        "accuracy_vs_mflops.png",
        "history.png",
    } <= set(links)
    assert all((out / link).is_file() for link in links)

    for name in ("accuracy_vs_latency", "accuracy_vs_mflops", "history"):
        path = out / f"{name}.png"
        assert path.stat().st_size > 20_000
        with Image.open(path) as image:
            image.load()
            assert image.format == "PNG" and image.width >= 900 and image.height >= 600
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
            assert colours is not None and len(colours) > 200  # drawn on, not a blank canvas

    html = (out / "report.html").read_text()
    assert len(html) > 1_000_000 and html.count("plotly.js v") >= 1  # plotly.js embedded once
    assert html.count("Plotly.newPlot") == 3 and '<script src="http' not in html
    for row in front:
        assert row.arch in html  # the front table and each point's hover text
    assert "mobilenet_v3_small" in html and "mnasnet0_5 (not trained)" not in html


def test_report_marks_zoo_networks_from_trials_or_on_the_cost_axes(made: MadeStudy) -> None:
    study = optuna.load_study(study_name=made.name, storage=made.url)
    data = collect(study, made.url)
    marks = {mark.name: mark for mark in data.zoo}
    assert set(marks) == set(ZOO)
    # Trained: one by its zoo attribute, one recognised by its arch string alone.
    assert marks["mobilenet_v3_small"].trial == made.numbers["zoo"]
    assert marks["mnasnet0_5"].trial == made.numbers["zoo_by_arch"]
    assert (
        marks["mnasnet0_5"].accuracy
        == study.trials[made.numbers["zoo_by_arch"]].user_attrs["accuracy"]
    )
    # Not trained (mobilenet_v2 was priced over budget): cost only, from the armv8 table.
    assert marks["mobilenet_v2"].trial is None and marks["mobilenet_v2"].accuracy is None
    assert marks["mobilenet_v2"].latency_ms == pytest.approx(
        study.trials[made.numbers["infeasible"]].user_attrs["latency_ms"], rel=1e-6
    )
    assert data.front == sorted(data.front, key=lambda row: row.latency_ms)
    assert [row.number for row in data.front] == [row.number for row in pareto_rows(study)]
    assert data.zoo_name(TrainedRow.of(study.trials[1])) == "mnasnet0_5"


def test_front_rows_serialize_as_pareto_json_always_had_them(made: MadeStudy) -> None:
    study = optuna.load_study(study_name=made.name, storage=made.url)
    rows = pareto_rows(study)
    assert rows and all(isinstance(row, TrainedRow) for row in rows)
    for row in rows:
        stored = row.to_dict()
        assert list(stored) == [
            "number",
            "accuracy",
            "accuracy_low",
            "accuracy_high",
            "val_count",
            "seeds",
            "accuracy_mean",
            "accuracy_std",
            "seed_accuracies",
            "vs_cheaper",
            "p_vs_cheaper",
            "latency_ms",
            "mflops",
            "params",
            "zoo",
            "baseline",
            "arch",
        ]
        assert json.loads(json.dumps(stored)) == stored
        assert stored["seed_accuracies"] == [row.accuracy] and stored["seeds"] == 1
        assert stored["accuracy_mean"] == round(row.accuracy, 6)
    assert [row.vs_cheaper for row in rows][0] is None
    assert all(row.vs_cheaper in ("better", "tie") for row in rows[1:])


def test_report_bad_input_is_one_line_and_exit_2(made: MadeStudy, tmp_path: Path, capsys) -> None:
    def error(args: list[str]) -> str:
        code, _, err = run(args, capsys)
        assert code == 2 and err.count("\n") == 1 and err.startswith("nas: error: "), err
        return err

    assert "no study database at" in error(["report", "--storage", str(tmp_path / "none.db")])
    assert not (tmp_path / "none.db").exists()  # reading never creates a database
    assert "available studies: demo" in error(["report", "--storage", made.url, "--study", "nope"])
    two = f"sqlite:///{tmp_path / 'two.db'}"
    for name in ("a", "b"):
        optuna.create_study(study_name=name, storage=two)
    assert "pass --study NAME (one of: a, b)" in error(["report", "--storage", two])
    assert "has no trained trials yet" in error(["report", "--storage", two, "--study", "a"])
