"""Phone formats: an ExecuTorch program lowered to XNNPACK (.pte) and an ncnn .param/.bin pair.

Both are what a mobile app ships today: ExecuTorch is PyTorch's own on-device runtime (Android
and iOS), ncnn the runtime many Android apps bundle. Each writer converts the eval-mode model at
batch 1 (a phone classifies one frame at a time), loads the result in that runtime's Python
binding on this machine, and runs it image by image on the same random input as torch, so a
conversion that drops or changes an operator fails here rather than on a phone.

The converters and runtimes are the optional extra `nas[phone]`; without them the format is a
user error that says how to install it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import logging
import os
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from nas.errors import InputError
from nas.evaluators.onnx_export import quiet_exporters
from nas.export_check import ExportFailed
from nas.export_forms import four_dimensional

INSTALL = "pip install 'nas[phone]'"
PNNX_TIMEOUT_S = 600


def require(fmt: str, *modules: str) -> list[ModuleType]:
    """The modules `fmt` needs, or an `InputError` that says how to install them."""
    try:
        return [importlib.import_module(name) for name in modules]
    except ImportError as error:
        missing = error.name or str(error)
        raise InputError(
            f"--format {fmt} needs {missing}, which is not installed here: {INSTALL}"
        ) from None


def ncnn_weights_path(param: Path) -> Path:
    """Where the weights of an ncnn model go: beside its .param, as ncnn's own tools write them."""
    return param.with_suffix(".bin")


# ---- ExecuTorch -------------------------------------------------------------------------------


def executorch_program(model: nn.Module, input_shape: tuple[int, ...]) -> bytes:
    """The .pte bytes of `model` at batch 1, every operator XNNPACK supports delegated to it."""
    require("executorch", "executorch")
    with _quiet():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
            XnnpackPartitioner,
        )
        from executorch.exir import to_edge_transform_and_lower

        with torch.no_grad():
            program = torch.export.export(model, (torch.zeros(1, *input_shape),))
            lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            return bytes(lowered.to_executorch().buffer)


def run_executorch(data: bytes, images: torch.Tensor) -> np.ndarray:
    """The outputs of the program `data` in the ExecuTorch runtime, one image at a time."""
    require("executorch", "executorch")
    with _quiet():
        from executorch.runtime import Runtime

        # A Method does not keep its Program alive: holding the Program here keeps the
        # memory the method runs in from being freed under it.
        program = Runtime.get().load_program(data)
        method = program.load_method("forward")
        outputs = [method.execute([image[None].contiguous()])[0] for image in images]
        del program
    return torch.cat(outputs).numpy()


def executorch_version() -> str:
    return f"ExecuTorch {importlib.metadata.version('executorch')} (XNNPACK)"


# ---- ncnn -------------------------------------------------------------------------------------


