"""The live panel of a running search stays readable in an ordinary terminal."""

from __future__ import annotations

from rich.console import Console

from nas.monitor import SearchMonitor
from nas.search_spaces.zoo import ZOO


def test_a_120_column_panel_keeps_every_figure_and_shortens_only_the_arch() -> None:
    monitor = SearchMonitor(10)
    arch = ZOO["mobilenet_v3_large"]().to_string()
    monitor.started(12, arch, 148.25, 19.67)
    monitor.epoch(12, 3, 0.4567)
    console = Console(width=120, record=True, color_system=None)
    console.print(monitor._render())
    text = console.export_text()
    row = next(line for line in text.splitlines() if line.lstrip().startswith("12"))
    for figure in ("12", "3", "0.4567", "148.2", "19.67"):
        assert figure in row
    assert arch[:40] in row
    assert all(len(line) <= 120 for line in text.splitlines())
