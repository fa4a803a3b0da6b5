"""The Ray side of a search: stateless compute that trains one candidate and streams its epochs.

A worker gets an architecture (as its string), the dataset (through Ray's object store, so
cluster nodes need no copy of the data) and the training recipe, and yields one record per
epoch followed by the final result. It never touches the study database: the driver owns
that, decides early stopping from the streamed epochs and cancels the task if it should stop.

Records cross Ray as plain dicts (no classes of this package are unpickled on the way);
`WorkerMessage.from_dict` turns each back into an `EpochRecord` or a `TrialResult`.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ray

from nas.evaluators.checkpoint import safetensors_bytes
from nas.evaluators.datasets import Dataset
from nas.evaluators.recipe import Recipe
from nas.evaluators.results import EpochRecord, TrialResult
from nas.evaluators.training import build_proxy_model, iter_training
from nas.search_spaces.arch import Arch

EPOCH, RESULT = "epoch", "result"


@dataclass(frozen=True)
class WorkerMessage:
    """One record a worker streamed: an epoch or the final result, and where it ran.

    A successful result carries the trained weights as safetensors bytes, so the driver can
    attach them to the trial and `nas export` can ship a trained model.
    """

    host: str | None = None
    node_id: str | None = None
    epoch: EpochRecord | None = None
    result: TrialResult | None = None
    weights: bytes | None = None

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> WorkerMessage:
        where = {"host": item.get("host"), "node_id": item.get("node_id")}
        if item["type"] == EPOCH:
            return cls(**where, epoch=EpochRecord.from_dict(item))
        return cls(**where, result=TrialResult.from_dict(item), weights=item.get("weights"))


def train_candidate(
    arch_string: str, data: Dataset, recipe: dict[str, Any], final: bool = False
) -> Iterator[dict[str, Any]]:
    """Train `arch_string` and yield ``{"type": "epoch", ...}`` records, then the result.

    `final`: a final training (`nas.finalize`) on data without a validation split, scored once
    on the test split at the end.
    """
    where = {"host": socket.gethostname(), "node_id": _node_id(), "pid": os.getpid()}
    arch, parsed_recipe = Arch.from_string(arch_string), Recipe.from_dict(recipe)
    model = build_proxy_model(arch, data, parsed_recipe)
    training = iter_training(
        arch, data, parsed_recipe, model=model, validate=not final, score_test=final
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


def remote_trainer(cpus: int, gpus: float) -> Any:
    """`train_candidate` as a Ray task with this trial's resources.

    Ray's own retries are off: a failed attempt is recorded on its trial and retried by the
    driver as a new trial with the same parameters, so the history shows what happened.
    """
    return ray.remote(train_candidate).options(
        num_cpus=cpus, num_gpus=gpus, max_retries=0, retry_exceptions=False, num_returns="streaming"
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
