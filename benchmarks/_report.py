"""Write a benchmark's figures into BENCHMARKS.md as one named, replaceable section.

Each benchmark owns the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; rerunning
it replaces that section and leaves the others alone. Every section carries the command, the
machine, the library versions and the date, because a figure without them cannot be compared.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from nas.evaluators.latency.timing import cpu_model

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\nFigures measured by the scripts in `benchmarks/`; each section says how it "
    "was produced. Rerunning a script replaces its own section.\n"
)


def machine_summary(packages: tuple[str, ...] = ("torch", "fvcore", "optuna")) -> str:
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{versions}; load average {load:.1f} when written; {dt.date.today().isoformat()}"
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(BENCHMARKS_MD.parent)
    except ValueError:
        pass
    return " ".join(["python", str(script), *sys.argv[1:]])


def write_section(
    name: str, title: str, body: str, packages: tuple[str, ...] = ("torch", "fvcore", "optuna")
) -> None:
    section = (
        f"<!-- {name}:start -->\n## {title}\n\n`{command_line()}`\n\n"
        f"Machine: {machine_summary(packages)}\n\n{body.strip()}\n<!-- {name}:end -->\n"
    )
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else HEADER
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    BENCHMARKS_MD.write_text(text)
