"""The answer a search exists to give: does a finalized searched network beat each zoo network?

Read from the study's final companion (`nas.finalize`): one row per finalized network with its
test accuracies over seeds, then one verdict per zoo network against the most accurate searched
network at no more latency on the target. The difference is beyond the noise when Welch's
t-test over the seeds (two or more a side) or, with one seed, the two-proportion z-test on the
test split says so at 5%.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from optuna.trial import TrialState

from nas.evaluators.uncertainty import (
    Comparison,
    SeedSummary,
    compare_proportions,
    compare_seeds,
    format_accuracy,
    wilson_interval,
)
from nas.study import FINAL_SUFFIX, companion
from nas.study_attrs import StudyAttrs
from nas.trials import TrialAttrs


@dataclass(frozen=True)
class FinalRow:
    """One finalized network: its test accuracy per seed and over all of them."""

    label: str
    arch: str
    zoo: str | None
    finalizes: int | None
    latency_ms: float
    mflops: float
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    correct: int
    count: int
    """Test images right and scored, summed over the seeds."""
    train_seconds: float

    @property
    def mean(self) -> float:
        return SeedSummary(self.accuracies).mean

    @property
    def std(self) -> float:
        return SeedSummary(self.accuracies).std

    @property
    def interval(self) -> tuple[float, float]:
        """95% Wilson interval of the pooled test accuracy over the seeds (test-split noise)."""
        return wilson_interval(self.correct, self.count)

    def text(self) -> str:
        spread = f" +/- {self.std * 100:.1f}" if len(self.accuracies) > 1 else ""
        return (
            f"{format_accuracy(self.mean, self.interval)}{spread} "
            f"({len(self.accuracies)} seed{'s' if len(self.accuracies) != 1 else ''})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "zoo": self.zoo,
            "finalizes": self.finalizes,
            "latency_ms": self.latency_ms,
            "mflops": self.mflops,
            "seeds": list(self.seeds),
            "test_accuracies": list(self.accuracies),
            "test_mean": round(self.mean, 6),
            "test_std": round(self.std, 6),
            "test_interval": [round(bound, 6) for bound in self.interval],
            "arch": self.arch,
        }


@dataclass(frozen=True)
class Verdict:
    """A zoo network against the best finalized searched network at no more latency."""

    zoo: FinalRow
    challenger: FinalRow | None
    comparison: Comparison | None

    @property
    def beats(self) -> bool:
        return bool(
            self.comparison and self.comparison.distinguishable and self.comparison.difference > 0
        )

    def text(self) -> str:
        if self.challenger is None:
            return "no finalized searched network at no more latency"
        assert self.comparison is not None
        difference = self.comparison.difference * 100
        if self.beats:
            verdict = "beats it beyond the noise"
        elif self.comparison.distinguishable:
            verdict = "loses to it beyond the noise"
        else:
            verdict = "a tie (within the noise)"
        return (
            f"{self.challenger.label}: {difference:+.1f} points, {verdict} "
            f"({self.comparison.test} {self.comparison.p_text})"
        )


def final_rows(study: optuna.Study) -> list[FinalRow]:
    """The finalized networks of `study`, fastest first; empty when it was never finalized."""
    found = companion(study, suffix=FINAL_SUFFIX)
    if found is None:
        return []
    groups: dict[str, list[TrialAttrs]] = {}
    for trial in found.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = TrialAttrs.of(trial)
        if attrs.test_accuracy is not None and attrs.arch:
            groups.setdefault(attrs.arch, []).append(attrs)
    rows = []
    for arch, runs in groups.items():
        runs.sort(key=lambda attrs: attrs.seed or 0)
        first = runs[0]
        rows.append(
            FinalRow(
                label=first.baseline or f"trial {first.finalizes}",
                arch=arch,
                zoo=first.baseline,
                finalizes=first.finalizes,
                latency_ms=float(first.latency_ms or 0.0),
                mflops=float(first.mflops or 0.0),
                seeds=tuple(int(attrs.seed or 0) for attrs in runs),
                accuracies=tuple(float(attrs.test_accuracy) for attrs in runs),
                correct=sum(int(attrs.test_correct or 0) for attrs in runs),
                count=sum(int(attrs.test_count or 0) for attrs in runs),
                train_seconds=sum(float(attrs.train_seconds or 0.0) for attrs in runs),
            )
        )
    return sorted(rows, key=lambda row: row.latency_ms)


def compare_final(a: FinalRow, b: FinalRow) -> Comparison:
    """Whether `a` is more accurate than `b` on the test split beyond the noise."""
    if len(a.accuracies) > 1 and len(b.accuracies) > 1:
        return compare_seeds(a.accuracies, b.accuracies)
    return compare_proportions(a.correct, a.count, b.correct, b.count)


def verdicts(rows: list[FinalRow]) -> list[Verdict]:
    """For each zoo network, the most accurate searched network at no more latency, compared."""
    searched = [row for row in rows if row.zoo is None]
    found = []
    for zoo in (row for row in rows if row.zoo is not None):
        fitting = [row for row in searched if row.latency_ms <= zoo.latency_ms]
        challenger = max(fitting, key=lambda row: row.mean, default=None)
        comparison = compare_final(challenger, zoo) if challenger else None
        found.append(Verdict(zoo, challenger, comparison))
    return found


def final_summary_markdown(study: optuna.Study, heading_level: int = 2) -> str:
    """The "final training" section of report.md; empty when the study was never finalized."""
    rows = final_rows(study)
    if not rows:
        return ""
    final = companion(study, suffix=FINAL_SUFFIX)
    identity = (StudyAttrs.of(final).identity if final else None) or {}
    recipe = identity.get("recipe", {})
    target = _target(study)
    hashes = "#" * heading_level
    lines = [
        f"{hashes} Final training",
        "",
        f"Each network trained {recipe.get('epochs', '?')} epochs on all "
        f"{identity.get('train_images', '?')} training images (no validation split, no subset), "
        f"batch {recipe.get('batch_size', '?')}, lr {recipe.get('lr', '?')} "
        f"{recipe.get('schedule', '')}, the same recipe and seeds for every network; the test "
        f"split scored once per run. Test accuracy: mean over seeds with the 95% Wilson interval "
        f"of the pooled test predictions, +/- the standard deviation across seeds.",
        "",
        f"| network | latency ms ({target}) | MFLOPs | test accuracy [95% CI] | per seed | arch |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        per_seed = ", ".join(f"{accuracy:.2%}" for accuracy in row.accuracies)
        lines.append(
            f"| {row.label}{' (zoo)' if row.zoo else ''} | {row.latency_ms:.2f} | "
            f"{row.mflops:.1f} | {row.text()} | {per_seed} | `{row.arch}` |"
        )
    lines += [
        "",
        "Against each zoo network, the most accurate finalized searched network at no more "
        "latency (Welch t-test over seeds with two or more a side, else a two-proportion z-test "
        "on the test split, at 5%):",
        "",
        "| zoo network | latency ms | its test accuracy | searched network at no more latency |",
        "|---|---:|---:|---|",
    ]
    for verdict in verdicts(rows):
        lines.append(
            f"| {verdict.zoo.label} | {verdict.zoo.latency_ms:.2f} | {verdict.zoo.text()} | "
            f"{verdict.text()} |"
        )
    return "\n".join(lines) + "\n"


def final_html(study: optuna.Study) -> str:
    """The same section as HTML tables for report.html; empty when never finalized."""
    rows = final_rows(study)
    if not rows:
        return ""
    cells = "".join(
        f"<tr><td>{html.escape(row.label)}{' (zoo)' if row.zoo else ''}</td>"
        f"<td>{row.latency_ms:.2f}</td><td>{row.mflops:.1f}</td><td>{html.escape(row.text())}</td>"
        f"<td><code>{html.escape(row.arch)}</code></td></tr>"
        for row in rows
    )
    judged = "".join(
        f"<tr><td>{html.escape(verdict.zoo.label)}</td><td>{verdict.zoo.latency_ms:.2f}</td>"
        f"<td>{html.escape(verdict.zoo.text())}</td><td>{html.escape(verdict.text())}</td></tr>"
        for verdict in verdicts(rows)
    )
    return (
        "<h2>Final training (test split, scored once)</h2>"
        "<table><tr><th>network</th><th>latency ms</th><th>MFLOPs</th>"
        f"<th>test accuracy [95% CI]</th><th>arch</th></tr>{cells}</table>"
        "<h3>Against each zoo network</h3>"
        "<table><tr><th>zoo network</th><th>latency ms</th><th>its test accuracy</th>"
        f"<th>searched network at no more latency</th></tr>{judged}</table>"
    )


def final_figure(study: optuna.Study, path: Path) -> bool:
    """Test accuracy (mean over seeds, 95% interval as bars) against target latency, as a PNG.

    Returns False, writing nothing, when the study was never finalized.
    """
    rows = final_rows(study)
    if not rows:
        return False
    figure = Figure(figsize=(9, 5.6), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for kind, color, marker in (("searched", "#d35400", "o"), ("zoo", "#1f6fb4", "*")):
        chosen = [row for row in rows if (row.zoo is None) == (kind == "searched")]
        if not chosen:
            continue
        ax.errorbar(
            [row.latency_ms for row in chosen],
            [row.mean for row in chosen],
            yerr=[
                [row.mean - row.interval[0] for row in chosen],
                [row.interval[1] - row.mean for row in chosen],
            ],
            fmt=marker,
            color=color,
            markersize=9 if kind == "zoo" else 7,
            capsize=3,
            label=f"{kind} (finalized)",
        )
        for row in chosen:
            ax.annotate(
                row.label,
                (row.latency_ms, row.mean),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
            )
    target = _target(study)
    ax.set_xlabel(f"latency on {target} (ms)")
    ax.set_ylabel("test accuracy (mean over seeds, 95% interval)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(f"{study.study_name}: final training", fontsize=11, loc="left")
    ax.grid(True, alpha=0.25)
    ax.legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=130)
    return True


def _target(study: optuna.Study) -> str:
    return StudyAttrs.of(study).target or "the target"
