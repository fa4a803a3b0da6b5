"""Which device a candidate trains on, what that device is, and which precision it trains in.

    device = resolve_device("auto")        # cuda:0 where torch sees a GPU, else cpu
    describe_device(device)                # {"type": "cuda", "name": "...", "cuda": "12.8", ...}
    resolve_precision("auto", device)      # float32 on CPU; bfloat16 or float16 on a GPU

A GPU asked for where there is none is a user mistake (`InputError`: one line, exit 2), said
before anything trains, never a run that quietly falls back to the CPU. Inside a Ray task that
was given a GPU, Ray has already narrowed CUDA_VISIBLE_DEVICES to that GPU, so the task's GPU is
``cuda:0`` (`ray_task_device`).

This module imports torch only, so the GPU check in benchmarks/ runs where only torch, numpy
and this package are installed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from nas.errors import InputError

DEVICES = ("auto", "cpu", "cuda")
"""What `--device` accepts (``cuda:N`` too)."""


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device `spec` (auto, cpu, cuda, cuda:N) names on this machine.

    Raises InputError when a GPU is asked for and torch has none to give.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise InputError(f"--device {spec!r}: choose auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise InputError(f"--device {spec}: {no_cuda_reason()}; use --device cpu (or auto)")
    number = int(index or 0)
    count = torch.cuda.device_count()
    if number >= count:
        raise InputError(
            f"--device {spec}: torch sees {count} GPU{'s' if count != 1 else ''} "
            f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''}); "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}"
        )
    return torch.device("cuda", number)


def no_cuda_reason() -> str:
    """Why torch cannot use a GPU here, in words a user can act on."""
    if torch.version.cuda is None:
        return (
            f"this torch ({torch.__version__}) is a build without CUDA; install a CUDA build "
            f"(https://pytorch.org/get-started/locally/)"
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and not visible.strip():
        return "CUDA_VISIBLE_DEVICES is empty, which hides every GPU"
    return (
        f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU; check the "
        f"driver with nvidia-smi"
    )


def ray_task_device(gpu_ids: Sequence[Any]) -> torch.device:
    """The device of a Ray task that was given `gpu_ids` (`ray.get_gpu_ids()`).

    No ids: the CPU. Otherwise Ray has set CUDA_VISIBLE_DEVICES to exactly those GPUs for the
    task (a fraction of a GPU is one id, shared with other tasks), so torch numbers the task's
    GPU 0. Raises InputError when the task got a GPU that torch cannot use.
    """
    if not gpu_ids:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(
            f"Ray gave this trial GPU {', '.join(map(str, gpu_ids))} on "
            f"{os.uname().nodename}, but {no_cuda_reason()}"
        )
    return torch.device("cuda", 0)


def describe_device(device: torch.device) -> dict[str, Any]:
    """What a trial records about where it trained: kind, GPU name, CUDA and cuDNN versions."""
    info: dict[str, Any] = {"type": device.type, "torch": torch.__version__}
    if device.type != "cuda":
        return info
    index = device.index if device.index is not None else torch.cuda.current_device()
    properties = torch.cuda.get_device_properties(index)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    info.update(
        name=properties.name,
        capability=f"{properties.major}.{properties.minor}",
        memory_gib=round(properties.total_memory / 2**30, 1),
        cuda=torch.version.cuda,
        cudnn=_cudnn_version(cudnn),
        visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
    )
    return info


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision ``auto`` stands for on `device`; any other value as it is."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "float32"
    major, _ = torch.cuda.get_device_capability(device)
    return mixed_precision_for(major)


def mixed_precision_for(major: int) -> str:
    """``auto`` on a GPU of compute capability `major`.x: bfloat16 runs natively from 8.0
    (Ampere) on; older GPUs emulate it slowly and get float16 with loss scaling instead."""
    return "bfloat16" if major >= 8 else "float16"


def _cudnn_version(version: int | None) -> str | None:
    """cuDNN's integer version (90800) as 9.8.0."""
    if not version:
        return None
    major, rest = divmod(version, 10000) if version >= 10000 else divmod(version, 1000)
    return f"{major}.{rest // 100}.{rest % 100}"
