"""Turn a trial or an arch into files a device or a colleague can use: ONNX, TorchScript,
ExecuTorch, ncnn, weights, JSON.

    model = build(spec)                      # spec: arch, input shape, classes, optional weights
    check = export(model, spec, "onnx", Path("model.onnx"), metadata)

Every model file is checked before it lands at its path: ONNX is run in onnxruntime,
TorchScript is loaded back, ExecuTorch and ncnn run in their own runtimes (`nas.phone`), all
against the eager torch model on the same random input; a difference beyond `RTOL`/`ATOL`
fails the export (`ExportFailed`, both from `nas.export_check`) and nothing is written. The
JSON document is what `nas train` and `nas arch show` read as an arch file (its top level is the
arch's own JSON), plus what the search measured and how, so a trial can be reproduced from it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from optuna.trial import FrozenTrial
from torch import nn

from nas.errors import InputError
from nas.evaluators.checkpoint import safetensors_bytes
from nas.evaluators.onnx_export import onnx_bytes, quiet_exporters
from nas.export_check import Check, ExportFailed, compare, float32_error
from nas.files import write_atomically
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model
from nas.search_spaces.signatures import DEPLOY_CLASSES, DEPLOY_INPUT, InputShape
from nas.study_attrs import DatasetInfo, StudyAttrs
from nas.trials import TrialAttrs

FORMATS = ("onnx", "torchscript", "executorch", "ncnn", "state-dict", "json")
CHECK_BATCH = 2
"""Checked on two images: one would not show a broken dynamic batch axis."""
JSON_FORMAT_VERSION = 1
CALIBRATION_BATCH = 4
"""Random images that set an untrained model's batch norms at a 224x224 input; a smaller input
gets as many more as keep the pixels the same (`_calibration_batch`)."""
CALIBRATION_SIDE = 224


@dataclass(frozen=True)
class ModelSpec:
    """What to build: the arch at an input shape and class count, random or trained weights."""

    arch: Arch
    input_shape: InputShape
    num_classes: int
    weights: dict[str, torch.Tensor] | None = None

    @property
    def trained(self) -> bool:
        return self.weights is not None

    def describe(self) -> str:
        shape = "x".join(map(str, self.input_shape))
        state = "trained weights" if self.trained else "UNTRAINED (random initialisation)"
        return f"{shape} input, {self.num_classes} classes, {state}"


def build(spec: ModelSpec) -> nn.Module:
    """The eval-mode torch model of `spec`, with its weights loaded if it has them.

    An untrained model is initialised from a fixed seed (the same file every time) and its
    batch norms are calibrated on random input: straight from initialisation, eval-mode
    activations shrink block by block to logits of about 1e-9, on which any comparison between
    runtimes passes whatever the graph computes.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(spec.arch, spec.input_shape, spec.num_classes)
        if spec.weights is None:
            _calibrate_batch_norm(model, spec.input_shape)
    if spec.weights is not None:
        try:
            model.load_state_dict(spec.weights, strict=True)
        except RuntimeError as error:
            # torch's message starts with a generic line; the second names the first mismatch
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise ExportFailed(
                f"the weights do not fit {spec.arch.to_string()} at "
                f"{spec.describe()}: {lines[min(1, len(lines) - 1)]}"
            ) from None
    return model.eval()


def _calibrate_batch_norm(model: nn.Module, input_shape: InputShape) -> None:
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: one batch sets the statistics outright
    model.train()
    with torch.no_grad():
        model(torch.randn(_calibration_batch(input_shape), *input_shape))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()


