"""The report's interactive page: Optuna's own plotly figures, in one self-contained HTML file.

Optuna's plots read objective values, and a study's values depend on how it was searched (in
``reward`` mode there is a single one), while the report compares every study on accuracy
against cost. So the figures are drawn from a shadow study in memory that holds exactly the
trained trials with (accuracy, cost) as values, numbered as in the real study (every other trial
is added as failed, which the plots skip), and carrying the user attributes worth hovering over.
Plotly's JavaScript is embedded once, so the page works offline and can be mailed as one file.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState, create_trial

from nas.outputs import accuracy_text, seeds_text, versus_text
from nas.reporting.data import ReportData, ZooMark
from nas.reporting.final import final_html
from nas.trials import TrialAttrs

HOVER_ATTRS = (
    "arch",
    "zoo",
    "accuracy",
    "accuracy_interval",
    "val_count",
    "latency_ms",
    "mflops",
    "params",
    "target",
    "train_seconds",
    "worker_host",
    "outcome",
)
_ZOO = "#1f6fb4"
_BUDGET = "#c0392b"


def write_html(data: ReportData, study: optuna.Study, path: Path) -> Path:
    """Write the Pareto plots (latency and MFLOPs), the history and the front table to `path`."""
    sections = [
        (
            "pareto-latency",
            f"Accuracy against latency on {data.target}",
            _pareto(data, study, "latency_ms", f"latency on {data.target} (ms)", data.budget_ms),
        ),
        (
            "pareto-mflops",
            "Accuracy against MFLOPs (millions of multiply-adds)",
            _pareto(data, study, "mflops", "MFLOPs", data.budget_mflops),
        ),
        ("history", "Optimisation history", _history(data, study)),
    ]
    parts = [
        f"<h1>{html.escape(data.study_name)}</h1>",
        f"<p>storage {html.escape(data.storage)}; target {html.escape(data.target)}; "
        f"cost at 3x{data.input_size}x{data.input_size}; accuracy on the validation split "
        f"of {html.escape(data.dataset.name or 'the proxy data')}.</p>",
        _front_table(data),
        final_html(study),
    ]
    for i, (anchor, title, figure) in enumerate(sections):
        body = figure.to_html(
            full_html=False, include_plotlyjs=(i == 0), div_id=anchor, config={"displaylogo": False}
        )
        parts.append(f"<h2>{html.escape(title)}</h2>\n{body}")
    path.write_text(_PAGE.format(title=html.escape(data.study_name), body="\n".join(parts)))
    return path


def _pareto(
    data: ReportData, study: optuna.Study, cost: str, cost_name: str, budget: float | None
) -> go.Figure:
    shadow = _shadow_study(study, data, cost)
    figure = optuna.visualization.plot_pareto_front(
        shadow,
        targets=lambda trial: (trial.values[1], trial.values[0]),
        target_names=[cost_name, "validation accuracy"],
    )
    _add_zoo(figure, data.zoo, cost)
    if budget:
        figure.add_vline(
            x=budget,
            line_dash="dash",
            line_color=_BUDGET,
            annotation_text=f"budget {budget:g}",
            annotation_position="top left",
        )
    figure.update_layout(
        title=None,
        height=600,
        margin=dict(t=30),
        legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
    )
    figure.update_yaxes(tickformat=".1%")
    return figure


def _history(data: ReportData, study: optuna.Study) -> go.Figure:
    shadow = _shadow_study(study, data, None)
    figure = optuna.visualization.plot_optimization_history(
        shadow, target_name="validation accuracy"
    )
    figure.update_layout(title=None, height=480, margin=dict(t=30))
    figure.update_yaxes(tickformat=".1%")
    return figure


def _shadow_study(study: optuna.Study, data: ReportData, cost: str | None) -> optuna.Study:
    """Trained trials valued (accuracy, cost), or accuracy alone (so Optuna draws the best-so-far
    line of a single objective) when `cost` is None."""
    trained = {row.number: row for row in data.trained}
    directions = ["maximize"] if cost is None else ["maximize", "minimize"]
    with _quiet_optuna():
        shadow = optuna.create_study(directions=directions, study_name=data.study_name)
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        row = trained.get(trial.number)
        if row is None:
            shadow.add_trial(create_trial(state=TrialState.FAIL))
            continue
        record = TrialAttrs.of(trial)
        attrs = {
            key: getattr(record, key) for key in HOVER_ATTRS if getattr(record, key) is not None
        }
        values = [row.accuracy] + ([] if cost is None else [getattr(row, cost)])
        shadow.add_trial(create_trial(values=values, user_attrs=attrs))
    return shadow


def _add_zoo(figure: go.Figure, marks: list[ZooMark], cost: str) -> None:
    """Trained zoo networks as stars; the others as dotted lines on the cost axis alone."""

    def at(mark: ZooMark) -> float | None:
        return mark.latency_ms if cost == "latency_ms" else mark.mflops

    trained = [m for m in marks if m.accuracy is not None]
    if trained:
        figure.add_trace(
            go.Scatter(
                x=[at(m) for m in trained],
                y=[m.accuracy for m in trained],
                mode="markers+text",
                name="zoo (trained here)",
                text=[m.name for m in trained],
                textposition="top right",
                marker=dict(symbol="star-open", size=17, color=_ZOO, line=dict(width=2)),
                hovertext=[f"{m.name} (trial {m.trial})<br>{m.arch}" for m in trained],
                hoverinfo="text",
            )
        )
    # The lines and labels add_vline would draw, set in one layout update: add_vline validates
    # every shape already on the figure, so a call per network costs the square of the zoo.
    untrained = [(m, at(m)) for m in marks if m.accuracy is None and at(m) is not None]
    lines = [
        dict(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="y domain", opacity=0.5,
             line=dict(color=_ZOO, dash="dot"))
        for _, x in untrained
    ]  # fmt: skip
    labels = [
        dict(x=x, xref="x", y=0, yref="y domain", xanchor="left", yanchor="bottom",
             text=f"{m.name} (not trained)", textangle=-90, showarrow=False,
             font=dict(color=_ZOO, size=9))
        for m, x in untrained
    ]  # fmt: skip
    figure.update_layout(
        shapes=[*figure.layout.shapes, *lines],
        annotations=[*figure.layout.annotations, *labels],
    )


def _front_table(data: ReportData) -> str:
    head = "".join(
        f"<th>{name}</th>"
        for name in (
            "trial",
            "accuracy [95% CI]",
            "over seeds",
            "vs cheaper",
            "latency ms",
            "MFLOPs",
            "params",
            "zoo",
            "arch",
        )
    )
    rows = "".join(
        f"<tr><td>{row.number}</td><td>{accuracy_text(row)}</td><td>{seeds_text(row)}</td>"
        f"<td>{versus_text(row)}</td><td>{row.latency_ms:.2f}</td><td>{row.mflops:.1f}</td>"
        f"<td>{row.params:,}</td><td>{html.escape(data.zoo_name(row) or '')}</td>"
        f"<td><code>{html.escape(row.arch)}</code></td></tr>"
        for row in data.front
    )
    return f"<h2>Pareto front (feasible, trained)</h2><table><tr>{head}</tr>{rows}</table>"


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Creating the shadow study would log a line that means nothing to the user."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }}
code {{ font-size: 11px; word-break: break-all; }}
</style></head>
<body>
{body}
</body></html>
"""
