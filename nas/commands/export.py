"""`nas export`: one trial, zoo network or arch as ONNX, TorchScript, ExecuTorch, ncnn,
safetensors weights or a reproducible JSON."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import optuna
from optuna.trial import FrozenTrial

from nas.artifacts import FoundWeights, load_weights, locate_weights
from nas.commands._output import console, storage_option, study_option
from nas.errors import InputError
from nas.evaluators.latency import load_table
from nas.export import (
    FORMATS,
    Check,
    ExportFailed,
    ModelSpec,
    arch_document,
    build,
    export,
    output_paths,
    spec_for_trial,
    trial_document,
)
from nas.preflight import require_writable_file
from nas.search_spaces.limits import check_input_size
from nas.search_spaces.resolve import resolve_arch
from nas.search_spaces.signatures import DEPLOY_CLASSES, DEPLOY_INPUT
from nas.select import best_trial, open_existing_storage, pick_study, pick_trial
from nas.storage import artifact_store_for
from nas.study import FINAL_SUFFIX
from nas.study_attrs import StudyAttrs, search_attrs
from nas.trials import TrialAttrs


@click.command("export")
@study_option
@storage_option
@click.option(
    "--trial", "number", type=click.IntRange(min=0), default=None, help="Trial number to export."
)
@click.option(
    "--best",
    is_flag=True,
    help="Export the most accurate trial on the Pareto front (see --max-ms).",
)
@click.option(
    "--arch",
    "arch_text",
    default=None,
    metavar="NAME|STRING|FILE",
    help="Instead of a trial: a zoo network (see `nas zoo`), an arch string or an arch JSON "
    "file, built untrained at the deployment input.",
)
@click.option(
    "--max-ms",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="With --best: only trials at most this many ms on the study's target.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="onnx (checked in onnxruntime), torchscript (traced), executorch (.pte lowered to "
    "XNNPACK, checked in ExecuTorch), ncnn (.param and .bin through pnnx, checked in ncnn), "
    "state-dict (safetensors) or json (the arch and its record, for `nas train`). executorch "
    "and ncnn need `pip install 'nas[phone]'`.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write; for ncnn NAME.param, with the weights written beside it as NAME.bin.",
)
@click.option(
    "--input-size",
    type=click.IntRange(min=8),
    default=None,
    help="Side of the square input [default: the deployment input the trial was priced at, 224].",
)
@click.option(
    "--num-classes",
    type=click.IntRange(min=1),
    default=None,
    help="Classifier outputs [default: 1000, or the proxy dataset's with trained weights].",
)
@click.option(
    "--artifact-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artifact store holding trained weights [default: 'artifacts' beside a "
    "SQLite file, ./artifacts otherwise].",
)
def command(
    study: str | None,
    storage: str,
    number: int | None,
    best: bool,
    arch_text: str | None,
    max_ms: float | None,
    fmt: str,
    out: Path,
    input_size: int | None,
    num_classes: int | None,
    artifact_dir: Path | None,
) -> None:
    """Build one trial's (or --arch's) model at the deployment input and write it to --out.

    When the search saved trained weights for the trial (weights.safetensors), the model has
    them, with the proxy data's channels and classes; otherwise it is randomly initialised, and
    the command says so. Model files are checked before they are written: ONNX runs in
    onnxruntime, TorchScript is loaded back, ExecuTorch and ncnn run in their own runtimes, and
    each must match torch on random input.
    """
    if [number is not None, best, arch_text is not None].count(True) != 1:
        raise InputError("pass exactly one of --trial N, --best and --arch NAME")
    if max_ms is not None and not best:
        raise InputError("--max-ms goes with --best; with --trial N or --arch the model is fixed")
    if input_size is not None:
        check_input_size(input_size)
    if fmt == "ncnn" and out.suffix != ".param":
        raise InputError(
            f"ncnn writes a .param file and its .bin weights beside it: pass --out "
            f"{out.with_suffix('.param')}"
        )
    for path in output_paths(fmt, out):
        require_writable_file(path, "--out" if path == out else "the weights file")
    if arch_text is not None:
        _export_arch(arch_text, fmt, out, input_size, num_classes)
        return
    chosen = _choose(storage, study, number, best, max_ms, input_size, num_classes, artifact_dir)
    check = _write(chosen.spec, fmt, out, chosen.document)
    _say_what_was_written(chosen, fmt, out, input_size, check)


@dataclass(frozen=True)
class _Chosen:
    """The trial to export and what its model is built from."""

    study: optuna.Study
    study_attrs: StudyAttrs
    """The study's record, with its search's data and settings for a companion study."""
    trial: FrozenTrial
    located: FoundWeights | None
    spec: ModelSpec
    document: dict[str, Any]


def _choose(
    storage: str,
    study: str | None,
    number: int | None,
    best: bool,
    max_ms: float | None,
    input_size: int | None,
    num_classes: int | None,
    artifact_dir: Path | None,
) -> _Chosen:
    """Find the trial (--trial N or --best) and its weights, and say what to build."""
    rdb = open_existing_storage(storage)
    try:
        found = pick_study(rdb, study)
        study_attrs = search_attrs(found)
        trial = best_trial(found, max_ms) if best else pick_trial(found, number)
        located = locate_weights(found, trial)
        weights = (
            load_weights(artifact_store_for(storage, artifact_dir), located.meta, trial)
            if located
            else None
        )
        spec = spec_for_trial(trial, study_attrs.dataset, input_size, num_classes, weights)
        document = trial_document(found.study_name, study_attrs, trial, trained=weights is not None)
    finally:
        rdb.engine.dispose()
    return _Chosen(found, study_attrs, trial, located, spec, document)


def _say_what_was_written(
    chosen: _Chosen, fmt: str, out: Path, input_size: int | None, check: Check | None
) -> None:
    """The trial's figures, the files written, their check, and whose weights they carry."""
    attrs, spec = TrialAttrs.of(chosen.trial), chosen.spec
    target = attrs.target or chosen.study_attrs.target
    console.print(
        f"trial {chosen.trial.number} of {chosen.study.study_name}: "
        + (f"val acc {attrs.accuracy:.2%}, " if attrs.accuracy is not None else "")
        + f"{_or_nan(attrs.latency_ms):.2f} ms on {target or '?'}, "
        f"{_or_nan(attrs.mflops):.1f} MFLOPs"
    )
    if fmt == "json":
        console.print(
            f"wrote {out} (arch and record; trained weights "
            f"{'exist' if spec.trained else 'do not exist'} for this trial)"
        )
        return
    console.print(f"wrote {_written(fmt, out)} ({fmt}, {spec.describe()})")
    if input_size is not None and attrs.target:
        console.print(_latency_at(spec, attrs.target))
    if check is not None:
        console.print(check.describe())
    if spec.trained and chosen.located is not None:
        dataset = chosen.study_attrs.dataset
        console.print(
            f"the weights are the {_training(chosen.study, chosen.study_attrs, chosen.located)} "
            f"on {(dataset and dataset.name) or '?'}: "
            f"the model takes {spec.input_shape[0]}-channel input and predicts its "
            f"{spec.num_classes} classes"
        )
    else:
        console.print(
            "note: the search saved no trained weights for this trial, so the model "
            "is untrained (random initialisation): train it with `nas train` before "
            "deploying it"
        )


