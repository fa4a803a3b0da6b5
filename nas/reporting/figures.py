"""The report's static plots, drawn with matplotlib's Agg canvas.

PNG files go where the interactive HTML cannot: into a README, a paper, a chat. The figures are
built on `Figure` objects rather than pyplot, so drawing them never touches a display or the
process-wide backend of a notebook that calls the report.

Every plot keeps its legend beside the axes, never over the data, and moves its labels (trial
numbers, zoo names) with adjustText until none overlaps another, a point or a zoo line, for a
set number of steps, never a time: the same study draws the same PNG, byte for byte. The
counts in the legends are the study's (`nas.counts`), as the tables and pareto.json give them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from adjustText import adjust_text
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import PercentFormatter
from matplotlib.transforms import Bbox

from nas.front import TrainedRow
from nas.reporting.data import ReportData, ZooMark

_TRIAL = dict(color="#7f8c9a", alpha=0.55, s=22, linewidths=0)
_FRONT = "#d35400"
_ZOO = "#1f6fb4"
_BUDGET = "#c0392b"
_DPI = 130
_NAME_STEPS = 20
"""adjustText steps for the zoo lines' names. Steps rather than seconds, so that the same
study draws the same picture on any machine under any load; the names, moving sideways
only, settle within them or not at all."""
_LABEL_STEPS = 40
"""adjustText steps for the point labels (trial numbers, zoo names); labels that cannot be
cleared by then only wander further from their points."""
_NAME_PUSH = 0.2
"""adjustText's sideways push on the names from each other and from what they avoid, twice its
default, so that they part within their few steps."""
_GOLDEN = (5**0.5 - 1) / 2


def _spaced(start: float, end: float, step: float) -> np.ndarray:
    """Evenly spaced values from `start` to `end`, both included, none further than `step`
    from the next: a label at least `step` long that crosses the range covers one of them."""
    return np.linspace(start, end, max(2, math.ceil(abs(end - start) / step) + 1))


def _staggered(start: float, end: float, step: float, index: int) -> np.ndarray:
    """Values `step` or less apart from `start` to `end`, shifted by a fraction of a step that
    differs from one `index` to the next. Points level across neighbouring lines would push a
    label that lies across them up or down all together, step after step, until it slid down
    the lines to the far end of the axes; staggered, their pushes along the lines cancel."""
    count = max(1, math.ceil((end - start) / step))
    spacing = (end - start) / count
    values = start + spacing * (np.arange(count + 1) + (index * _GOLDEN) % 1.0)
    return values[values <= end]


def _segment(start: np.ndarray, end: np.ndarray, step: tuple[float, float]) -> np.ndarray:
    """Points along a segment, no two further apart than `step` (width, height) on either
    axis, so that no label of at least that size lies across it between two of them."""
    (x0, y0), (x1, y1) = start, end
    n = max(2, math.ceil(max(abs(x1 - x0) / step[0], abs(y1 - y0) / step[1])) + 1)
    return np.column_stack([np.linspace(x0, x1, n), np.linspace(y0, y1, n)])


def _smallest(boxes: list[Bbox]) -> tuple[float, float]:
    """The narrowest width and the lowest height among labels' boxes."""
    return min(box.width for box in boxes), min(box.height for box in boxes)


class _Labels:
    """The labels of one plot and what they must not cover, placed together at the end.

    Zoo lines are named at the foot of the axes, where few trials lie, each moved sideways
    only, off every line and every other name; then the point labels are moved off the points,
    the lines and those names.

    adjustText keeps labels off points, not off lines or areas, and each of its steps costs
    about the product of the (label, point) pairs that overlap in x and those that overlap in
    y. So segments, lines and names become points on the finished layout, in display units
    where the labels' sizes are known, no denser than the labels that avoid them need: two
    points on a line are never further apart than the smallest label is tall, or a label could
    lie across the line between them.
    """

    def __init__(self, ax: Axes) -> None:
        self.ax = ax
        self.texts: list[Text] = []
        self.line_names: list[Text] = []
        self.avoid: list[tuple[float, float]] = []
        self.segments: list[tuple[tuple[float, float], tuple[float, float]]] = []
        self.lines: list[float] = []

    def avoid_segment(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Keep labels off a drawn segment (a step of the front, an error bar)."""
        self.segments.append((start, end))

    def avoid_bars(self, xs: list[float], points: list[tuple]) -> None:
        """Keep labels off error bars: (value, low, high) at each x, where low is known."""
        for x, (_, low, high) in zip(xs, points):
            if low is not None and high is not None:
                self.avoid_segment((x, low), (x, high))

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

    def _obstacles(self, step: tuple[float, float], top: float) -> np.ndarray:
        """Display points on all that labels avoid, up to the height `top`: the points, then
        the segments and the lines (from the foot of the axes), `step` (width, height) apart."""
        to_display = self.ax.transData.transform
        points = [to_display(self.avoid)] if self.avoid else []
        points += [_segment(*to_display([start, end]), step) for start, end in self.segments]
        for i, x in enumerate(self.lines):
            ys = _staggered(self.ax.bbox.y0, top, step[1], i)
            points.append(np.column_stack([np.full(len(ys), to_display((x, 0.0))[0]), ys]))
        if not points:
            return np.empty((0, 2))
        found = np.concatenate(points)
        return found[found[:, 1] <= top]

    def _adjust(self, texts: list[Text], obstacles: np.ndarray, **options: Any) -> None:
        """adjust_text, given the obstacles in display units (it takes data units)."""
        xs, ys = self.ax.transData.inverted().transform(obstacles.reshape(-1, 2)).T
        adjust_text(texts, x=list(xs), y=list(ys), ax=self.ax, **options)

    def place(self) -> None:
        """Move the names and labels apart, off the points and the lines."""
        low, high = self.ax.get_ylim()
        self.ax.figure.draw_without_rendering()  # the layout the labels are measured in
        renderer = self.ax.figure.canvas.get_renderer()
        if self.line_names:
            # The names move sideways only, so nothing above the tallest can meet one. A line
            # meets a name along its whole height, and its points lie a third of the shortest
            # name apart: a name on a line covers several, and is pushed off it, not nudged.
            boxes = [name.get_window_extent(renderer) for name in self.line_names]
            width, height = _smallest(boxes)
            self._adjust(
                self.line_names,
                self._obstacles((width, height / 3), max(box.y1 for box in boxes)),
                only_move={"text": "x", "static": "x", "explode": "x", "pull": "x"},
                expand=(1.6, 1.0),
                force_text=_NAME_PUSH,
                force_static=_NAME_PUSH,
                iter_lim=_NAME_STEPS,
            )
        if self.texts:
            step = _smallest([text.get_window_extent(renderer) for text in self.texts])
            obstacles = [self._obstacles(step, self.ax.bbox.y1)]
            for name in self.line_names:  # in place now: areas the labels keep off
                box = name.get_window_extent(renderer)
                xs, ys = np.meshgrid(
                    _spaced(box.x0, box.x1, step[0]), _spaced(box.y0, box.y1, step[1])
                )
                obstacles.append(np.column_stack([xs.ravel(), ys.ravel()]))
            self._adjust(
                self.texts,
                np.concatenate(obstacles),
                expand=(1.15, 1.35),
                iter_lim=_LABEL_STEPS,
                arrowprops=dict(arrowstyle="-", color="#999999", lw=0.5),
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
