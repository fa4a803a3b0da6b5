"""A trained network on disk: weights as safetensors beside the JSON that rebuilds the module.

    out/model.safetensors   the state dict (no pickle: loading runs no code)
    out/arch.json           the architecture exactly as trained (stem rule already applied)
    out/recipe.json         the training recipe
    out/metrics.json        result, curve, test accuracy, dataset, input shape and classes

`load_checkpoint` rebuilds the module from arch.json and metrics.json and loads the weights
strictly, so a mismatched file fails loudly instead of half-loading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn

from nas.errors import InputError
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model

WEIGHTS, ARCH, RECIPE, METRICS = "model.safetensors", "arch.json", "recipe.json", "metrics.json"


def save_checkpoint(
    out_dir: Path, model: nn.Module, arch: Arch, recipe: dict[str, Any], metrics: dict[str, Any]
) -> list[Path]:
    """Write the four files; `metrics` must hold ``input_shape`` and ``num_classes``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    header = {
        "arch": arch.to_string(),
        "input_shape": json.dumps(list(metrics["input_shape"])),
        "num_classes": str(metrics["num_classes"]),
    }
    paths = [out_dir / WEIGHTS, out_dir / ARCH, out_dir / RECIPE, out_dir / METRICS]
    paths[0].write_bytes(safetensors_bytes(model, header))
    paths[1].write_text(json.dumps(arch.to_dict(), indent=2, sort_keys=True) + "\n")
    paths[2].write_text(json.dumps(recipe, indent=2) + "\n")
    paths[3].write_text(json.dumps(metrics, indent=2) + "\n")
    return paths


def load_checkpoint(out_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode, metrics) from a directory written by `save_checkpoint`."""
    folder = Path(out_dir)
    missing = [name for name in (WEIGHTS, ARCH, METRICS) if not (folder / name).is_file()]
    if missing:
        raise InputError(f"{folder} is not a trained-model folder: {', '.join(missing)} missing")
    arch = Arch.from_json((folder / ARCH).read_text())
    metrics = json.loads((folder / METRICS).read_text())
    model = build_model(arch, tuple(metrics["input_shape"]), int(metrics["num_classes"]))
    model.load_state_dict(load_file(str(folder / WEIGHTS)), strict=True)
    return model.eval(), metrics


def safetensors_bytes(
    weights: nn.Module | Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> bytes:
    """A model's (or a state dict's) tensors as safetensors bytes, with string `metadata`.

    safetensors takes only plain contiguous CPU tensors; channels_last weights are strided
    views, and a model trained on a GPU has its tensors there.
    """
    state = weights.state_dict() if isinstance(weights, nn.Module) else weights
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}
    return save(tensors, metadata=metadata)
