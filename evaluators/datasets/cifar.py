"""CIFAR-10 and CIFAR-100 in the official "python version" format, from a folder or the .tar.gz.

The official batches are Python pickles, and unpickling runs whatever callables a file names.
Users bring these files from anywhere, so they are read with an unpickler that resolves only
the handful of names the official files (and re-saves of them) use: numpy's array and dtype
reconstruction and a few builtins. Anything else is refused before it runs.
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.errors import InputError

from .base import RawData


@dataclass(frozen=True)
class CifarLayout:
    folder: str  # the folder inside the official archive
    archive: str
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: str
    names_key: str
    num_classes: int
    title: str


LAYOUTS = {
    "cifar10": CifarLayout(
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        train=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test="test_batch",
        meta="batches.meta",
        label_key="labels",
        names_key="label_names",
        num_classes=10,
        title="CIFAR-10 (Krizhevsky 2009)",
    ),
    "cifar100": CifarLayout(
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        train=("train",),
        test="test",
        meta="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
        num_classes=100,
        title="CIFAR-100 (Krizhevsky 2009), fine labels",
    ),
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Python 3 writes bytes as _codecs.encode(text, "latin1") at pickle protocols 0-2; other
    # codecs are refused so the name cannot be used to reach arbitrary codec machinery.
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], object]:
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed numpy.core
    allowed: dict[tuple[str, str], object] = {("_codecs", "encode"): _latin1_encode}
    for prefix in ("numpy.core", "numpy._core"):
        allowed[(f"{prefix}.multiarray", "_reconstruct")] = core.multiarray._reconstruct
        allowed[(f"{prefix}.multiarray", "scalar")] = core.multiarray.scalar
        allowed[(f"{prefix}.numeric", "_frombuffer")] = core.numeric._frombuffer
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for module in ("builtins", "__builtin__"):
        for name, obj in {
            "dict": dict,
            "list": list,
            "bytes": bytes,
            "bytearray": bytearray,
            "str": str,
            "int": int,
        }.items():
            allowed[(module, name)] = obj
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild dicts, lists, strings, numbers and numpy arrays, and nothing else."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it refers to {module}.{name}, which a CIFAR batch never contains"
            ) from None


def restricted_loads(data: bytes) -> object:
    """Unpickle `data` as Python 3 reads the official Python 2 files: byte strings stay bytes."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _open_source(data_dir: Path, layout: CifarLayout) -> tuple[Callable[[str], bytes], str]:
    """A function reading one official member by name, from a folder or a tar archive."""
    needed = (*layout.train, layout.test, layout.meta)
    if data_dir.is_file():
        return _tar_reader(data_dir, needed), str(data_dir)
    for folder in (data_dir, data_dir / layout.folder):
        if all((folder / name).is_file() for name in needed):
            return (lambda name, folder=folder: (folder / name).read_bytes()), str(folder)
    if (data_dir / layout.archive).is_file():
        return _tar_reader(data_dir / layout.archive, needed), str(data_dir / layout.archive)
    raise InputError(
        f"{data_dir} holds neither {layout.archive} nor the files {', '.join(needed)} "
        f"(directly or in {layout.folder}/); point data_dir at the official CIFAR python version"
    )


def _tar_reader(path: Path, needed: tuple[str, ...]) -> Callable[[str], bytes]:
    # One sequential pass: seeking back in a gzip stream means decompressing it again from the
    # start. Members are read in memory and never extracted, so odd member paths write nowhere.
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in needed and name not in contents:
                    contents[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read {path} as a tar archive ({exc}); download it again") from exc
    missing = [name for name in needed if name not in contents]
    if missing:
        raise InputError(
            f"{path} lacks {', '.join(missing)}; is it the CIFAR python version archive?"
        )
    return contents.__getitem__


def _read_batch(read: Callable[[str], bytes], name: str, where: str) -> dict[str, object]:
    try:
        obj = restricted_loads(read(name))
    except InputError:
        raise
    except Exception as exc:  # a malformed pickle can fail in many ways; all mean "bad file"
        raise InputError(f"{where}/{name} is not a CIFAR python batch: {exc}") from exc
    if not isinstance(obj, dict):
        raise InputError(
            f"{where}/{name} is not a CIFAR python batch: it holds a {type(obj).__name__}, not a dict"
        )
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _images_and_labels(
    batch: dict[str, object], layout: CifarLayout, where: str
) -> tuple[np.ndarray, np.ndarray]:
    data, labels = batch.get("data"), batch.get(layout.label_key)
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
    ):
        raise InputError(
            f"{where}: 'data' must be a uint8 array of shape (N, 3072), got {getattr(data, 'shape', type(data))}"
        )
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: '{layout.label_key}' must be a list of integers") from exc
    if labels.shape != (len(data),):
        raise InputError(
            f"{where}: {len(data)} images but '{layout.label_key}' has shape {labels.shape}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= layout.num_classes):
        raise InputError(f"{where}: labels must lie in 0..{layout.num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels  # rows are 1024 red, 1024 green, 1024 blue


def load_cifar(name: str, data_dir: Path | None) -> RawData:
    """CIFAR-10 (50,000 + 10,000) or CIFAR-100 (same sizes, 100 fine classes), 3x32x32."""
    layout = LAYOUTS[name]
    if data_dir is None:
        raise InputError(
            f"{name} needs data_dir: a folder with {layout.folder}/ or {layout.archive}, or the archive itself"
        )
    read, where = _open_source(data_dir, layout)
    train = [
        _images_and_labels(_read_batch(read, b, where), layout, f"{where}/{b}")
        for b in layout.train
    ]
    test_x, test_y = _images_and_labels(
        _read_batch(read, layout.test, where), layout, f"{where}/{layout.test}"
    )
    names = _read_batch(read, layout.meta, where).get(layout.names_key)
    if not isinstance(names, list) or len(names) != layout.num_classes:
        raise InputError(
            f"{where}/{layout.meta}: '{layout.names_key}' must list {layout.num_classes} class names"
        )
    return RawData(
        train_images=np.concatenate([x for x, _ in train]),
        train_labels=np.concatenate([y for _, y in train]),
        test_images=test_x,
        test_labels=test_y,
        class_names=tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names),
        provenance=f"{layout.title}, python version from {where}",
    )
