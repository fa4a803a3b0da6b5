"""A trial's files in Optuna's artifact store: trained weights in, Pareto models out.

Two kinds of artifact belong to a search:

- ``weights.safetensors`` on a trial: its trained proxy weights. A trial takes artifacts only
  while it runs (Optuna refuses them once it is finished), so they are saved before the trial
  is told (`save_trial_weights`). A finalized trial's run in ``<study>.final`` carries the
  final training's weights; `nas export` builds from those first (`locate_weights`).
- ``trial-N.onnx`` and ``trial-N.arch.json`` on the study: every Pareto trial as a model and as
  a reproducible record (`attach_pareto_artifacts`, called once when a search ends), which
  optuna-dashboard lists on the study page for download.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.artifacts import ArtifactMeta, FileSystemArtifactStore, get_all_artifact_meta
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState

from nas.errors import InputError
from nas.evaluators.checkpoint import safetensors_bytes
from nas.export import ExportFailed, build, export, spec_for_trial, trial_document
from nas.front import TrainedRow
from nas.storage import artifact_store_for, upload
from nas.study import FINAL_SUFFIX, companion
from nas.study_attrs import StudyAttrs
from nas.trials import TrialAttrs

WEIGHTS_FILENAME = "weights.safetensors"


class ArtifactWriteFailed(RuntimeError):
    """An artifact could not be written (a full disk, an I/O error); the message says where.

    A full artifact folder fails every trial after it, so the driver stops on it rather than
    training candidates whose weights cannot be kept.
    """


def save_trial_weights(
    trial: optuna.Trial,
    weights: torch.nn.Module | Mapping[str, torch.Tensor] | bytes,
    store: FileSystemArtifactStore,
) -> str:
    """Attach trained weights to the running `trial`; returns the artifact id.

    `weights` is the trained model, its state dict, or safetensors bytes as a worker would
    send them back (so the driver stores them without decoding them). A write that fails
    leaves no part of the file (`nas.storage.artifacts.AtomicArtifactStore`) and raises
    `ArtifactWriteFailed`.
    """
    try:
        return _save_weights(trial, weights, store)
    except OSError as error:
        where = getattr(store, "_base_path", store)
        raise ArtifactWriteFailed(
            f"trial {trial.number}'s weights could not be saved in {where} "
            f"({error.strerror or error})",
        ) from error


def _save_weights(
    trial: optuna.Trial,
    weights: torch.nn.Module | Mapping[str, torch.Tensor] | bytes,
    store: FileSystemArtifactStore,
) -> str:
    if isinstance(weights, bytes):
        data = weights
    else:
        data = safetensors_bytes(weights, {"arch": str(TrialAttrs.of(trial).arch)})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / WEIGHTS_FILENAME
        path.write_bytes(data)
        return upload(trial, store, path, mimetype="application/octet-stream")


def find_weights(study: optuna.Study, trial: FrozenTrial) -> ArtifactMeta | None:
    """The trial's own trained-weights artifact, if one was saved."""
    metas = get_all_artifact_meta(trial, storage=study._storage)
    return next((meta for meta in metas if meta.filename == WEIGHTS_FILENAME), None)


@dataclass(frozen=True)
class FoundWeights:
    """Trained weights for a search trial: the final training's where it was finalized."""

    meta: ArtifactMeta
    owner: FrozenTrial
    """The trial they are attached to: the search trial, or its run in ``<study>.final``."""
    final: bool


def locate_weights(study: optuna.Study, trial: FrozenTrial) -> FoundWeights | None:
    """The best weights there are for `trial`: its final training's (lowest seed), else the
    proxy training's, else None."""
    final = companion(study, suffix=FINAL_SUFFIX)
    if final is not None:
        runs = [
            run
            for run in final.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if TrialAttrs.of(run).finalizes == trial.number
        ]
        for run in sorted(runs, key=lambda run: TrialAttrs.of(run).seed or 0):
            meta = find_weights(final, run)
            if meta is not None:
                return FoundWeights(meta, run, final=True)
    meta = find_weights(study, trial)
    return FoundWeights(meta, trial, final=False) if meta is not None else None


