"""What a finished search leaves for people: the report of a study.

    report = write_report(study, storage_url, Path("results/my-study"))

`nas report` is a thin layer over `write_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from nas.reporting.data import ReportData, ZooMark, collect
from nas.reporting.figures import write_figures
from nas.reporting.final import final_figure, final_summary_markdown
from nas.reporting.interactive import write_html
from nas.reporting.summary import write_markdown

__all__ = ["Report", "ReportData", "ZooMark", "collect", "write_report"]


@dataclass(frozen=True)
class Report:
    data: ReportData
    markdown: Path
    html: Path
    figures: dict[str, Path]


def write_report(study: optuna.Study, storage_url: str, out_dir: Path) -> Report:
    """Write report.md, report.html and the PNG plots of `study` into `out_dir`."""
    data = collect(study, storage_url)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = write_figures(data, out_dir)
    final_png = out_dir / "final_training.png"
    final_section = final_summary_markdown(study)
    if final_figure(study, final_png):
        figures["final_training"] = final_png
    html = write_html(data, study, out_dir / "report.html")
    markdown = write_markdown(data, figures, html, out_dir / "report.md", final_section)
    return Report(data=data, markdown=markdown, html=html, figures=figures)
