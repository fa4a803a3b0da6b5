"""The one way a torch module becomes ONNX, for latency tables and exported models alike.

A table times each operator as an ONNX graph and `nas export` writes the network as one; both go
through the same exporter, opset and batch-norm folding, so a table describes the graphs a user
deploys.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

import torch

ONNX_OPSET = 17


def onnx_bytes(
    module: torch.nn.Module,
    example_shape: tuple[int, ...],
    *,
    dynamic_batch: bool = False,
    output_name: str = "output",
) -> bytes:
    """ONNX of `module` in eval mode for inputs of `example_shape` (batch first).

    Batch norm is folded into the convolutions. The TorchScript-based exporter is used while
    torch has it: it takes a fraction of a second where the torch.export one takes several,
    which matters for the thousands of operators of a table, and its output runs identically
    in onnxruntime. `dynamic_batch` leaves the batch axis free, as a deployed model needs.
    """
    module = module.eval()
    example = (torch.zeros(*example_shape),)
    names = {"input_names": ["input"], "output_names": [output_name]}
    buffer = io.BytesIO()
    with quiet_exporters(), torch.no_grad():
        try:
            axes = {"input": {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
            torch.onnx.export(
                module,
                example,
                buffer,
                dynamo=False,
                opset_version=ONNX_OPSET,
                do_constant_folding=True,
                dynamic_axes=axes,
                **names,
            )
        except (TypeError, RuntimeError, NotImplementedError):
            buffer = io.BytesIO()
            shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
            torch.onnx.export(
                module, example, buffer, dynamo=True, verbose=False, dynamic_shapes=shapes, **names
            )
    return buffer.getvalue()


@contextlib.contextmanager
def quiet_exporters() -> Iterator[None]:
    """The exporters print deprecation notes and progress that say nothing to the user."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
