"""The report's static plots, drawn with matplotlib's Agg canvas.

PNG files go where the interactive HTML cannot: into a README, a paper, a chat. The figures are
built on `Figure` objects rather than pyplot, so drawing them never touches a display or the
process-wide backend of a notebook that calls the report.

Every plot keeps its legend beside the axes, never over the data, and moves its labels (trial
numbers, zoo names) with adjustText until none overlaps another, a point or a zoo line. The
counts in the legends are the study's (`nas.counts`), as the tables and pareto.json give them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from adjustText import adjust_text
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import PercentFormatter

from nas.front import TrainedRow
from nas.reporting.data import ReportData, ZooMark

_TRIAL = dict(color="#7f8c9a", alpha=0.55, s=22, linewidths=0)
_FRONT = "#d35400"
_ZOO = "#1f6fb4"
_BUDGET = "#c0392b"
_DPI = 130
_LINE_SAMPLES = 40
"""Points along each zoo line that labels are kept off, as adjustText avoids points, not lines."""


class _Labels:
    """The labels of one plot and what they must not cover, placed together at the end.

    Zoo lines are named at the foot of the axes, where few trials lie, each moved sideways
    only, off every line and every other name; then the point labels are moved off the points,
    the lines and those names.
    """

    def __init__(self, ax: Axes) -> None:
        self.ax = ax
        self.texts: list[Text] = []
        self.line_names: list[Text] = []
        self.avoid: list[tuple[float, float]] = []
        self.lines: list[float] = []

    def avoid_segment(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Keep labels off a drawn segment (a step of the front, an error bar)."""
        (x0, y0), (x1, y1) = start, end
        steps = _LINE_SAMPLES // 4
        self.avoid += [
            (x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps) for i in range(steps + 1)
        ]

    def avoid_bars(self, xs: list[float], points: list[tuple]) -> None:
        """Keep labels off error bars: (value, low, high) at each x, where low is known."""
        for x, (_, low, high) in zip(xs, points):
            if low is not None and high is not None:
                self.avoid_segment((x, low), (x, high))

    def _avoid_box(self, text: Text) -> None:
        """Keep labels off the area a placed text covers (a grid of points over it)."""
        renderer = self.ax.figure.canvas.get_renderer()
        box = text.get_window_extent(renderer).transformed(self.ax.transData.inverted())
        for i in range(4):
            for j in range(_LINE_SAMPLES // 4):
                self.avoid.append(
                    (box.x0 + box.width * i / 3, box.y0 + box.height * j / (_LINE_SAMPLES // 4 - 1))
                )

    def add(self, x: float, y: float, text: str, color: str) -> None:
        """A label beside the point (x, y), which it points back to once moved."""
        self.texts.append(self.ax.text(x, y, text, fontsize=7, color=color))

    def name_line(self, x: float, text: str, color: str) -> None:
        """A zoo line's name, upright beside the line at the foot of the axes."""
        self.lines.append(x)
        low, high = self.ax.get_ylim()
        self.line_names.append(
            self.ax.text(
                x,
                low + (high - low) * 0.01,
                f" {text}",
                fontsize=6.5,
                color=color,
                rotation=90,
                va="bottom",
                ha="left",
                alpha=0.9,
            )
        )

    def place(self) -> None:
        """Move the names and labels apart, off the points and the lines."""
        low, high = self.ax.get_ylim()
        for x in self.lines:
            self.avoid += [
                (x, low + (high - low) * i / (_LINE_SAMPLES - 1)) for i in range(_LINE_SAMPLES)
            ]
        self.ax.figure.draw_without_rendering()  # the layout the labels are measured in
        arrows = dict(arrowstyle="-", color="#999999", lw=0.5)
        xs, ys = [x for x, _ in self.avoid], [y for _, y in self.avoid]
        if self.line_names:
            sideways = {"text": "x", "static": "x", "explode": "x", "pull": "x"}
            adjust_text(
                self.line_names,
                x=xs,
                y=ys,
                ax=self.ax,
                only_move=sideways,
                expand=(1.6, 1.0),
                time_lim=2,
            )
        if self.texts:
            for name in self.line_names:  # the names are in place now: points the labels avoid
                self._avoid_box(name)
            xs, ys = [x for x, _ in self.avoid], [y for _, y in self.avoid]
            adjust_text(
                self.texts,
                x=xs,
                y=ys,
                ax=self.ax,
                expand=(1.15, 1.35),
                time_lim=3,
                arrowprops=arrows,
            )
        self.ax.set_ylim(low, high)


def write_figures(data: ReportData, out_dir: Path) -> dict[str, Path]:
    """Draw every plot into `out_dir`; returns plot name -> PNG path."""
    cost_note = f"3x{data.input_size}x{data.input_size}"
    plots: dict[str, tuple[Callable[[Axes], None], str]] = {
        "accuracy_vs_latency": (
            lambda ax: draw_tradeoff(
                ax,
                data,
                "latency_ms",
                data.budget_ms,
                f"latency on {data.target} (ms at {cost_note})",
            ),
            f"{data.study_name}: accuracy against latency on {data.target}",
        ),
        "accuracy_vs_mflops": (
            lambda ax: draw_tradeoff(
                ax,
                data,
                "mflops",
                data.budget_mflops,
                f"MFLOPs (millions of multiply-adds at {cost_note})",
            ),
            f"{data.study_name}: accuracy against MFLOPs",
        ),
        "history": (lambda ax: draw_history(ax, data), f"{data.study_name}: optimisation history"),
    }
    written = {}
    for name, (draw, title) in plots.items():
        figure = Figure(figsize=(11, 5.6), layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        ax.set_title(title, fontsize=11, loc="left")
        ax.set_ylabel(_accuracy_label(data))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(True, alpha=0.25)
        draw(ax)
        path = out_dir / f"{name}.png"
        figure.savefig(path, dpi=_DPI)
        written[name] = path
    return written


def _legend(ax: Axes) -> None:
    """The legend beside the axes, right of the data, so it never hides a point or a bar."""
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize=8, frameon=False
    )


def draw_tradeoff(ax: Axes, data: ReportData, cost: str, budget: float | None, xlabel: str) -> None:
    """Trials trained to the end, the study's Pareto front, the zoo, and the budget if any.

    The front is the study's one front (accuracy against latency), on both cost axes: on the
    MFLOPs axis its members are the same trials, and a dashed staircase shows the best accuracy
    at or under each MFLOPs.
    """
    counts, front = data.counts, data.front
    labels = _Labels(ax)
    ax.scatter(
        [getattr(r, cost) for r in data.trained],
        [r.accuracy for r in data.trained],
        label=f"trained to the end ({counts.trained})",
        **_TRIAL,
    )
    labels.avoid += [(getattr(r, cost), r.accuracy) for r in data.trained]
    points = [_front_point(r) for r in front]
    xs, ys = [getattr(r, cost) for r in front], [point[0] for point in points]
    if cost == "latency_ms":
        _staircase(ax, labels, xs, ys, color=_FRONT, linewidth=1.4, alpha=0.8)
    else:
        best = data.mflops_front
        _staircase(
            ax,
            labels,
            [r.mflops for r in best],
            [_front_point(r)[0] for r in best],
            color=_FRONT,
            linewidth=1,
            linestyle="--",
            alpha=0.5,
            label="best accuracy at or under each MFLOPs",
        )
    front_label = f"Pareto front ({counts.front})" + (
        "" if cost == "latency_ms" else ", on latency"
    )
    ax.scatter(xs, ys, color=_FRONT, s=40, zorder=3, label=front_label)
    _front_bars(ax, front, xs, points)
    labels.avoid_bars(xs, points)
    for row, x, y in zip(front, xs, ys):  # a zoo network on the front is named once, here
        name = f" {data.zoo_name(row)}" if data.zoo_name(row) else ""
        tie = " (tie)" if row.vs_cheaper == "tie" else ""
        labels.add(x, y, f"#{row.number}{name}{tie}", _FRONT)
    _zoo(ax, data.zoo, cost, labels, named={row.number for row in front})
    if budget:
        ax.axvline(budget, color=_BUDGET, linestyle="--", linewidth=1, label=f"budget {budget:g}")
        labels.lines.append(budget)
    ax.set_xlabel(xlabel)
    _legend(ax)
    labels.place()


def _staircase(ax: Axes, labels: _Labels, xs: list[float], ys: list[float], **style: Any) -> None:
    """A front as steps (each point holds until the next, cheaper first), kept clear of labels."""
    ax.step(xs, ys, where="post", **style)
    for i in range(len(xs) - 1):
        labels.avoid_segment((xs[i], ys[i]), (xs[i + 1], ys[i]))
        labels.avoid_segment((xs[i + 1], ys[i]), (xs[i + 1], ys[i + 1]))


def _front_bars(ax: Axes, front: list[TrainedRow], xs: list[float], points: list[tuple]) -> None:
    """The front's error bars: spread over seeds where confirm runs exist, else the interval."""
    bounded = [(x, point) for x, point in zip(xs, points) if point[1] is not None]
    if not bounded:
        return
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


def _zoo(ax: Axes, marks: list[ZooMark], cost: str, labels: _Labels, named: set[int]) -> None:
    """Trained zoo networks as stars; untrained ones as dotted lines on the cost axis alone.

    A star whose trial is in `named` (the front's, labelled already) gets no second label.
    """
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
            labels.avoid.append((_cost(mark, cost), mark.accuracy))
            if mark.trial not in named:
                labels.add(_cost(mark, cost), mark.accuracy, mark.name, _ZOO)
        labels.avoid_bars(
            [_cost(m, cost) for m in bounded],
            [(m.accuracy, *m.accuracy_interval) for m in bounded],
        )
    untrained = [m for m in marks if m.accuracy is None and _cost(m, cost) is not None]
    if not untrained:
        return
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
        labels.name_line(x, mark.name, _ZOO)


def draw_history(ax: Axes, data: ReportData) -> None:
    """Accuracy by trial number, the best so far, and the zoo baselines among them."""
    rows = sorted(data.trained, key=lambda row: row.number)
    numbers = [row.number for row in rows]
    ax.scatter(
        numbers,
        [row.accuracy for row in rows],
        label=f"trained to the end ({data.counts.trained})",
        **_TRIAL,
    )
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
    ax.set_xlabel("trial number (over-budget, stopped and failed trials are not shown)")
    _legend(ax)


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
