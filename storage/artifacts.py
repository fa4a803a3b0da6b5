"""Where exported models and weights go: Optuna artifacts on the local filesystem.

Artifacts sit next to the SQLite file so that one directory holds a whole search and can be
copied or deleted as a unit. A PostgreSQL database has no directory, so its artifacts go under
a directory the caller names (``./artifacts`` by default); point optuna-dashboard's
``--artifact-dir`` at the same place to browse them.

Optuna's store writes an artifact straight to its final name, so a full disk would leave a
truncated weights file that a later export reads as if it were whole; here each artifact is
written beside its name and renamed into place (`nas.files.replacing`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.storages import BaseStorage
from optuna.study import Study
from optuna.trial import FrozenTrial, Trial

from nas.errors import InputError
from nas.files import replacing
from nas.storage.urls import sqlite_path

ARTIFACT_DIRNAME = "artifacts"


def artifact_store_for(
    url: str, base_dir: str | os.PathLike[str] | None = None
) -> FileSystemArtifactStore:
    """Return the artifact store that belongs with the storage at ``url``, creating its directory.

    ``base_dir`` wins when given. Otherwise SQLite uses ``<database dir>/artifacts`` and
    PostgreSQL (or in-memory SQLite) uses ``./artifacts``. The path is made absolute now, so a
    later ``chdir`` cannot split one search's artifacts over two directories.
    """
    if base_dir is not None:
        root = Path(base_dir)
    else:
        database = sqlite_path(url)
        root = (database.parent if database is not None else Path(".")) / ARTIFACT_DIRNAME
    root = root.expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create artifact directory {root}: {exc.strerror}; pass a writable directory"
        ) from exc
    return AtomicArtifactStore(root)


class AtomicArtifactStore(FileSystemArtifactStore):
    """Optuna's filesystem store, with every artifact either whole under its name or absent."""

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        with replacing(self._get_filepath(artifact_id)) as temporary, temporary.open("wb") as out:
            shutil.copyfileobj(content_body, out)


def upload(
    study_or_trial: Study | Trial | FrozenTrial,
    store: FileSystemArtifactStore,
    path: str | os.PathLike[str],
    *,
    storage: BaseStorage | None = None,
    mimetype: str | None = None,
) -> str:
    """Attach the file at ``path`` to a study or trial and return its artifact id.

    ``storage`` is needed only for a ``FrozenTrial`` (for example one read back by
    ``nas export``), which does not know where it is stored.
    """
    if not os.path.isfile(path):
        raise InputError(f"cannot upload artifact {os.fspath(path)!r}: no such file")
    return upload_artifact(
        artifact_store=store,
        file_path=os.fspath(path),
        study_or_trial=study_or_trial,
        storage=storage,
        mimetype=mimetype,
    )


def download(
    store: FileSystemArtifactStore, artifact_id: str, path: str | os.PathLike[str]
) -> Path:
    """Copy artifact ``artifact_id`` to ``path`` (which must not exist) and return the path."""
    target = Path(path)
    if target.exists():
        raise InputError(f"cannot download artifact to {target}: the file already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_artifact(
            artifact_store=store, file_path=os.fspath(target), artifact_id=artifact_id
        )
    except ArtifactNotFound:
        raise InputError(f"no artifact with id {artifact_id!r} in the artifact store") from None
    return target
