"""Image folders (train/<class>/*.jpg and test/ or val/) decoded once, then read from a cache.

Decoding tens of thousands of JPEGs takes seconds even for thumbnails, and a search loads its
dataset in every worker, so the decoded uint8 images are stored as one uncompressed .npy (train
then test) named by a digest of the folder, every file's size and mtime, and the resolution. A
second load memory-maps it and copies only what the splits need. Any change to the folder makes a
new key; a cache file of the wrong shape is never trusted, only rebuilt.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from PIL import Image

import numpy as np

from nas.errors import InputError
from nas.files import replacing

from .base import MIN_CLASSES, RawData

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
EVAL_FOLDERS = ("test", "val")
CACHE_VERSION = "1"
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
_POOL_MIN_IMAGES = 2048  # below this, starting worker processes costs more than it saves


def default_cache_dir() -> Path:
    """$NAS_CACHE_DIR, else $XDG_CACHE_HOME/nas, else ~/.cache/nas; datasets go in datasets/."""
    if os.environ.get("NAS_CACHE_DIR"):
        return Path(os.environ["NAS_CACHE_DIR"]) / "datasets"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "nas" / "datasets"


class Split(NamedTuple):
    """The images of one folder: absolute paths, labels, and (size, mtime) for the cache key."""

    paths: list[str]
    labels: np.ndarray
    stamps: list[tuple[int, int]]


def list_classes(folder: Path) -> tuple[str, ...]:
    """Class folder names, sorted: a class's label is its position, as in torchvision's ImageFolder."""
    classes = tuple(
        sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    )
    if not classes:
        raise InputError(
            f"{folder} has no class folders; expected {folder}/<class name>/<image files>"
        )
    return classes


def scan_split(folder: Path, classes: tuple[str, ...], require_all: bool) -> Split:
    """Every image under folder/<class>/, sorted so the order never depends on the filesystem.

    Plain strings and os.scandir rather than pathlib: for 60,000 files pathlib's object
    overhead alone costs seconds, and scandir hands over each file's stat with the listing.
    """
    present = list_classes(folder)
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise InputError(
            f"{folder} has class folders not in train/: {', '.join(unknown[:5])}; every class needs training images"
        )
    paths, labels, stamps = [], [], []
    for label, cls in enumerate(classes):
        found = _images_under(os.path.join(folder, cls)) if cls in present else []
        if not found and require_all:
            raise InputError(
                f"{folder / cls} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); add some or remove the folder"
            )
        paths += [p for p, _ in found]
        stamps += [s for _, s in found]
        labels += [label] * len(found)
    return Split(paths, np.asarray(labels, dtype=np.int64), stamps)


def _images_under(top: str) -> list[tuple[str, tuple[int, int]]]:
    found, stack = [], [top]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.name.startswith("."):
                    continue
                if e.is_dir(follow_symlinks=False):  # not following links below a class: no cycles
                    stack.append(e.path)
                elif e.name[e.name.rfind(".") :].lower() in IMAGE_EXTENSIONS:
                    st = e.stat()
                    found.append((e.path, (st.st_size, st.st_mtime_ns)))
    found.sort()
    return found


def cache_key(root: Path, splits: dict[str, Split], size: tuple[int, int] | None) -> str:
    """A digest of what the decoded images depend on: files, their sizes and mtimes, the target size."""
    h = hashlib.sha256(f"imagefolder v{CACHE_VERSION} {root} {size}\n".encode())
    skip = len(str(root)) + 1
    for name, split in splits.items():
        lines = (
            f"{name}\0{p[skip:]}\0{s}\0{m}\n"
            for p, (s, m) in zip(split.paths, split.stamps, strict=True)
        )
        h.update("".join(lines).encode())
    return h.hexdigest()[:24]


def _decode_chunk(
    paths: list[str], size: tuple[int, int], resize: bool
) -> tuple[np.ndarray, bool, list[str], list[str]]:
    """Decode images to (n, 3, H, W) uint8; also whether all were grayscale, broken files and odd sizes.

    With `resize`, images are scaled to cover `size` and centre-cropped, keeping the aspect
    ratio, and JPEG draft mode lets large photos decode at a reduced scale. Without it, an image
    of another size is a problem to report, not something to fix silently.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # here: training needs no Pillow

    h, w = size
    out = np.zeros(
        (len(paths), h, w, 3), dtype=np.uint8
    )  # Pillow's layout; transposed once at the end
    gray, broken, odd = True, [], []
    for i, path in enumerate(paths):
        try:
            with open_image(path) as im:
                if not resize and im.size != (w, h):
                    odd.append(
                        f"{path} is {im.size[0]}x{im.size[1]}, not {w}x{h} like the first training image"
                    )
                    continue
                gray = gray and im.mode in _GRAY_MODES
                if resize:
                    im.draft("RGB", (w, h))
                rgb = im if im.mode == "RGB" else im.convert("RGB")
                if rgb.size != (w, h):
                    rgb = ImageOps.fit(rgb, (w, h), method=Image.Resampling.BILINEAR)
                out[i] = np.asarray(rgb)
        except InputError:
            raise
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            broken.append(f"cannot decode {path}: {exc}")
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)), gray, broken, odd


class MixedImageSizes(InputError):
    """The folder's images differ in size and none was asked for: `load_dataset` loads them at
    the proxy resolution where there is one."""


