"""The Ray side of a search: stateless compute that trains one candidate and streams its epochs.

A worker gets an architecture (as its string), the dataset (through Ray's object store, so
cluster nodes need no copy of the data) and the training recipe, and yields one record per
epoch followed by the final result. It never touches the study database: the driver owns
that, decides early stopping from the streamed epochs and cancels the task if it should stop.

Records cross Ray as plain dicts (no classes of this package are unpickled on the way);
`WorkerMessage.from_dict` turns each back into an `EpochRecord` or a `TrialResult`.

A task that asked for GPUs (`--gpus-per-trial`) trains on the GPU Ray gave it: Ray sets the
task's CUDA_VISIBLE_DEVICES to its GPU ids before the task runs, so that GPU is torch's
``cuda:0`` (`ray_task_device`). That holds only in a fresh process, since CUDA reads the
variable once per process, which is why GPU tasks never reuse a worker process (`max_calls=1`,
Ray's own default for functions declared with GPUs). Several tasks with a fraction of a GPU
each share one GPU, each in its own process.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ray

from nas.errors import InputError
from nas.evaluators.checkpoint import safetensors_bytes
from nas.evaluators.datasets import Dataset
from nas.evaluators.device import (
    describe_device,
    mixed_precision_for,
    ray_task_device,
    resolve_precision,
)
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import EpochRecord, TrialResult
from nas.evaluators.training import build_proxy_model, iter_training
from nas.search_spaces.arch import Arch

EPOCH, RESULT = "epoch", "result"

GPU_PROBE_S = 300.0
"""How long the driver waits for its GPU probe task: a fresh worker process imports torch and
starts CUDA (seconds), but the cluster's GPUs may all be busy with another search's trials."""

GPU_PROBE_QUIET_S = 30.0
"""How long the probe waits before it says that it is waiting."""


@dataclass(frozen=True)
class WorkerMessage:
    """One record a worker streamed: an epoch or the final result, and where it ran.

    A successful result carries the trained weights as safetensors bytes, so the driver can
    attach them to the trial and `nas export` can ship a trained model. `device` is what the
    candidate trained on (`describe_device`: cpu, or the GPU's name, CUDA and cuDNN versions)
    and the precision it trained in (the recipe's, ``auto`` resolved for that device).
    """

    host: str | None = None
    node_id: str | None = None
    device: dict[str, Any] | None = None
    epoch: EpochRecord | None = None
    result: TrialResult | None = None
    weights: bytes | None = None

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> WorkerMessage:
        where = {
            "host": item.get("host"),
            "node_id": item.get("node_id"),
            "device": item.get("device"),
        }
        if item["type"] == EPOCH:
            return cls(**where, epoch=EpochRecord.from_dict(item))
        return cls(**where, result=TrialResult.from_dict(item), weights=item.get("weights"))


def train_candidate(
    arch_string: str, data: Dataset, recipe: dict[str, Any], final: bool = False
) -> Iterator[dict[str, Any]]:
    """Train `arch_string` and yield ``{"type": "epoch", ...}`` records, then the result.

    `final`: a final training (`nas.finalize`) on data without a validation split, scored once
    on the test split at the end. The device is the GPU Ray gave the task, else the CPU.
    """
    device = ray_task_device(_gpu_ids())
    arch, parsed_recipe = Arch.from_string(arch_string), Recipe.from_dict(recipe)
    precision = resolve_precision(parsed_recipe.precision, device)
    where = {
        "host": socket.gethostname(),
        "node_id": _node_id(),
        "pid": os.getpid(),
        "device": {**describe_device(device), "precision": precision},
    }
    model = build_proxy_model(arch, data, parsed_recipe)
    training = iter_training(
        arch,
        data,
        parsed_recipe,
        model=model,
        validate=not final,
        score_test=final,
        device=device,
    )
    while True:
        try:
            record = next(training)
        except StopIteration as finished:
            result = finished.value
            break
        yield {"type": EPOCH, **record.to_dict(), **where}
    payload = {"type": RESULT, **result.to_dict(), **where}
    if result.ok:
        payload["weights"] = safetensors_bytes(model)
    yield payload


def _node_id() -> str | None:
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _gpu_ids() -> list[Any]:
    return list(ray.get_gpu_ids()) if ray.is_initialized() else []


def remote_trainer(cpus: int, gpus: float) -> Any:
    """`train_candidate` as a Ray task with this trial's resources.

    Ray's own retries are off: a failed attempt is recorded on its trial and retried by the
    driver as a new trial with the same parameters, so the history shows what happened. The
    resources are declared in `ray.remote`, not `.options`: only there do GPUs make Ray start a
    fresh worker process per task (`max_calls=1`), which CUDA_VISIBLE_DEVICES needs.
    """
    return ray.remote(
        num_cpus=cpus,
        num_gpus=gpus,
        max_retries=0,
        retry_exceptions=False,
        num_returns="streaming",
        **({"max_calls": 1} if gpus else {}),
    )(train_candidate)


def probe_device() -> dict[str, Any]:
    """What a trial's task would train on: `describe_device`, or ``{"error": why}``."""
    try:
        return describe_device(ray_task_device(_gpu_ids()))
    except InputError as error:
        return {"error": str(error)}


def check_gpu_training(
    cpus: float,
    gpus: float,
    timeout_s: float = GPU_PROBE_S,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """Before any trial, run one task with a trial's resources and check that torch there can
    use the GPU Ray gives it; returns its `describe_device`, or None if none ran in time.

    Ray counts GPUs by what the node reports (nvidia-smi), not by what torch can use: a GPU
    node whose torch is a CPU build would fail every trial. Raises InputError when it would.
    `say` (stderr by default) tells of a wait for a GPU that other work holds.
    """
    if gpus <= 0:
        return None
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    probe = ray.remote(num_cpus=cpus, num_gpus=gpus, max_calls=1, max_retries=0)(probe_device)
    ref = probe.remote()
    ready, _ = ray.wait([ref], timeout=min(GPU_PROBE_QUIET_S, timeout_s))
    if not ready and timeout_s > GPU_PROBE_QUIET_S:
        say(
            f"GPU trials: waiting up to {timeout_s - GPU_PROBE_QUIET_S:.0f} s more for a free "
            f"GPU to check that torch can use it"
        )
        ready, _ = ray.wait([ref], timeout=timeout_s - GPU_PROBE_QUIET_S)
    if not ready:
        ray.cancel(ref, force=True)
        return None
    try:
        info = ray.get(ref)
    except Exception as error:  # the task died: a broken node, not the user's flags
        raise InputError(f"--gpus-per-trial {gpus:g}: a GPU task failed: {error_line(error)}")
    if "error" in info:
        raise InputError(f"--gpus-per-trial {gpus:g}: {info['error']}")
    return info


def describe_gpu_trials(info: dict[str, Any], gpus: float, recipe: Recipe) -> str:
    """The line a search prints about what its GPU trials train on (`check_gpu_training`'s
    `info`), with how many share a GPU and in which precision."""
    per_gpu = f", {10_000 // int(round(gpus * 10_000))} trials per GPU" if gpus < 1 else ""
    precision = recipe.precision
    if precision == "auto":
        major = int(str(info.get("capability") or "0").split(".")[0])
        precision = f"auto: {mixed_precision_for(major)}"
    return (
        f"GPU trials: {info.get('name')} (compute {info.get('capability')}, CUDA "
        f"{info.get('cuda')}, cuDNN {info.get('cudnn')}), precision {precision}{per_gpu}"
    )


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Exit|Interrupt)\w*): (.+)$")


def error_line(error: BaseException) -> str:
    """One line that says why a task failed.

    A RayTaskError's own text starts with the task's name and pid; what went wrong is the last
    exception line of its cause's traceback (an import error, a killed worker, ...).
    """
    cause = getattr(error, "cause", None) or error
    text = _ANSI.sub("", str(cause))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _EXCEPTION_LINE.match(line)
        if match:
            return f"{match.group(1)}: {match.group(2)}"
    kind = type(cause).__name__
    return f"{kind}: {lines[0]}" if lines else kind
