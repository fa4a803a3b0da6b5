"""Datasets for proxy training: one entry point, every source held in memory as uint8 tensors.

    ds = load_dataset("cifar10", "~/data/cifar-10-python.tar.gz", val_fraction=0.1, seed=0)
    for x, y in batches(ds, "train", 128, generator=g, augment=True): ...

Names: fashion-mnist-mini (shipped in the package, the default), fashion-mnist, cifar10,
cifar100, imagefolder. Every loader ends in the same `Dataset`, with the validation split drawn
from the training data by one stratified, seeded function; search never reads test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nas.errors import InputError

from .base import Dataset, RawData, Resolution, as_hw, channel_stats, stratified_sample
from .cifar import load_cifar
from .idx import load_fashion_mnist, load_fashion_mnist_mini
from .imagefolder import MixedImageSizes, default_cache_dir, load_image_folder
from .resident import ResidentSplit
from .transforms import (
    augment_batch,
    batches,
    crop_flip,
    draw_crop_flip,
    iterate_batches,
    normalize,
    to_float,
)

__all__ = [
    "DATASET_NAMES",
    "DEFAULT_DATASET",
    "Dataset",
    "RawData",
    "ResidentSplit",
    "augment_batch",
    "batches",
    "channel_stats",
    "crop_flip",
    "default_cache_dir",
    "draw_crop_flip",
    "iterate_batches",
    "load_dataset",
    "normalize",
    "stratified_sample",
    "to_float",
]

DEFAULT_DATASET = "fashion-mnist-mini"
DATASET_NAMES = ("fashion-mnist-mini", "fashion-mnist", "cifar10", "cifar100", "imagefolder")
_ALIASES = {"cifar-10": "cifar10", "cifar-100": "cifar100", "fashion-mnist-full": "fashion-mnist"}

# Each loader takes (data_dir, size or None, cache_dir or None) and returns the official splits.
_LOADERS: dict[str, Callable[..., RawData]] = {
    "fashion-mnist-mini": lambda d, size, cache: load_fashion_mnist_mini(d),
    "fashion-mnist": lambda d, size, cache: load_fashion_mnist(d),
    "cifar10": lambda d, size, cache: load_cifar("cifar10", d),
    "cifar100": lambda d, size, cache: load_cifar("cifar100", d),
    "imagefolder": load_image_folder,
}


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    val_fraction: float = 0.1,
    val_count: int | None = None,
    seed: int = 0,
    resolution: Resolution | None = None,
    limit_train: int | None = None,
    cache_dir: str | Path | None = None,
    mixed_sizes_at: Resolution | None = None,
) -> Dataset:
    """Load a dataset by name and split it into train / val / test.

    Args:
        name: one of DATASET_NAMES (case and "_" vs "-" do not matter).
        data_dir: where the files are; fashion-mnist defaults to Debian's
            /usr/share/datasets/fashion-mnist, fashion-mnist-mini needs none.
        val_fraction: share of the training data held out for validation, per class.
        val_count: an exact number of validation images instead of a fraction.
        seed: fixes the validation split and the `limit_train` subset.
        resolution: proxy input size, an int or (H, W); None keeps the native size
            (an image folder whose images differ in size then needs one).
        limit_train: keep at most this many training images (stratified), for quick runs;
            the validation set does not change with it.
        cache_dir: where decoded image folders are kept; default `default_cache_dir()`.
        mixed_sizes_at: the side to load images of differing sizes at (an image folder has
            no one native size then): the proxy resolution a search or `nas train` resizes to
            anyway. None refuses such a folder, saying to pass --proxy-resolution.

    Raises:
        InputError: unknown name, missing or malformed files, or a split that cannot be made.
    """
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _LOADERS:
        raise InputError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    path = None
    if data_dir is not None and str(data_dir) != "":
        path = Path(data_dir).expanduser()
        if not path.exists():
            raise InputError(
                f"--data-dir {path} does not exist; pass the folder (or archive) holding "
                f"the {key} files"
            )
    size = as_hw(resolution) if resolution is not None else None
    cache = Path(cache_dir).expanduser() if cache_dir is not None else None
    try:
        raw = _LOADERS[key](path, size, cache)
    except MixedImageSizes:
        if size is not None or mixed_sizes_at is None:
            raise
        size = as_hw(mixed_sizes_at)
        raw = _LOADERS[key](path, size, cache)
    return Dataset.from_arrays(
        key,
        raw,
        val_fraction=val_fraction,
        val_count=val_count,
        seed=seed,
        resolution=size,
        limit_train=limit_train,
    )
