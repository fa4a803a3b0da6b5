"""How `nas lut build` and `nas lut validate` time a module: backends, the timing loop, the machine.

Both commands must time operators and whole networks identically, or the comparison between a
table's sum and an end-to-end measurement says nothing; so the one way of doing it lives here.

Clock. With one thread the work runs on the calling thread, and that thread's CPU time is the
latency an idle core would show; unlike wall time it does not grow when other processes share
the machine (a laptop running a browser, a CI runner with neighbours). With several threads the
work is spread over a pool, so only wall time means anything.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nas.errors import InputError
from nas.search_spaces.signatures import OpSignature

if TYPE_CHECKING:  # torch loads on first use: a bundle's local tool times files without it
    import torch

BACKENDS = ("onnxruntime", "torch")
_RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)  # Linux has it


@dataclass(frozen=True)
class Timing:
    """Fastest undisturbed run, median and spread, in milliseconds.

    ``ms`` is the fastest run: interference only ever adds time, so the fastest run is what
    the device does undisturbed, and it is the figure that repeats. On a shared two-core
    virtual machine an operator's median over half a second moved by up to 16% from one half
    second to the next while its fastest run moved by 1%; priced with fastest runs, whole
    networks varied 2.9% around the operators' sum instead of 4.1% (docs/latency.md). On a
    quiet device the two differ by a few percent. ``median_ms`` is kept for comparison.
    ``std`` is the interquartile range scaled to a normal standard deviation (IQR / 1.349): a
    spread that a few stalled runs cannot blow up. ``runs`` counts every timed run,
    ``undisturbed`` those the figures were taken over.
    """

    ms: float
    std: float
    runs: int
    undisturbed: int
    median_ms: float = 0.0


def op_input_shape(sig: OpSignature) -> tuple[int, ...]:
    """Batch-of-one input of a signature's module (``fc`` and ``classifier`` take a vector)."""
    if sig.kind in ("fc", "classifier"):
        return (1, sig.in_c)
    return (1, sig.in_c, sig.in_h, sig.in_w)


def clock_name(threads: int) -> str:
    return "thread_cpu" if threads == 1 else "wall"


def measure(
    run: Callable[[], object],
    threads: int,
    repeats: int = 50,
    warmup: int = 10,
    min_seconds: float = 0.2,
    max_seconds: float = 10.0,
) -> Timing:
    """Time `run` after `warmup` calls until `repeats` undisturbed runs and `min_seconds` of work.

    A run during which the scheduler switched the thread out is left out of the figures: while
    it waited, other processes filled the caches with their data, so its time says more about
    the neighbours than about the operator. Thread CPU time already ignores the wait itself.
    On an idle device nearly every run counts; on a busy one the loop runs longer (up to
    `max_seconds`) to collect enough clean runs, and falls back to all runs if it cannot.
    """
    clock = time.thread_time_ns if threads == 1 else time.perf_counter_ns
    who = _RUSAGE_THREAD if threads == 1 else resource.RUSAGE_SELF
    for _ in range(warmup):
        run()
    every: list[int] = []
    clean: list[int] = []
    spent = 0
    budget = int(min_seconds * 1e9)
    deadline = time.perf_counter() + max_seconds
    while len(clean) < repeats or spent < budget:
        before = resource.getrusage(who)
        start = clock()
        run()
        elapsed = clock() - start
        after = resource.getrusage(who)
        every.append(elapsed)
        spent += elapsed
        if (after.ru_nivcsw, after.ru_nvcsw) == (before.ru_nivcsw, before.ru_nvcsw):
            clean.append(elapsed)
        if len(every) >= repeats and time.perf_counter() > deadline:
            break
    kept = clean if len(clean) >= max(3, repeats // 5) else every
    ms = np.asarray(kept, dtype=np.float64) / 1e6
    q1, q3 = np.percentile(ms, [25, 75])
    return Timing(
        ms=float(ms.min()),
        std=float((q3 - q1) / 1.349),
        runs=len(every),
        undisturbed=len(clean),
        median_ms=float(statistics.median(ms)),
    )


# ---- backends -----------------------------------------------------------------------------


class Backend:
    """Turns a torch module and an example input into a zero-argument callable that runs it."""

    name = ""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    @property
    def version(self) -> str:
        raise NotImplementedError

    def prepare(self, module: torch.nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        raise NotImplementedError


class OnnxRuntimeBackend(Backend):
    """Export to ONNX and run in an onnxruntime CPU session, as a deployed model would be."""

    name = "onnxruntime"

    def __init__(self, threads: int) -> None:
        super().__init__(threads)
        import onnxruntime

        self._ort = onnxruntime
        onnxruntime.set_default_logger_severity(3)

    @property
    def version(self) -> str:
        return self._ort.__version__

    def session_options(self):
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = self._ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        return options

    def prepare(self, module: torch.nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        from nas.evaluators.onnx_export import onnx_bytes

        model = onnx_bytes(module, shape)
        session = self._ort.InferenceSession(
            model, self.session_options(), providers=["CPUExecutionProvider"]
        )
        feed = {session.get_inputs()[0].name: np.random.rand(*shape).astype(np.float32)}
        return lambda: session.run(None, feed)


class TorchBackend(Backend):
    """Run the eager torch module; for devices where onnxruntime is not available."""

    name = "torch"

    @property
    def version(self) -> str:
        import torch

        return torch.__version__

    def prepare(self, module: torch.nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
        import torch

        torch.set_num_threads(self.threads)
        module = module.eval()
        example = torch.rand(*shape)

        def run() -> object:
            with torch.inference_mode():
                return module(example)

        return run


def get_backend(name: str, threads: int) -> Backend:
    """The backend called `name`; a missing runtime is the user's to install, so `InputError`."""
    if name == "onnxruntime":
        try:
            return OnnxRuntimeBackend(threads)
        except ImportError:
            raise InputError(
                "backend 'onnxruntime' is not installed: pip install onnxruntime, "
                "or use --backend torch"
            ) from None
    if name == "torch":
        return TorchBackend(threads)
    raise InputError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")


# ---- the machine --------------------------------------------------------------------------


def cpu_model() -> str:
    """CPU name from /proc/cpuinfo (x86 "model name"; ARM boards say "Hardware" or "Model")."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), value.strip())
    for name in ("model name", "hardware", "model", "cpu model", "processor"):
        if fields.get(name) and not fields[name].isdigit():
            return fields[name]
    return platform.processor() or platform.machine()


def l2_cache_bytes() -> int | None:
    """Per-core L2 size from sysfs, where a feature map stops being cheap to re-read."""
    folder = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(folder.glob("index*")) if folder.is_dir() else []:
        try:
            if (index / "level").read_text().strip() != "2":
                continue
            size = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        units = {"K": 1024, "M": 1024**2}
        return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    return None


def machine_info() -> dict[str, object]:
    """What identifies the device a table was measured on."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count() or 1,
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "l2_cache_bytes": l2_cache_bytes(),
    }
