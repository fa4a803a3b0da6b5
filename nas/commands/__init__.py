"""CLI commands, one module per command or group, each exposing a click object named `command`.

`register_commands` adds every such module to the `nas` group, so a new command is a new file.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def register_commands(app: click.Group) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        app.add_command(module.command)