def load_weights(
    store: FileSystemArtifactStore, meta: ArtifactMeta, trial: FrozenTrial
) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    try:
        with store.open_reader(meta.artifact_id) as reader:
            data = reader.read()
    except ArtifactNotFound:
        raise InputError(
            f"trial {trial.number}'s {WEIGHTS_FILENAME} (artifact "
            f"{meta.artifact_id}) is not in the artifact store "
            f"{getattr(store, '_base_path', store)}: pass --artifact-dir with the "
            f"directory the search wrote artifacts to"
        ) from None
    return load(data)


def trial_weights(
    study: optuna.Study,
    trial: FrozenTrial,
    storage_url: str,
    base_dir: str | os.PathLike[str] | None = None,
) -> dict[str, torch.Tensor] | None:
    """The trial's trained weights (`locate_weights`), or None when none were saved."""
    found = locate_weights(study, trial)
    if found is None:
        return None
    return load_weights(artifact_store_for(storage_url, base_dir), found.meta, trial)


def attach_pareto_artifacts(
    study: optuna.Study,
    storage_url: str,
    rows: list[TrainedRow],
    base_dir: str | os.PathLike[str] | None = None,
) -> dict[int, list[str]]:
    """Attach each Pareto trial's ONNX model and arch JSON to the study; trial -> artifact ids.

    Files already attached (a resumed search ends again) are not uploaded twice. Models are
    built at the trial's deployment input, from its trained weights when the search saved them
    (then at the proxy data's channels and classes). Every trial is attempted; if any export
    fails its check, `ExportFailed` lists them all after the others are attached.
    """
    store = artifact_store_for(storage_url, base_dir)
    attached = {meta.filename: meta.artifact_id for meta in get_all_artifact_meta(study)}
    trials = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
    study_attrs = StudyAttrs.of(study)
    result: dict[int, list[str]] = {}
    failures: list[str] = []
    for row in rows:
        trial = trials[row.number]
        files = {f"trial-{trial.number}.onnx": "onnx", f"trial-{trial.number}.arch.json": "json"}
        try:
            missing = {name: fmt for name, fmt in files.items() if name not in attached}
            if missing:
                attached.update(
                    _upload_trial(study, trial, missing, storage_url, base_dir, store, study_attrs)
                )
        except (ExportFailed, InputError) as error:
            failures.append(f"trial {trial.number}: {error}")
            continue
        except OSError as error:  # a full or failing disk: the store keeps no part of a file
            where = getattr(store, "_base_path", store)
            failures.append(
                f"trial {trial.number}: not saved in {where} ({error.strerror or error})"
            )
            continue
        result[trial.number] = [attached[name] for name in files]
    if failures:
        raise ExportFailed("; ".join(failures))
    return result


def _upload_trial(
    study: optuna.Study,
    trial: FrozenTrial,
    files: dict[str, str],
    storage_url: str,
    base_dir: str | os.PathLike[str] | None,
    store: FileSystemArtifactStore,
    study_attrs: StudyAttrs,
) -> dict[str, str]:
    weights = trial_weights(study, trial, storage_url, base_dir)
    spec = spec_for_trial(trial, study_attrs.dataset, weights=weights)
    document = trial_document(study.study_name, study_attrs, trial, trained=weights is not None)
    model = build(spec) if "onnx" in files.values() else None
    ids = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, fmt in files.items():
            path = Path(folder) / name
            export(model, spec, fmt, path, document)
            ids[name] = upload(study, store, path, mimetype=_MIMETYPES[fmt])
    return ids


_MIMETYPES = {"onnx": "application/octet-stream", "json": "application/json"}
