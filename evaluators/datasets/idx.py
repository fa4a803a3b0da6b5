"""Fashion-MNIST: the full set from idx files, and the subset shipped inside the package.

The idx format is four bytes of magic (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the raw array. It is parsed here with numpy rather
than through a dataset library so that a truncated download is caught by a size check and
reported as such, instead of surfacing later as a reshape error.
"""

from __future__ import annotations

import gzip
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from nas.errors import InputError

from .base import RawData

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MINI_FILE = "fashion-mnist-mini.npz"
_UBYTE = 0x08


def parse_idx(data: bytes, ndim: int, source: str) -> np.ndarray:
    """The uint8 array in an idx byte string, or InputError saying which check failed."""
    if len(data) < 4 + 4 * ndim:
        raise InputError(
            f"{source} is too short to be an idx file ({len(data)} bytes); download it again"
        )
    if data[0] != 0 or data[1] != 0 or data[2] != _UBYTE or data[3] != ndim:
        raise InputError(
            f"{source} has magic number 0x{data[:4].hex()}, expected 0x000008{ndim:02x} "
            f"(unsigned bytes, {ndim} dimensions); is it the right file?"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = 4 + 4 * ndim + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise InputError(
            f"{source} holds {len(data)} bytes but its header {shape} needs {expected}; "
            "the file is truncated or corrupt, download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzip-compressed (or, if it is not gzip, raw) idx file."""
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(
            f"cannot read {path}: {exc}; the file is truncated or corrupt, download it again"
        ) from exc
    return parse_idx(data, ndim, str(path))


def find_idx_files(data_dir: Path) -> dict[str, Path]:
    """The four Fashion-MNIST files in `data_dir`, accepting them gzipped or already unpacked."""
    found, missing = {}, []
    for key, name in FASHION_MNIST_FILES.items():
        for candidate in (data_dir / name, data_dir / name.removesuffix(".gz")):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(name)
    if missing:
        raise InputError(
            f"{data_dir} lacks {', '.join(missing)}; point data_dir at a folder with the four Fashion-MNIST idx files "
            "(on Debian/Ubuntu: apt-get install dataset-fashion-mnist)"
        )
    return found


def load_fashion_mnist(data_dir: Path | None) -> RawData:
    """All 70,000 images: 60,000 train and 10,000 test, 1x28x28."""
    data_dir = data_dir or FASHION_MNIST_DIR
    if not data_dir.is_dir():
        raise InputError(
            f"Fashion-MNIST folder {data_dir} does not exist; pass --data-dir with the "
            "folder of its four idx .gz files, or install them with apt-get install "
            "dataset-fashion-mnist"
        )
    files = find_idx_files(data_dir)
    arrays = {
        key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in files.items()
    }
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise InputError(
                f"{data_dir}: {split} has {len(images)} images but {len(labels)} labels; these files do not match"
            )
    return RawData(
        train_images=arrays["train_images"][:, None],
        train_labels=arrays["train_labels"],
        test_images=arrays["test_images"][:, None],
        test_labels=arrays["test_labels"],
        class_names=FASHION_MNIST_CLASSES,
        provenance=f"Fashion-MNIST (Xiao et al. 2017, MIT license) from {data_dir}",
    )


def load_fashion_mnist_mini(data_dir: Path | None = None) -> RawData:
    """The stratified subset shipped in the package; see scripts/make_fashion_mnist_mini.py."""
    if data_dir is not None:
        raise InputError(
            "fashion-mnist-mini is built in and takes no data_dir; "
            "for your own Fashion-MNIST files use the dataset name fashion-mnist"
        )
    with resources.as_file(resources.files("nas.evaluators") / "data" / MINI_FILE) as path:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    return RawData(
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"],
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"],
        class_names=tuple(str(n) for n in arrays["class_names"]),
        provenance=str(arrays["provenance"].item()),
    )
