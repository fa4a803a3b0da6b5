"""The benchmark tool of the bundle runner's local mode: a model file timed in its Python runtime.

On a phone the runner calls the runtime's own benchmark binary; in local mode (this machine in
place of the phone, for a table of this machine in that runtime, or to try a bundle before a
phone is at hand) it calls this instead, with the same model files and thread count::

    python -m nas.evaluators.latency.local_bench FORMAT MODEL --shape 1,3,224,224 --threads 1

It loads the model in the runtime's Python binding (onnxruntime, ncnn, ExecuTorch) and times
it with the loop `nas lut build` uses (`timing.measure`: warm-up, fastest undisturbed run,
thread CPU time with one thread), so a table imported from a local run is timed as a built one
is. It prints one line that `bench_output` reads::

    nas-local-bench min_ms=0.1234 median_ms=0.1288 runs=50 runtime=ncnn-1.0.20250503
"""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nas.evaluators.latency.timing import measure

FORMATS = ("onnx", "ncnn", "executorch")


def prepare(fmt: str, model: Path, shape: tuple[int, ...], threads: int) -> Callable[[], object]:
    """A zero-argument callable that runs `model` once on a fixed random input."""
    data = np.random.default_rng(0).random(shape, dtype=np.float32)
    if fmt == "onnx":
        import onnxruntime

        from nas.evaluators.latency.timing import OnnxRuntimeBackend

        options = OnnxRuntimeBackend(threads).session_options()
        session = onnxruntime.InferenceSession(
            model.read_bytes(), options, providers=["CPUExecutionProvider"]
        )
        feed = {session.get_inputs()[0].name: data}
        return lambda: session.run(None, feed)
    if fmt == "ncnn":
        import ncnn

        net = ncnn.Net()
        net.opt.num_threads = threads
        if net.load_param(str(model)) != 0 or net.load_model(str(model.with_suffix(".bin"))) != 0:
            raise SystemExit(f"ncnn cannot load {model}")
        (name_in,), (name_out,) = net.input_names(), net.output_names()
        array = np.ascontiguousarray(data[0])
        pixels = ncnn.Mat(array)  # a view of `array`, which must outlive it

        def run_ncnn() -> object:
            with net.create_extractor() as extractor:
                extractor.input(name_in, pixels)
                return array.shape, extractor.extract(name_out)

        return run_ncnn
    if fmt == "executorch":
        import torch
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime

        # XNNPACK runs on ExecuTorch's own thread pool (one thread per core by default), not
        # torch's; with one thread it runs on the calling thread, which the clock then sees.
        _unsafe_reset_threadpool(threads)
        program = Runtime.get().load_program(model.read_bytes())
        method = program.load_method("forward")
        example = [torch.from_numpy(data)]
        # The closure holds the Program too: a Method alone does not keep its memory alive.
        return lambda: (program, method.execute(example))[1]
    raise SystemExit(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def runtime_version(fmt: str) -> str:
    package = {"onnx": "onnxruntime", "ncnn": "ncnn", "executorch": "executorch"}[fmt]
    return f"{package}-{importlib.metadata.version(package)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("model", type=Path)
    parser.add_argument("--shape", required=True, help="input shape, batch first: 1,3,224,224")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    shape = tuple(int(side) for side in args.shape.split(","))
    try:
        run = prepare(args.format, args.model, shape, args.threads)
        timing = measure(run, args.threads, repeats=args.runs, warmup=args.warmup, min_seconds=0.0)
    except Exception as error:  # the runner keeps the line as the run's failure
        raise SystemExit(f"nas-local-bench: {args.model} did not run: {error}") from None
    print(
        f"nas-local-bench min_ms={timing.ms:.6f} median_ms={timing.median_ms:.6f} "
        f"runs={timing.runs} "
        f"runtime={runtime_version(args.format)}",
        flush=True,
    )


if __name__ == "__main__":
    main()