def _calibration_batch(input_shape: InputShape) -> int:
    """Images enough that each batch norm's statistics rest on as many values as at 224x224.

    A network built for 224x224 ends in 1x1 maps at a small input: four images would give
    each late batch norm four values per channel, some nearly equal, and a variance near zero
    whose inverse multiplies rounding layer after layer (logits in the thousands, a float32
    result far from the exact one). The same pixels as four 224x224 images cost the same.
    """
    _, height, width = input_shape
    pixels = CALIBRATION_BATCH * CALIBRATION_SIDE * CALIBRATION_SIDE
    return max(CALIBRATION_BATCH, -(-pixels // (height * width)))


def export(
    model: nn.Module | None, spec: ModelSpec, fmt: str, path: Path, metadata: dict[str, Any]
) -> Check | None:
    """Write `model` in `fmt` to `path` once it has passed its check; json needs no model."""
    if fmt == "json":
        write_atomically(path, json.dumps(metadata, indent=2) + "\n")
        return None
    if model is None:
        raise ValueError(f"format {fmt!r} needs a model")
    writer = {
        "onnx": _onnx,
        "torchscript": _torchscript,
        "executorch": _executorch,
        "ncnn": _ncnn,
        "state-dict": _state_dict,
    }[fmt]
    data, check = writer(model, spec, metadata)
    if not check.tolerance_ok:
        raise ExportFailed(
            f"{fmt} export does not compute what the torch model computes: "
            f"{check.describe()}; nothing was written"
        )
    files = data if isinstance(data, tuple) else (data,)
    # Last file first: an ncnn .param never names weights that are not there yet.
    for target, content in reversed(list(zip(output_paths(fmt, path), files))):
        write_atomically(target, content)
    return check


def output_paths(fmt: str, path: Path) -> list[Path]:
    """Every file `fmt` writes for `path`: ncnn's weights go beside its .param, as ncnn's tools
    name them (model.param, model.bin)."""
    return [path, path.with_suffix(".bin")] if fmt == "ncnn" else [path]


def random_input(spec: ModelSpec, seed: int = 0) -> torch.Tensor:
    """Normalised-image-like input, the same on every run so a failed check can be repeated."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(CHECK_BATCH, *spec.input_shape, generator=generator)


# ---- from a trial ---------------------------------------------------------------------------


def spec_for_trial(
    trial: FrozenTrial,
    dataset: DatasetInfo | None,
    input_size: int | None = None,
    num_classes: int | None = None,
    weights: dict[str, torch.Tensor] | None = None,
) -> ModelSpec:
    """The model to export for `trial`: its arch at the deployment input, or as trained.

    Without weights the model is built at the deployment input the trial was priced at (or
    `input_size`) for `num_classes` (1000 by default). Trained weights fix the input channels
    and classes to the proxy data's, and the recipe's stem rule for that input is applied, so
    the network is the one that was trained; only the resolution stays free. A run that does
    not record its proxy input (a final run, which trains at the data's own size) takes its
    channels from `dataset`, the study's (`nas.study_attrs.search_attrs`).
    """
    attrs = TrialAttrs.of(trial)
    arch = Arch.from_string(attrs.arch)
    priced = attrs.cost_input or list(DEPLOY_INPUT)
    size = input_size or int(priced[1])
    if weights is None:
        return ModelSpec(arch, (int(priced[0]), size, size), num_classes or DEPLOY_CLASSES)
    proxy = attrs.proxy_input or (dataset.input_shape if dataset else None)
    classes = dataset.num_classes if dataset else None
    if not proxy or not classes:
        raise InputError(
            f"trial {trial.number} has trained weights but its proxy input or the "
            f"dataset's classes are not recorded, so they cannot be loaded"
        )
    if num_classes is not None and num_classes != classes:
        raise InputError(
            f"trial {trial.number} was trained for {classes} classes; drop "
            f"--num-classes or pass --num-classes {classes}"
        )
    shape = (int(proxy[0]), size, size)
    if attrs.recipe:
        from nas.evaluators.recipe import Recipe

        arch = Recipe.from_dict(attrs.recipe).proxy_arch(arch, shape)
    return ModelSpec(arch, shape, int(classes), weights)


def trial_document(
    study_name: str, study_attrs: StudyAttrs, trial: FrozenTrial, trained: bool
) -> dict[str, Any]:
    """The JSON export: the arch (top level, readable as an arch file) and its record.

    `trained` says whether trained weights exist for the trial; the file itself holds none.
    """
    attrs = TrialAttrs.of(trial)
    arch = Arch.from_string(attrs.arch)
    record = {
        key: getattr(attrs, key)
        for key in (
            "mflops",
            "params",
            "latency_ms",
            "target",
            "latency_n_measured",
            "latency_n_modelled",
            "cost_input",
            "accuracy",
            "proxy_input",
            "recipe",
            "seed",
            "zoo",
            "outcome",
            "train_seconds",
            "nas_version",
        )
    }
    return {
        "format_version": JSON_FORMAT_VERSION,
        "arch": arch.to_string(),
        "study": study_name,
        "trial": trial.number,
        "trained": trained,
        **record,
        "dataset": study_attrs.dataset.to_dict() if study_attrs.dataset else None,
        "search": {
            key: (study_attrs.config or {}).get(key)
            for key in (
                "space",
                "target",
                "budget_mflops",
                "budget_params",
                "budget_ms",
                "dataset",
                "objective",
                "sampler",
                "seed",
            )
        },
        **arch.to_dict(),
    }


def arch_document(arch: Arch, source: str) -> dict[str, Any]:
    """The JSON export of an arch given by name, string or file: readable as an arch file."""
    from nas.search_spaces.zoo import ZOO

    return {
        "format_version": JSON_FORMAT_VERSION,
        "arch": arch.to_string(),
        "zoo": source if source in ZOO else None,
        "trained": False,
        **arch.to_dict(),
    }


# ---- formats ------------------------------------------------------------------------------


def _onnx(model: nn.Module, spec: ModelSpec, metadata: dict[str, Any]) -> tuple[bytes, Check]:
    import onnx
    import onnxruntime

    x = random_input(spec)
    with torch.no_grad():
        expected = model(x)
    data = onnx_bytes(model, (1, *spec.input_shape), dynamic_batch=True, output_name="logits")
    document = onnx.load_from_string(data)
    for key, value in _string_metadata(spec, metadata).items():
        document.metadata_props.add(key=key, value=value)
    data = document.SerializeToString()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        (actual,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    except Exception as error:  # onnxruntime raises its own exception types
        raise ExportFailed(
            f"onnxruntime cannot run the exported model: {str(error).splitlines()[0]}"
        ) from None
    runtime = f"onnxruntime {onnxruntime.__version__}"
    return data, compare(expected, actual, runtime, float32_error(model, x))


def _torchscript(
    model: nn.Module, spec: ModelSpec, metadata: dict[str, Any]
) -> tuple[bytes, Check]:
    x = random_input(spec)
    with quiet_exporters(), torch.no_grad():
        traced = torch.jit.trace(model, torch.zeros(1, *spec.input_shape), check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(
            traced, buffer, _extra_files={"nas.json": json.dumps(_string_metadata(spec, metadata))}
        )
        loaded = torch.jit.load(io.BytesIO(buffer.getvalue()))
        expected, actual = model(x), loaded(x)
    return buffer.getvalue(), compare(expected, actual, "torch.jit.load", float32_error(model, x))


def _executorch(model: nn.Module, spec: ModelSpec, metadata: dict[str, Any]) -> tuple[bytes, Check]:
    from nas import phone

    x = random_input(spec)
    try:
        data = phone.executorch_program(model, spec.input_shape)
    except (InputError, ExportFailed):
        raise
    except Exception as error:  # torch.export and the lowering raise many exception types
        raise ExportFailed(f"ExecuTorch cannot lower the model: {_first_line(error)}") from None
    try:
        actual = phone.run_executorch(data, x)
    except ExportFailed:
        raise
    except Exception as error:  # the runtime raises its own exception types
        raise ExportFailed(
            f"the ExecuTorch runtime cannot run the exported program: {_first_line(error)}"
        ) from None
    with torch.no_grad():
        error = float32_error(model, x)
        return data, compare(model(x), actual, phone.executorch_version(), error)


def _ncnn(
    model: nn.Module, spec: ModelSpec, metadata: dict[str, Any]
) -> tuple[tuple[bytes, bytes], Check]:
    from nas import phone

    x = random_input(spec)
    param, weights = phone.ncnn_model(model, spec.input_shape)
    try:
        actual = phone.run_ncnn(param, weights, x)
    except ExportFailed:
        raise
    except Exception as error:  # the binding raises its own exception types
        raise ExportFailed(f"ncnn cannot run the converted model: {_first_line(error)}") from None
    with torch.no_grad():
        error = float32_error(model, x)
        return (param, weights), compare(model(x), actual, phone.ncnn_version(), error)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _state_dict(model: nn.Module, spec: ModelSpec, metadata: dict[str, Any]) -> tuple[bytes, Check]:
    from safetensors.torch import load

    data = safetensors_bytes(model, _string_metadata(spec, metadata))
    reloaded = build_model(spec.arch, spec.input_shape, spec.num_classes).eval()
    reloaded.load_state_dict(load(data), strict=True)
    x = random_input(spec)
    with torch.no_grad():
        return data, compare(model(x), reloaded(x), "safetensors reload")


def _string_metadata(spec: ModelSpec, metadata: dict[str, Any]) -> dict[str, str]:
    """What every model file says about itself (ONNX, TorchScript and safetensors take strings)."""
    fields = {
        "arch": spec.arch.to_string(),
        "input_shape": "x".join(map(str, spec.input_shape)),
        "num_classes": str(spec.num_classes),
        "trained": str(spec.trained).lower(),
    }
    for key in ("study", "trial", "accuracy", "latency_ms", "target", "mflops"):
        if metadata.get(key) is not None:
            fields[key] = str(metadata[key])
    return fields