def ncnn_model(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[bytes, bytes]:
    """The ncnn .param text and .bin weights of `model` at batch 1, converted by pnnx.

    pnnx reads a traced TorchScript file; weights stay float32 (fp16=0), so that the file holds
    the trained numbers and the check compares the graph, not a rounding. Its intermediate files
    stay in a temporary folder. Layers pnnx converts wrongly are traced in an equivalent form
    (`nas.export_forms`).
    """
    (pnnx,) = require("ncnn", "pnnx")
    model = four_dimensional(model)
    with tempfile.TemporaryDirectory(prefix="nas-pnnx-") as folder:
        work = Path(folder)
        with quiet_exporters(), torch.no_grad():
            traced = torch.jit.trace(model, torch.zeros(1, *input_shape), check_trace=False)
            traced.save(str(work / "model.pt"))
        shape = ",".join(map(str, (1, *input_shape)))
        outputs = {name: work / f"{name.replace('ncnn', 'model.').replace('pnnx', 'p.')}"
                   for name in ("ncnnparam", "ncnnbin", "ncnnpy", "pnnxparam", "pnnxbin",
                                "pnnxpy", "pnnxonnx")}  # fmt: skip
        command = [
            pnnx.EXEC_PATH,
            str(work / "model.pt"),
            f"inputshape=[{shape}]f32",
            "fp16=0",
            *(f"{name}={path}" for name, path in outputs.items()),
        ]
        try:
            done = subprocess.run(
                command, cwd=work, capture_output=True, text=True, timeout=PNNX_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise _failed(f"pnnx did not run: {error}") from None
        param, weights = outputs["ncnnparam"], outputs["ncnnbin"]
        if done.returncode != 0 or not param.is_file() or not weights.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            raise _failed(f"pnnx cannot convert the model (exit {done.returncode}): {lines[-1]}")
        return param.read_bytes(), weights.read_bytes()


def run_ncnn(param: bytes, weights: bytes, images: torch.Tensor) -> np.ndarray:
    """The outputs of an ncnn model in ncnn's float32 path, one image at a time.

    fp16 and bf16 storage and arithmetic are switched off: a phone may turn them on for speed,
    but the check is about whether the converted graph computes what torch computes.
    """
    (ncnn,) = require("ncnn", "ncnn")
    with tempfile.TemporaryDirectory(prefix="nas-ncnn-") as folder:
        param_path, weights_path = Path(folder) / "model.param", Path(folder) / "model.bin"
        param_path.write_bytes(param)
        weights_path.write_bytes(weights)
        with ncnn.Net() as net:
            for option in (
                "use_fp16_packed",
                "use_fp16_storage",
                "use_fp16_arithmetic",
                "use_bf16_storage",
            ):
                setattr(net.opt, option, False)
            if net.load_param(str(param_path)) != 0 or net.load_model(str(weights_path)) != 0:
                raise _failed("ncnn cannot load the converted model")
            (name_in,), (name_out,) = net.input_names(), net.output_names()
            outputs = []
            for image in images:
                pixels = np.ascontiguousarray(image.numpy(), dtype=np.float32)  # CHW
                with net.create_extractor() as extractor:
                    extractor.input(name_in, ncnn.Mat(pixels))
                    status, output = extractor.extract(name_out)
                    if status != 0:
                        raise _failed(f"ncnn failed to run the converted model (status {status})")
                    outputs.append(np.array(output).reshape(-1).copy())
    return np.stack(outputs)


def ncnn_version() -> str:
    return f"ncnn {importlib.metadata.version('ncnn')} (pnnx {importlib.metadata.version('pnnx')})"


# ---- shared -----------------------------------------------------------------------------------


def _failed(message: str) -> ExportFailed:
    return ExportFailed(message)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ExecuTorch, torchao and XNNPACK print import notes, deprecations and CPU probing lines
    (some from C++, straight to file descriptor 2) that say nothing about the model."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch", "executorch")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null, warnings.catch_warnings(), quiet_exporters():
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


# ---- latency bundles --------------------------------------------------------------------------


def bundle_writer(fmt: str) -> tuple[Callable[[nn.Module, tuple[int, ...]], dict[str, bytes]], str]:
    """What `nas lut bundle` writes each operator and network with in `fmt`, and the exporter's
    name and version for the bundle's record. The files are timed on a phone, not compared
    with torch: their weights are random, and what matters is the graph the runtime runs."""
    if fmt == "onnx":
        from nas.evaluators.onnx_export import ONNX_OPSET, onnx_bytes

        return (
            lambda module, shape: {".onnx": onnx_bytes(module, (1, *shape))},
            f"torch.onnx {torch.__version__} (opset {ONNX_OPSET})",
        )
    if fmt == "executorch":
        require("executorch", "executorch")
        return (
            lambda module, shape: {".pte": executorch_program(module, shape)},
            executorch_version(),
        )
    if fmt == "ncnn":
        require("ncnn", "pnnx", "ncnn")

        def write_ncnn(module: nn.Module, shape: tuple[int, ...]) -> dict[str, bytes]:
            param, weights = ncnn_model(module, shape)
            return {".param": param, ".bin": weights}

        return write_ncnn, ncnn_version()
    raise InputError(f"unknown --format {fmt!r}: one of onnx, executorch, ncnn")
