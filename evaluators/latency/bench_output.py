"""What a runtime's own benchmark tool printed, read back as one operator's or network's time.

A phone has no Python, so `nas lut bundle` times each model with the benchmark binary its
runtime ships and keeps the tool's raw output. Each tool prints its own format; this module
reads them, keeping the statistic the tables use everywhere: the fastest run (`timing.Timing`).

- ``benchncnn`` (ncnn): ``<param>  min = 1.23  max = 1.50  avg = 1.31`` per model, in ms with
  two decimals (operators under about 0.1 ms lose precision to that rounding);
- ``executor_runner`` (ExecuTorch): ``Iteration i of n: t ms`` per run (older builds print only
  ``Model executed successfully n time(s) in t ms.``, from which only the mean follows);
- ``onnxruntime_perf_test``: ``Min Latency: t s`` and ``Average inference time cost: t ms``;
- ``nas-local-bench``: the tool the runner's local mode uses on this machine
  (`local_bench`), one ``key=value`` line.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

TOOLS = ("benchncnn", "executor_runner", "onnxruntime_perf_test", "nas-local-bench")

_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
_BENCHNCNN = re.compile(rf"min = \s*{_NUMBER}\s+max = \s*{_NUMBER}\s+avg = \s*{_NUMBER}")
_BENCHNCNN_LOOPS = re.compile(r"loop_count = (\d+)")
_ET_ITERATION = re.compile(rf"Iteration \d+ of \d+: {_NUMBER} ms")
_ET_TOTAL = re.compile(rf"Model executed successfully (\d+) time\(s\) in {_NUMBER} ms")
_ORT_MIN = re.compile(rf"Min Latency: {_NUMBER} s")
_ORT_MEAN = re.compile(rf"Average inference time cost(?: total)?: {_NUMBER} ms")
_ORT_RUNS = re.compile(r"Total inference requests: (\d+)")
_LOCAL = re.compile(r"^nas-local-bench (.*)$", re.MULTILINE)


class BenchOutputError(ValueError):
    """The output holds no timing in the tool's format (the tool failed, or another tool ran)."""


@dataclass(frozen=True)
class RunTiming:
    """One model's time from one run of a benchmark tool, in milliseconds."""

    ms: float
    """Fastest run where the tool reports it; the mean where it reports nothing else."""
    typical_ms: float
    """The tool's mean (the local tool's median): beside ``ms``, how much the runs varied."""
    runs: int
    statistic: str
    """"min" or "mean": which one ``ms`` is."""


def parse_output(tool: str, text: str) -> RunTiming:
    """The timing in `text`, printed by `tool` (one of `TOOLS`)."""
    parsers = {
        "benchncnn": _parse_benchncnn,
        "executor_runner": _parse_executor_runner,
        "onnxruntime_perf_test": _parse_onnxruntime_perf_test,
        "nas-local-bench": _parse_local,
    }
    if tool not in parsers:
        raise BenchOutputError(f"unknown benchmark tool {tool!r}: one of {', '.join(TOOLS)}")
    return parsers[tool](text)


def _parse_benchncnn(text: str) -> RunTiming:
    found = _BENCHNCNN.findall(text)
    if not found:
        raise BenchOutputError(
            _missing("benchncnn", "a 'min = ... max = ... avg = ...' line", text)
        )
    low, _, mean = (float(value) for value in found[-1])
    loops = _BENCHNCNN_LOOPS.search(text)
    return RunTiming(low, mean, int(loops.group(1)) if loops else 0, "min")


def _parse_executor_runner(text: str) -> RunTiming:
    iterations = [float(value) for value in _ET_ITERATION.findall(text)]
    if iterations:
        return RunTiming(min(iterations), statistics.fmean(iterations), len(iterations), "min")
    total = _ET_TOTAL.search(text)
    if not total:
        raise BenchOutputError(
            _missing("executor_runner", "'Iteration i of n: t ms' or 'Model executed' lines", text)
        )
    runs, spent = int(total.group(1)), float(total.group(2))
    return RunTiming(spent / runs, spent / runs, runs, "mean")


def _parse_onnxruntime_perf_test(text: str) -> RunTiming:
    mean = _ORT_MEAN.search(text)
    if not mean:
        raise BenchOutputError(
            _missing("onnxruntime_perf_test", "an 'Average inference time cost' line", text)
        )
    runs = _ORT_RUNS.search(text)
    low = _ORT_MIN.search(text)
    mean_ms = float(mean.group(1))
    if low:
        return RunTiming(
            float(low.group(1)) * 1000, mean_ms, int(runs.group(1)) if runs else 0, "min"
        )
    return RunTiming(mean_ms, mean_ms, int(runs.group(1)) if runs else 0, "mean")


def _parse_local(text: str) -> RunTiming:
    line = _LOCAL.search(text)
    if not line:
        raise BenchOutputError(_missing("nas-local-bench", "a 'nas-local-bench ...' line", text))
    fields = dict(part.split("=", 1) for part in line.group(1).split() if "=" in part)
    try:
        return RunTiming(
            float(fields["min_ms"]), float(fields["median_ms"]), int(fields["runs"]), "min"
        )
    except (KeyError, ValueError):
        raise BenchOutputError(
            f"nas-local-bench line without its figures: {line.group(0)!r}"
        ) from None


def _missing(tool: str, what: str, text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1][:200] if lines else "no output"
    return f"no timing from {tool} (expected {what}); its last line: {last!r}"
