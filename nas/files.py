"""Writing a file so that no reader ever sees half of it.

Latency tables are rewritten while `nas lut build` runs and resumed after a kill, exported
models are picked up by deployment scripts, dataset caches are read by several workers at once:
each is written beside its final name and renamed into place, which readers see as one step.
Only a regular file (or nothing) is ever replaced: renaming over a device or a FIFO
(``--out /dev/full``) would put a plain file where the system expects the node.
Output paths are checked up front (`unwritable_dir`, `unwritable_file`), so that a command
never finds out after its work that it cannot save the result.
Part of the shared base every sub-package may import (with `nas.errors`).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path to write; on success it replaces `path`, on any error it is removed.

    The file gets the permissions a plain `open` would give it (mkstemp makes it private).
    A `path` that exists and is not a regular file raises `FileExistsError` before anything
    is written.
    """
    target = Path(path)
    problem = _not_regular(target)
    if problem:
        raise FileExistsError(errno.EEXIST, f"{problem}; refusing to replace it", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write `data` (text as UTF-8) to `path` in one step; returns the path."""
    with replacing(path) as temporary:
        if isinstance(data, str):
            temporary.write_text(data, encoding="utf-8")
        else:
            temporary.write_bytes(data)
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def unwritable_dir(path: str | os.PathLike[str]) -> str | None:
    """Why folder `path` cannot be created (if need be) and written, or None if it can.

    Commands that write their results at the end (`nas train`, `nas search`, `nas report`)
    ask this before any work, so that a read-only folder or a file in the way is one line at
    once rather than a traceback after hours of training. Nothing is left behind: the probe is
    a file created and removed in the folder, or in its nearest existing ancestor. A reason,
    not an exception: the shared base raises no `nas` error (the callers name their flag).
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        return "is a file, not a folder"
    return _cannot_create(folder)


def unwritable_file(path: str | os.PathLike[str]) -> str | None:
    """Why file `path` cannot be written (as `replacing` writes it), or None if it can."""
    target = Path(path)
    if target.is_dir():
        return "is a folder, not a file name"
    return _not_regular(target) or _cannot_create(target.parent)


def _not_regular(target: Path) -> str | None:
    """Why `target` is something other than a regular file or nothing (a device, a FIFO)."""
    if target.exists() and not target.is_file():
        return "is not a regular file (a device, a FIFO or a socket)"
    return None


def _cannot_create(folder: Path) -> str | None:
    """Why `folder`, or the folders above it that do not exist yet, cannot be written."""
    existing = folder.absolute()
    while not os.path.lexists(existing):
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        _probe(existing)
    except OSError as error:
        return f"cannot write in {existing} ({error.strerror or error})"
    return None


def _probe(folder: Path) -> None:
    """Create and remove a file in `folder`: the one test of writability that root, ACLs and
    read-only mounts all answer truthfully."""
    handle, name = tempfile.mkstemp(prefix=".nas-probe-", dir=folder)
    os.close(handle)
    os.unlink(name)


MAX_NAME_LENGTH = 128
"""Characters of a name used as a file or folder name (a study's results folder): well under
every filesystem's 255-byte limit, even in multi-byte UTF-8."""


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a file or folder of its own, or None if it can.

    A study name becomes ``results/<name>/``: a separator or a leading dot would put files
    elsewhere (``../../x``, ``/abs/path``) or hide them, and a control character would make
    a name no shell can type.
    """
    if not name.strip():  # a folder named by spaces alone no listing shows
        return "is empty" if not name else "is only spaces"
    if "/" in name or "\\" in name:
        return "contains a path separator ('/' or '\\')"
    if name.startswith("."):
        return "starts with '.'"
    if not name.isprintable():
        return "contains a control character"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long, over the limit of {MAX_NAME_LENGTH}"
    return None