def _training(found: optuna.Study, study_attrs: StudyAttrs, located: FoundWeights) -> str:
    """Which training the weights come from: a final run (of a search trial that was
    finalized, or a trial of a ``.final`` study itself), or the search's proxy run."""
    if located.final:
        where = f"{found.study_name}{FINAL_SUFFIX}"
    elif study_attrs.finalizes_study is not None:
        where = found.study_name
    else:
        return "proxy training's"
    owner = TrialAttrs.of(located.owner)
    epochs = (owner.recipe or {}).get("epochs", "?")
    return (
        f"final training's ({epochs} epochs on the whole training split, seed {owner.seed}, "
        f"study {where} trial {located.owner.number})"
    )


def _export_arch(
    text: str, fmt: str, out: Path, input_size: int | None, num_classes: int | None
) -> None:
    """A zoo network, arch string or arch file, untrained: what a user deploys to try a
    network on a phone before any search, or trains afterwards with `nas train`."""
    arch = resolve_arch(text)
    size = input_size or DEPLOY_INPUT[1]
    spec = ModelSpec(arch, (DEPLOY_INPUT[0], size, size), num_classes or DEPLOY_CLASSES)
    check = _write(spec, fmt, out, arch_document(arch, text))
    if fmt == "json":
        console.print(f"wrote {out} (the arch, for `nas train` and `nas arch show`)")
        return
    console.print(f"wrote {_written(fmt, out)} ({fmt}, {spec.describe()})")
    if check is not None:
        console.print(check.describe())
    console.print(
        "note: --arch builds the network untrained (random initialisation): train it with "
        "`nas train` before deploying it"
    )


def _write(spec: ModelSpec, fmt: str, out: Path, document: dict) -> Check | None:
    """Export, or exit 1 with one line when the file fails its check (nothing is written)."""
    try:
        return export(None if fmt == "json" else build(spec), spec, fmt, out, document)
    except ExportFailed as error:
        click.echo(f"nas: export failed: {error}", err=True)
        sys.exit(1)


def _written(fmt: str, out: Path) -> str:
    return " and ".join(str(path) for path in output_paths(fmt, out))


def _latency_at(spec: ModelSpec, target: str) -> str:
    """The exported model's latency on the study's target at the input it was exported for."""
    shape = "x".join(map(str, spec.input_shape))
    try:
        estimate = load_table(target).predict(spec.arch, spec.input_shape, spec.num_classes)
    except InputError as error:
        return f"latency at {shape} not priced: {error}"
    return (
        f"{estimate.total_ms:.2f} ms on {target} at {shape} ({estimate.n_measured} operators "
        f"measured, {estimate.n_modelled} modelled)"
    )


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value
