"""`nas lut bundle`: every operator of a space as a model file a phone's benchmark tool can time.

An Android phone has no Python and no onnxruntime wheel, so `nas lut build` cannot run on it.
The bundle carries the work there instead: each operator of the space, the call-overhead
probe, the calibration networks `nas lut build` times (same seed) and networks to judge the
table with (another seed, plus the zoo), each written as a standalone model in the phone's
format, a manifest that says what each file is, and `run.py`, which pushes them with adb,
times each with the runtime's own benchmark binary and keeps the raw output. `nas lut import`
(`device_import`) turns those outputs into a table.

Writing a model in a phone format belongs to the exporters (``nas.phone``), not to this
subsystem, so the caller passes the writer in (`ModelWriter`).

Layout of a bundle::

    manifest.json       what each model is, the order and settings of every timed run
    models/<id>.<ext>   one model per operator or network (ncnn: .param and .bin)
    run.py              the runner (standard library only; --local runs it on this machine)
    raw/<run>.txt       the benchmark tool's output, one file per finished run
    raw/device.json     the device's properties, the tool and the runtime's version
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from nas.errors import InputError
from nas.evaluators.latency.build import progress_bar
from nas.evaluators.latency.bundle_files import BUNDLE_VERSION, read_manifest
from nas.evaluators.latency.calibrate import CALIBRATION_SEED
from nas.evaluators.latency.networks import sample_archs
from nas.evaluators.latency.timing import op_input_shape
from nas.files import write_atomically
from nas.search_spaces.arch import Arch
from nas.search_spaces.builder import build_model, build_op
from nas.search_spaces.limits import check_input_size
from nas.search_spaces.signatures import DEPLOY_CLASSES, OpSignature
from nas.search_spaces.space import DEFAULT_SPACE, SearchSpace, load_space
from nas.search_spaces.zoo import zoo_at

MANIFEST = "manifest.json"
RUNNER = "run.py"

ModelWriter = Callable[[torch.nn.Module, tuple[int, ...]], dict[str, bytes]]
"""(module in eval mode, input shape without the batch) -> {file suffix: bytes}; the first
suffix is the file the benchmark tool is given (ncnn's .param; its .bin rides along)."""


@dataclass(frozen=True)
class PhoneFormat:
    """A phone format, the benchmark tool its runtime ships, and how that tool is called."""

    name: str
    tool: str
    runtime: str
    precision: str
    command: tuple[str, ...]
    """Arguments after the tool's path; placeholders: {model} {threads} {loops} {shape_whc}."""


PHONE_FORMATS = {
    "executorch": PhoneFormat(
        "executorch",
        "executor_runner",
        "executorch",
        "float32 (XNNPACK)",
        ("--model_path={model}", "--num_executions={loops}", "--cpu_threads={threads}"),
    ),
    "ncnn": PhoneFormat(
        "ncnn",
        "benchncnn",
        "ncnn",
        "benchncnn's defaults (fp16 storage and arithmetic where the CPU has them)",
        ("{loops}", "{threads}", "0", "-1", "0", "param={model}", "shape=[{shape_whc}]"),
    ),
    "onnx": PhoneFormat(
        "onnx",
        "onnxruntime_perf_test",
        "onnxruntime",
        "float32",
        (
            "-I",
            "-m",
            "times",
            "-r",
            "{loops}",
            "-x",
            "{threads}",
            "-y",
            "1",
            "-e",
            "cpu",
            "{model}",
        ),
    ),
}
BUNDLE_FORMATS = tuple(PHONE_FORMATS)

LOCAL_COMMAND = (
    "-m",
    "nas.evaluators.latency.local_bench",
    "{format}",
    "{model}",
    "--shape",
    "{shape_csv}",
    "--threads",
    "{threads}",
    "--runs",
    "{loops}",
)
"""The local mode's tool, run with the runner's Python (`local_bench`)."""


@dataclass(frozen=True)
class BundleOptions:
    target: str
    out: Path
    format: str
    space: str = DEFAULT_SPACE
    input_size: int = 224
    threads: int = 1
    num_classes: int = DEPLOY_CLASSES
    operator_loops: int = 50
    network_loops: int = 20
    network_rounds: int = 5
    calibrate: int = 30
    validate: int = 20
    zoo: bool = True


def write_bundle(
    options: BundleOptions, writer: ModelWriter, exporter: str, show_progress: bool = True
) -> dict[str, Any]:
    """Write the bundle into `options.out`; a rerun writes only the models still missing.

    Returns the manifest. `exporter` names the converter and its version, for the record.
    """
    check_input_size(options.input_size)
    fmt = PHONE_FORMATS.get(options.format)
    if fmt is None:
        raise InputError(f"unknown --format {options.format!r}: one of {', '.join(PHONE_FORMATS)}")
    if options.threads < 1:
        raise InputError(f"--threads must be at least 1, got {options.threads}")
    space = load_space(options.space)
    shape = (3, options.input_size, options.input_size)
    folder = options.out
    sigs = space.signatures(shape, options.num_classes)
    manifest = _plan(options, fmt, space, sigs, exporter)
    existing = folder / MANIFEST
    before = 0.0
    if existing.exists():
        kept = read_manifest(existing)
        _require_same_plan(kept, manifest, folder)
        before = float(kept.get("export_seconds", 0.0))
    (folder / "models").mkdir(parents=True, exist_ok=True)
    (folder / "raw").mkdir(exist_ok=True)
    # The plan goes first, marked unfinished: an interrupted export is then resumed with the
    # same settings only, and the runner refuses to start on it.
    manifest["complete"] = False
    manifest["export_seconds"] = before
    write_atomically(existing, json.dumps(manifest, indent=1) + "\n")
    runner = folder / RUNNER
    shutil.copyfile(Path(__file__).with_name("phone_runner.py"), runner)
    runner.chmod(0o755)
    by_key = {sig.key: sig for sig in sigs}
    console = Console(stderr=True)
    todo = [model for model in manifest["models"] if not _written(folder, model)]
    torch.manual_seed(0)
    started = time.perf_counter()
    with progress_bar(console, show_progress and bool(todo)) as progress:
        task = progress.add_task(
            f"{options.target}: {space.name} as {fmt.name}",
            total=len(manifest["models"]),
            completed=len(manifest["models"]) - len(todo),
        )
        for model in todo:
            module, input_shape = _module(model, by_key, shape, options.num_classes)
            files = list(writer(module.eval(), input_shape).items())
            # The tool's file last: its presence is what marks the model as written.
            for suffix, data in [*files[1:], files[0]]:
                write_atomically(folder / "models" / f"{model['id']}{suffix}", data)
            progress.advance(task)
    manifest["export_seconds"] = round(before + time.perf_counter() - started, 1)
    manifest["complete"] = True
    write_atomically(existing, json.dumps(manifest, indent=1) + "\n")
    return manifest


# Long: the plan lists every model and run of a bundle in the one order the phone follows.
def _plan(
    options: BundleOptions,
    fmt: PhoneFormat,
    space: SearchSpace,
    sigs: list[OpSignature],
    exporter: str,
) -> dict:
    """Every model of the bundle and every timed run, in the order the runner takes them."""
    shape = (3, options.input_size, options.input_size)
    models: list[dict[str, Any]] = [
        {"id": "overhead", "role": "overhead", "shape": [1, 1, 1, 1]},
    ]
    for index, sig in enumerate(sigs):
        models.append(
            {
                "id": f"op{index:05d}",
                "role": "operator",
                "key": sig.key,
                "shape": list(op_input_shape(sig)),
            }  # fmt: skip
        )
    calibration = (
        sample_archs(space, options.calibrate, CALIBRATION_SEED) if options.calibrate else []
    )
    for index, arch in enumerate(calibration):
        models.append(
            {
                "id": f"cal{index:03d}",
                "role": "calibration",
                "arch": arch.to_string(),
                "shape": [1, *shape],
            }  # fmt: skip
        )
    judged = [(f"random_{i:03d}", "random", a) for i, a in enumerate(
        sample_archs(space, options.validate, 0) if options.validate else [])]  # fmt: skip
    if options.zoo:
        judged += [(name, "zoo", arch) for name, arch in zoo_at(shape).items()]
    for name, group, arch in judged:
        models.append(
            {
                "id": f"val_{name}",
                "role": "validation",
                "name": name,
                "group": group,
                "arch": arch.to_string(),
                "shape": [1, *shape],
            }  # fmt: skip
        )
    for model in models:
        model["file"] = f"models/{model['id']}{_tool_suffix(fmt)}"
    return {
        "bundle_version": BUNDLE_VERSION,
        "target": options.target,
        "format": fmt.name,
        "tool": fmt.tool,
        "runtime": fmt.runtime,
        "precision": fmt.precision,
        "command": list(fmt.command),
        "local_command": list(LOCAL_COMMAND),
        "space": space.name,
        "space_file": str(Path(options.space).resolve()) if Path(options.space).is_file() else None,
        "input_size": options.input_size,
        "num_classes": options.num_classes,
        "threads": options.threads,
        "operator_loops": options.operator_loops,
        "network_loops": options.network_loops,
        "network_rounds": options.network_rounds,
        "calibration_seed": CALIBRATION_SEED,
        "validation_seed": 0,
        "exporter": exporter,
        "torch_version": torch.__version__,
        "created": date.today().isoformat(),
        "models": models,
        "runs": _runs(models, options),
    }


def _runs(models: list[dict[str, Any]], options: BundleOptions) -> list[dict[str, Any]]:
    """The probe first, operators in a shuffled order (a phone heats and throttles over a long
    session; in key order that would slow one resolution's operators together), then the
    networks in interleaved rounds, as `networks.time_networks` does here."""
    operators = [m for m in models if m["role"] == "operator"]
    random.Random(0).shuffle(operators)
    runs = [{"run": "overhead", "model": "overhead", "loops": max(options.operator_loops, 200)}]
    runs += [{"run": m["id"], "model": m["id"], "loops": options.operator_loops} for m in operators]
    networks = [m for m in models if m["role"] in ("calibration", "validation")]
    for round_index in range(options.network_rounds):
        runs += [
            {"run": f"{m['id']}.r{round_index}", "model": m["id"], "loops": options.network_loops}
            for m in networks
        ]
    return runs


def _tool_suffix(fmt: PhoneFormat) -> str:
    return {"executorch": ".pte", "ncnn": ".param", "onnx": ".onnx"}[fmt.name]


def _written(folder: Path, model: dict[str, Any]) -> bool:
    return (folder / model["file"]).is_file()


def _module(
    model: dict[str, Any], sigs: dict, shape: tuple[int, int, int], num_classes: int
) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The torch module a manifest entry stands for, and its input shape without the batch."""
    if model["role"] == "overhead":
        # The call-overhead probe computes next to nothing. Not a lone ReLU (what `nas lut
        # build` times): ncnn runs that in place on its input, and its Python binding crashes.
        return torch.nn.Conv2d(1, 1, 1), (1, 1, 1)
    if model["role"] == "operator":
        sig = sigs[model["key"]]
        return build_op(sig), tuple(op_input_shape(sig)[1:])
    return build_model(Arch.from_string(model["arch"]), shape, num_classes), shape


def _require_same_plan(old: dict, new: dict, folder: Path) -> None:
    """A rerun may only finish the same bundle: other settings would mix two plans' files."""
    names = ("format", "space", "input_size", "num_classes", "threads", "operator_loops",
             "network_loops", "network_rounds")  # fmt: skip
    for name in names:
        if old.get(name) != new.get(name):
            raise InputError(
                f"{folder} holds a bundle with {name}={old.get(name)!r}, this one has "
                f"{name}={new.get(name)!r}: give another --out or delete it to start over"
            )
    if [m["id"] for m in old["models"]] != [m["id"] for m in new["models"]]:
        raise InputError(
            f"{folder} holds a bundle of other models (another --calibrate, --validate or "
            f"--zoo): give another --out or delete it to start over"
        )