def decode_images(
    paths: list[str], size: tuple[int, int], *, resize: bool, workers: int | None = None
) -> tuple[np.ndarray, bool]:
    """Decode all images, in worker processes when there are many.

    Processes rather than threads: Pillow's header parsing is Python code, and threads fighting
    over the GIL decode small JPEGs slower than one thread does.
    """
    if workers is None:
        cpus = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
        workers = min(cpus, 8)
    if workers <= 1 or len(paths) < _POOL_MIN_IMAGES:
        results = [_decode_chunk(paths, size, resize)]
    else:
        step = max(256, -(-len(paths) // (workers * 8)))
        chunks = [paths[i : i + step] for i in range(0, len(paths), step)]
        # fork on Linux: the workers need no fresh interpreter, and spawn would re-import torch in each.
        context = multiprocessing.get_context("fork") if sys.platform == "linux" else None
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            results = list(
                pool.map(_decode_chunk, chunks, [size] * len(chunks), [resize] * len(chunks))
            )
    for index, fix, error in (
        (2, "remove or replace the broken files", InputError),
        (
            3,
            "pass --proxy-resolution (for example 32) to train on every image resized to one size",
            MixedImageSizes,
        ),
    ):
        problems = [p for r in results for p in r[index]]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise error(f"{problems[0]}{more}; {fix}")
    return np.concatenate([r[0] for r in results]), all(r[1] for r in results)


def open_image(path: str) -> Image.Image:
    """`Image.open`, refusing an image over Pillow's decompression-bomb limit by name.

    Opening reads only the header, so a 30000x30000 PNG (a few megabytes of zeros, 2.7 GB
    decoded) is refused before a pixel is decoded. Pillow warns between its limit and twice it
    and raises a traceback above; both become one line naming the file and the limit, at the
    warning's threshold (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 million pixels, 9,459 a
    side when square: no training image is near it).
    """
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as exc:  # over twice the limit: Pillow says how many
        found = re.search(r"\((\d+) pixels\)", str(exc))
        _refuse_large(path, f"{int(found[1]):,} pixels" if found else "too many pixels", limit)
    if limit and im.size[0] * im.size[1] > limit:
        im.close()
        _refuse_large(path, f"{im.size[0]}x{im.size[1]} pixels", limit)
    return im


def _refuse_large(path: str, size: str, limit: int | None) -> None:
    raise InputError(
        f"{path} is {size}, over Pillow's limit of {limit or 0:,} pixels for an image "
        f"(PIL.Image.MAX_IMAGE_PIXELS, a guard against decompression bombs); shrink it or "
        f"remove it"
    )


def _native_size(path: str) -> tuple[int, int]:
    from PIL import UnidentifiedImageError

    try:
        with open_image(path) as im:
            return im.size[1], im.size[0]
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"cannot decode {path}: {exc}; remove or replace it") from exc


def load_image_folder(
    data_dir: Path | None, size: tuple[int, int] | None, cache_dir: Path | None = None
) -> RawData:
    """Images in data_dir/train/<class>/ and data_dir/test/<class>/ (or val/), as RGB or grayscale."""
    if data_dir is None:
        raise InputError(
            "imagefolder needs data_dir: a folder with train/<class>/ and test/<class>/ (or val/) image folders"
        )
    root = data_dir.resolve()
    if not (root / "train").is_dir():
        raise InputError(
            f"{root} has no train/ folder; expected train/<class>/ and test/<class>/ (or val/)"
        )
    eval_name = next((n for n in EVAL_FOLDERS if (root / n).is_dir()), None)
    if eval_name is None:
        raise InputError(
            f"{root} has train/ but neither test/ nor val/; add one with the same class folders"
        )
    classes = list_classes(root / "train")
    train = scan_split(root / "train", classes, require_all=True)
    if len(classes) < MIN_CLASSES:  # listed, not yet decoded
        raise InputError(
            f"{root / 'train'} has only the class folder {classes[0]!r}; classification needs "
            f"at least {MIN_CLASSES} classes (one class scores accuracy 1.0 by always naming "
            f"it): add a folder per class"
        )
    test = scan_split(root / eval_name, classes, require_all=False)
    if not test.paths:
        raise InputError(f"{root / eval_name} holds no images")

    n_train, n_all = len(train.paths), len(train.paths) + len(test.paths)
    key = cache_key(root, {"train": train, eval_name: test}, size)
    cache = (cache_dir or default_cache_dir()) / f"imagefolder-{key}.npy"
    images = _read_cache(cache, n_all)
    if images is None:
        target = size or _native_size(train.paths[0])
        decoded, gray = decode_images(train.paths + test.paths, target, resize=size is not None)
        if gray:
            decoded = np.ascontiguousarray(decoded[:, :1])
        # Reading back the memory-mapped copy frees the decode buffer, of which test would otherwise keep a view.
        images = _read_cache(cache, n_all) if _write_cache(cache, decoded) else None
        if images is None:
            images = decoded.copy()
    how = "native size" if size is None else "resized (shorter side, centre crop)"
    return RawData(
        train_images=images[:n_train],
        train_labels=train.labels,
        test_images=images[n_train:],
        test_labels=test.labels,
        class_names=classes,
        provenance=f"image folder {root} (train/ + {eval_name}/ as test, {how})",
    )


def _read_cache(path: Path, count: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        images = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:  # a damaged or foreign file: rebuild rather than fail
        warnings.warn(f"ignoring unreadable dataset cache {path}: {exc}", stacklevel=3)
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != count:
        warnings.warn(
            f"ignoring dataset cache {path}: it holds {images.shape} {images.dtype}, not {count} images",
            stacklevel=3,
        )
        return None
    return images


def _write_cache(path: Path, images: np.ndarray) -> bool:
    """Write beside the final name and rename, so a concurrent reader never sees half a file."""
    try:
        with replacing(path) as temporary, temporary.open("wb") as f:
            np.save(f, images, allow_pickle=False)
        return True
    except OSError as exc:
        warnings.warn(
            f"could not write dataset cache {path} ({exc}); the next load will decode again",
            stacklevel=3,
        )
        return False
