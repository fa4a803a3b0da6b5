"""The report's static plots, drawn with matplotlib's Agg canvas.

PNG files go where the interactive HTML cannot: into a README, a paper, a chat. The figures are
built on `Figure` objects rather than pyplot, so drawing them never touches a display or the
process-wide backend of a notebook that calls the report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from nas.front import TrainedRow
from nas.reporting.data import ReportData, ZooMark

_TRIAL = dict(color="#7f8c9a", alpha=0.55, s=22, linewidths=0)
_FRONT = "#d35400"
_ZOO = "#1f6fb4"
_BUDGET = "#c0392b"
_DPI = 130


def write_figures(data: ReportData, out_dir: Path) -> dict[str, Path]:
    """Draw every plot into `out_dir`; returns plot name -> PNG path."""
    cost_note = f"3x{data.input_size}x{data.input_size}"
    plots: dict[str, tuple[Callable[[Axes], None], str]] = {
        "accuracy_vs_latency": (
            lambda ax: _tradeoff(
                ax,
                data,
                "latency_ms",
                data.front,
                data.budget_ms,
                f"latency on {data.target} (ms at {cost_note})",
            ),
            f"{data.study_name}: accuracy against latency on {data.target}",
        ),
        "accuracy_vs_mflops": (
            lambda ax: _tradeoff(
                ax,
                data,
                "mflops",
                data.mflops_front,
                data.budget_mflops,
                f"MFLOPs (millions of multiply-adds at {cost_note})",
            ),
            f"{data.study_name}: accuracy against MFLOPs",
        ),
        "history": (lambda ax: _history(ax, data), f"{data.study_name}: optimisation history"),
    }
    written = {}
    for name, (draw, title) in plots.items():
        figure = Figure(figsize=(9, 5.6), layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        draw(ax)
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_ylabel(_accuracy_label(data))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(True, alpha=0.25)
        path = out_dir / f"{name}.png"
        figure.savefig(path, dpi=_DPI)
        written[name] = path
    return written


def _tradeoff(
    ax: Axes,
    data: ReportData,
    cost: str,
    front: list[TrainedRow],
    budget: float | None,
    xlabel: str,
) -> None:
    """All trained trials, the front as a staircase, the zoo, and the budget if there is one."""
    ax.scatter(
        [getattr(r, cost) for r in data.trained],
        [r.accuracy for r in data.trained],
        label=f"trained trials ({len(data.trained)})",
        **_TRIAL,
    )
    points = [_front_point(r) for r in front]
    xs, ys = [getattr(r, cost) for r in front], [point[0] for point in points]
    ax.step(xs, ys, where="post", color=_FRONT, linewidth=1.4, alpha=0.8)
    ax.scatter(xs, ys, color=_FRONT, s=40, zorder=3, label=f"Pareto front ({len(front)})")
    bounded = [(x, point) for x, point in zip(xs, points) if point[1] is not None]
    if bounded:
        several = any((r.seeds or 1) > 1 for r in front)
        ax.errorbar(
            [x for x, _ in bounded],
            [point[0] for _, point in bounded],
            yerr=_bars([point for _, point in bounded]),
            fmt="none",
            ecolor=_FRONT,
            elinewidth=1,
            capsize=3,
            alpha=0.7,
            zorder=3,
            label="mean +/- std over seeds, or 95% interval of one run"
            if several
            else "95% interval (validation split)",
        )
    for row, y in zip(front, ys):
        tie = " (tie)" if row.vs_cheaper == "tie" else ""
        ax.annotate(
            f"#{row.number}{tie}",
            (getattr(row, cost), y),
            xytext=(4, -10),
            textcoords="offset points",
            fontsize=7,
            color=_FRONT,
        )
    _zoo(ax, data.zoo, cost)
    if budget:
        ax.axvline(budget, color=_BUDGET, linestyle="--", linewidth=1, label=f"budget {budget:g}")
    ax.set_xlabel(xlabel)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)


def _zoo(ax: Axes, marks: list[ZooMark], cost: str) -> None:
    """Trained zoo networks as stars; untrained ones as dotted lines on the cost axis alone."""
    trained = [m for m in marks if m.accuracy is not None]
    if trained:
        ax.scatter(
            [_cost(m, cost) for m in trained],
            [m.accuracy for m in trained],
            marker="*",
            s=150,
            color=_ZOO,
            edgecolors="white",
            linewidths=0.6,
            zorder=4,
            label="zoo, trained in this study",
        )
        bounded = [m for m in trained if m.accuracy_interval is not None]
        if bounded:
            ax.errorbar(
                [_cost(m, cost) for m in bounded],
                [m.accuracy for m in bounded],
                yerr=_bars([(m.accuracy, *m.accuracy_interval) for m in bounded]),
                fmt="none",
                ecolor=_ZOO,
                elinewidth=1,
                capsize=3,
                alpha=0.7,
                zorder=4,
            )
        for mark in trained:
            ax.annotate(
                mark.name,
                (_cost(mark, cost), mark.accuracy),
                xytext=(6, 4),
                textcoords="offset points",
                fontsize=7,
                color=_ZOO,
            )
    untrained = [m for m in marks if m.accuracy is None and _cost(m, cost) is not None]
    for i, mark in enumerate(untrained):
        x = _cost(mark, cost)
        ax.axvline(
            x,
            color=_ZOO,
            linestyle=":",
            linewidth=0.9,
            alpha=0.6,
            label="zoo, not trained (cost only)" if i == 0 else None,
        )
        ax.text(
            x,
            0.98,
            f" {mark.name}",
            transform=ax.get_xaxis_transform(),
            rotation=90,
            va="top",
            ha="right",
            fontsize=6.5,
            color=_ZOO,
            alpha=0.85,
        )


def _history(ax: Axes, data: ReportData) -> None:
    rows = sorted(data.trained, key=lambda row: row.number)
    numbers = [row.number for row in rows]
    ax.scatter(numbers, [row.accuracy for row in rows], label="trained trial", **_TRIAL)
    best, running = [], float("-inf")
    for row in rows:
        running = max(running, row.accuracy)
        best.append(running)
    ax.step(numbers, best, where="post", color=_FRONT, linewidth=1.4, label="best so far")
    zoo = [row for row in rows if any(m.trial == row.number for m in data.zoo)]
    if zoo:
        ax.scatter(
            [row.number for row in zoo],
            [row.accuracy for row in zoo],
            marker="*",
            s=150,
            color=_ZOO,
            edgecolors="white",
            linewidths=0.6,
            zorder=4,
            label="zoo network (warm start)",
        )
    ax.set_xlabel("trial number (over-budget and failed trials are not shown)")
    ax.legend(loc="best", fontsize=8, framealpha=0.85)


def _front_point(row: TrainedRow) -> tuple[float, float | None, float | None]:
    """(accuracy, low, high) of a front member: the seed mean +/- one standard deviation where
    confirm runs exist (the front is taken on it), else the one run with its Wilson interval."""
    if (row.seeds or 1) > 1:
        mean, std = row.accuracy_mean, row.accuracy_std
        return mean, mean - std, mean + std
    return row.accuracy, row.accuracy_low, row.accuracy_high


def _bars(points: list[tuple[float, float, float]]) -> list[list[float]]:
    """(value, low, high) triples as matplotlib's [below, above] error lengths."""
    return [[value - low for value, low, _ in points], [high - value for value, _, high in points]]


def _cost(mark: ZooMark, cost: str) -> float | None:
    return mark.latency_ms if cost == "latency_ms" else mark.mflops


def _accuracy_label(data: ReportData) -> str:
    shape = data.dataset.input_shape
    where = f"{data.dataset.name or 'proxy data'}" + (
        f" at {'x'.join(map(str, shape))}" if shape else ""
    )
    return f"validation accuracy ({where})"
