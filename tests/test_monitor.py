"""What a running search shows: a live panel that stays readable in an ordinary terminal, and
in a log one line per event and per epoch."""

from __future__ import annotations

import os

from rich.console import Console

from nas.monitor import SearchMonitor
from nas.search_spaces.zoo import ZOO
from nas.trials import Outcome


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


def _plain_monitor(**settings) -> tuple[SearchMonitor, Console]:
    """A monitor writing plain lines, as in a pipe or a log, into a recording console."""
    console = Console(width=200, record=True, color_system=None, file=open(os.devnull, "w"))
    return SearchMonitor(console=console, live=False, **settings), console


def test_a_log_gets_one_line_per_epoch_naming_the_worker_before_the_candidate_finishes() -> None:
    monitor, console = _plain_monitor(target_trials=4, epochs=3)
    with monitor:
        monitor.started(7, "arch-a", 120.0, 9.5)
        monitor.started(8, "arch-b", 90.0, 7.5)
        monitor.epoch(8, 1, 0.5123, seconds=12.4)
        monitor.epoch(7, 1, 0.4012)
        monitor.finished(8, Outcome.TRAINED, 0.61, 7.5)
    lines = console.export_text().splitlines()
    assert lines == [
        "trial 7 started on worker 1: 120.0 MFLOPs, 9.50 ms",
        "trial 8 started on worker 2: 90.0 MFLOPs, 7.50 ms",
        "trial 8 epoch 1/3: val acc 0.5123 (12 s) [worker 2]",
        "trial 7 epoch 1/3: val acc 0.4012 [worker 1]",
        "trial 8 trained: accuracy 0.6100, 7.50 ms [1/4]",
    ]


def test_over_budget_candidates_are_told_as_they_happen_in_one_line_per_run() -> None:
    monitor, console = _plain_monitor(target_trials=4)
    with monitor:
        monitor.infeasible_skipped(4, 212.4, 30.1, "MFLOPs over by 62.4")
        monitor.infeasible_skipped(5, 187.0, 28.0, "MFLOPs over by 37")
        monitor.started(6, "arch", 140.0, 20.0)
        monitor.infeasible_skipped(7, 100.0, 41.26, "ms over by 1.26")
    lines = console.export_text().splitlines()
    assert lines == [
        "trials 4-5 over budget, not trained: 212, 187 MFLOPs",
        "trial 6 started on worker 1: 140.0 MFLOPs, 20.00 ms",
        "trial 7 over budget, not trained: 41.3 ms",  # told when the monitor closes
    ]
    assert monitor.n_infeasible == 3


def test_baselines_count_to_their_own_total_and_no_line_ends_in_a_space() -> None:
    monitor, console = _plain_monitor(target_trials=2, baselines=2)
    with monitor:
        for number, name in enumerate(("mobilenet_v3_small", "mnasnet0_5")):
            monitor.started(number, "arch", 60.0, 7.0, note=f"baseline {name}")
            monitor.finished(number, Outcome.TRAINED, 0.8, 7.0, baseline=name)
        monitor.started(2, "arch", 60.0, 7.0)
        monitor.finished(2, Outcome.STOPPED, 0.7, 7.0)
    lines = console.export_text().splitlines()
    assert "trial 0 trained: accuracy 0.8000, 7.00 ms [baseline 1/2: mobilenet_v3_small]" in lines
    assert "trial 1 trained: accuracy 0.8000, 7.00 ms [baseline 2/2: mnasnet0_5]" in lines
    assert "trial 2 stopped early: accuracy 0.7000, 7.00 ms [1/2]" in lines
    assert all(line == line.rstrip() for line in lines)
    assert monitor.summary_line().startswith("trained 1/2, baselines 2/2, running 0")


def test_a_quiet_log_gets_a_status_line_while_candidates_train(monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("nas.monitor.time.monotonic", lambda: clock[0])
    monitor, console = _plain_monitor(target_trials=4, epochs=4)
    with monitor:
        monitor.started(3, "arch", 120.0, 9.5)
        clock[0] += 30
        monitor.tick()  # a line half a minute ago: nothing to add yet
        clock[0] += 45
        monitor.tick()
        monitor.tick()  # and not again at once
    lines = console.export_text().splitlines()
    assert lines[1:] == ["still training: trial 3 on worker 1: 0/4 epochs done, 75 s"]
