"""The Ray side of a search: stateless compute that trains one candidate and streams its epochs.

A worker gets an architecture (as its string), the dataset (through Ray's object store, so
cluster nodes need no copy of the data) and the training recipe, and yields one record per
epoch followed by the final result. It never touches the study database: the driver owns
that, decides early stopping from the streamed epochs and cancels the task if it should stop.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import ray
import torch
from safetensors.torch import save

from nas.evaluators.datasets import Dataset
from nas.evaluators.recipe import Recipe
from nas.evaluators.training import build_proxy_model, iter_training
from nas.search_spaces.arch import Arch

EPOCH, RESULT = "epoch", "result"


def train_candidate(arch_string: str, data: Dataset, recipe: dict[str, Any],
                    crash: bool = False) -> Iterator[dict[str, Any]]:
    """Train `arch_string` and yield ``{"type": "epoch", ...}`` records, then the result.

    A successful result carries the trained weights as safetensors bytes, so the driver can
    attach them to the trial and `nas export` can ship a trained model.
    `crash` is a fault switch for tests: the worker process exits at once, without cleanup,
    exactly as if it had been killed or had run out of memory.
    """
    if crash:
        os._exit(3)
    where = {"host": socket.gethostname(), "node_id": _node_id(), "pid": os.getpid()}
    arch, parsed_recipe = Arch.from_string(arch_string), Recipe.from_dict(recipe)
    model = build_proxy_model(arch, data, parsed_recipe)
    training = iter_training(arch, data, parsed_recipe, model=model)
    while True:
        try:
            record = next(training)
        except StopIteration as finished:
            result = finished.value
            break
        yield {"type": EPOCH, **record.to_dict(), **where}
    payload = {"type": RESULT, **result.to_dict(), **where}
    if result.ok:
        payload["weights"] = _safetensors_bytes(model)
    yield payload


def _safetensors_bytes(model: torch.nn.Module) -> bytes:
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    return save(state)


def _node_id() -> str | None:
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def remote_trainer(cpus: int, gpus: float) -> Any:
    """`train_candidate` as a Ray task with this trial's resources.

    Ray's own retries are off: a failed attempt is recorded on its trial and retried by the
    driver as a new trial with the same parameters, so the history shows what happened.
    """
    return ray.remote(train_candidate).options(
        num_cpus=cpus, num_gpus=gpus, max_retries=0, retry_exceptions=False,
        num_returns="streaming")
