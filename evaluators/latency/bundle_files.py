"""Reading back what a bundle's folder holds, trusting none of it.

A bundle travels: it is copied to a phone or a lab machine and back, edited by hand, cut short
by a full card. Its `manifest.json`, the runner's `raw/device.json` and each raw timing are
checked here as they are read, so that a truncated, empty, binary or edited file is one line
naming the file and what to do (`InputError`), never a traceback deep in `nas lut import` or
`nas lut validate --timings`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nas.errors import InputError
from nas.evaluators.latency.bench_output import RunTiming

BUNDLE_VERSION = 1
"""The manifest layout this code reads (and `nas lut bundle` writes)."""

ROLES = ("overhead", "operator", "calibration", "validation")
"""What each model of a bundle is for."""

MAX_RUN_MS = 3_600_000.0
"""The longest one timed run may say it took (an hour): a mobile network runs in milliseconds;
a number beyond is a damaged or edited output, and would overflow the sums a table makes."""

_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "tool": str,
    "space": str,
    "input_size": int,
    "num_classes": int,
    "threads": int,
    "operator_loops": int,
    "network_loops": int,
    "network_rounds": int,
    "calibration_seed": int,
    "validation_seed": int,
    "exporter": str,
    "created": str,
    "models": list,
    "runs": list,
}
"""Every field the import and the validation read, with its JSON type."""

_MODEL_FIELDS = {
    "overhead": ("id",),
    "operator": ("id", "key"),
    "calibration": ("id", "arch"),
    "validation": ("id", "arch", "name", "group"),
}
"""The string fields each role's model entry must carry."""


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in `path`, or an `InputError` saying what is wrong with it and why."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _damaged(path, what, "it is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise _damaged(path, what, f"it is not JSON ({error.msg} at line {error.lineno})") from None
    except RecursionError:
        raise _damaged(path, what, "it is nested too deeply") from None
    if not isinstance(data, dict):
        raise _damaged(path, what, f"it holds a JSON {type(data).__name__}, not an object")
    return data


def read_manifest(path: Path) -> dict[str, Any]:
    """A bundle's manifest, every field the import reads present and of its type."""
    manifest = read_json_object(path, "manifest")
    version = manifest.get("bundle_version", BUNDLE_VERSION)
    if version != BUNDLE_VERSION:
        raise _damaged(
            path,
            "manifest",
            f"it is bundle_version {version!r}, this nas reads {BUNDLE_VERSION}: make the "
            f"bundle with this nas",
        )
    if not (manifest.get("space_file") is None or isinstance(manifest["space_file"], str)):
        raise _damaged(path, "manifest", "its 'space_file' is not a path")
    for name, kind in _MANIFEST_FIELDS.items():
        if not _is(manifest.get(name), kind):
            raise _damaged(path, "manifest", f"its {name!r} is missing or not a {_name(kind)}")
    positive = ("input_size", "num_classes", "threads", "operator_loops", "network_loops")
    for name in positive:
        if manifest[name] < 1:
            raise _damaged(path, "manifest", f"its {name!r} is {manifest[name]}, not positive")
    ids = _check_models(path, manifest["models"])
    _check_runs(path, manifest["runs"], ids)
    return manifest


def _check_models(path: Path, models: list[Any]) -> set[str]:
    """Each model an object of a known role with its string fields; returns their ids."""
    ids = set()
    for index, model in enumerate(models):
        role = model.get("role") if isinstance(model, dict) else None
        if role not in _MODEL_FIELDS:
            raise _damaged(path, "manifest", f"model {index} has no role of {', '.join(ROLES)}")
        for name in _MODEL_FIELDS[role]:
            if not isinstance(model.get(name), str):
                raise _damaged(path, "manifest", f"model {index} has no {name!r} string")
        ids.add(model["id"])
    return ids


def _check_runs(path: Path, runs: list[Any], ids: set[str]) -> None:
    """Each run an object naming a model of the manifest and a plain file name."""
    for index, run in enumerate(runs):
        if not isinstance(run, dict) or not all(
            isinstance(run.get(name), str) for name in ("run", "model")
        ):
            raise _damaged(path, "manifest", f"run {index} has no 'run' and 'model' strings")
        if run["model"] not in ids:
            raise _damaged(path, "manifest", f"run {run['run']!r} times an unknown model")
        if "/" in run["run"] or "\\" in run["run"] or run["run"].startswith("."):
            raise _damaged(path, "manifest", f"run {run['run']!r} is not a plain file name")
    timed = {run["model"] for run in runs}
    untimed = sorted(ids - timed)
    if untimed:
        raise _damaged(path, "manifest", f"model {untimed[0]!r} has no run")


def read_device(path: Path) -> dict[str, Any]:
    """The runner's record of the device (empty if it never ran), each value a JSON scalar."""
    if not path.is_file():
        return {}
    device = read_json_object(path, "device record")
    for name, value in device.items():
        read_as_text = name.startswith("ro.") or name in _DEVICE_TEXT
        if read_as_text and not (value is None or isinstance(value, str)):
            raise _damaged(path, "device record", f"its {name!r} is not text")
    return device


_DEVICE_TEXT = ("serial", "tool", "tool_sha256", "runtime_version", "mode", "started", "last_run")
"""The device record's fields a table's metadata takes as text (besides the ro.* properties)."""


def check_timing(path: Path, timing: RunTiming) -> RunTiming:
    """A raw output's timing, if it is a time one run can take."""
    for value in (timing.ms, timing.typical_ms):
        if not (math.isfinite(value) and 0 < value <= MAX_RUN_MS):
            raise InputError(
                f"{path}: a time of {value:g} ms is not one a run can take (above 0, at most "
                f"{MAX_RUN_MS:,.0f}): the output is damaged or edited; delete it and run "
                f"'python run.py' again (it resumes)"
            )
    return timing


def _is(value: Any, kind: type | tuple[type, ...]) -> bool:
    """isinstance, except that a JSON true or false is no number."""
    return isinstance(value, kind) and not isinstance(value, bool)


def _name(kind: type | tuple[type, ...]) -> str:
    names = {str: "string", int: "whole number", list: "list"}
    return names.get(kind, str(kind)) if isinstance(kind, type) else "value"


def _damaged(path: Path, what: str, why: str) -> InputError:
    return InputError(
        f"{path}: the bundle's {what} is damaged ({why}): copy the bundle again from where it "
        f"was made, or make it again with 'nas lut bundle'"
    )
