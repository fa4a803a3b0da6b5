"""The in-memory dataset every loader ends in, and the one place splits are made.

Loaders only turn files into `RawData` (numpy arrays, official train/test split). Everything
that must be identical across data sources -- the stratified validation split, the optional
training-set limit, resizing and the channel statistics -- happens once, here, so that two
datasets can never disagree on how a validation set was drawn.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from nas.errors import InputError

Resolution = int | tuple[int, int]

MIN_CLASSES = 2
"""Classes a dataset needs: with one, every network scores accuracy 1.0 by always naming it,
and a search would rank candidates on nothing."""


class RawData(NamedTuple):
    """What a loader returns: uint8 NCHW images, integer labels, names and where it came from."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    provenance: str
    hflip_ok: bool = True


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled image dataset held in memory, already split three ways.

    Images stay uint8 (N, C, H, W) so that 50,000 CIFAR images cost 150 MB rather than 600 MB and
    move cheaply to workers; `to_float` normalises a batch at a time with `mean`/`std`, which are
    per-channel statistics of `train_images` on a 0..1 scale. Search reads train and val only;
    test is for final training and benchmarks.
    """

    name: str
    train_images: torch.Tensor = field(repr=False)
    train_labels: torch.Tensor = field(repr=False)
    val_images: torch.Tensor = field(repr=False)
    val_labels: torch.Tensor = field(repr=False)
    test_images: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)
    num_classes: int
    channels: int
    resolution: tuple[int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip_ok: bool
    provenance: str

    def __post_init__(self) -> None:
        # Datasets built by hand (tests, other tools) get the same guarantees as loaded ones.
        shape = (self.channels, *self.resolution)
        for split in ("train", "val", "test"):
            images, labels = self.split(split)
            if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != shape:
                raise ValueError(
                    f"{split}_images must be uint8 of shape (N, {', '.join(map(str, shape))})"
                )
            if labels.dtype != torch.int64 or labels.shape != (images.shape[0],):
                raise ValueError(f"{split}_labels must be int64 of shape ({images.shape[0]},)")
        if len(self.class_names) != self.num_classes:
            raise ValueError("class_names must have num_classes entries")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError("mean and std must have one entry per channel")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W): the proxy input a candidate network is built for."""
        return (self.channels, *self.resolution)

    def split(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) of "train", "val" or "test"."""
        if which not in ("train", "val", "test"):
            raise ValueError(f"unknown split {which!r}; use 'train', 'val' or 'test'")
        return getattr(self, f"{which}_images"), getattr(self, f"{which}_labels")

    def resized(self, size: tuple[int, int]) -> Dataset:
        """This dataset with every split resized to `size` (itself when it already is).

        A proxy may train at another resolution than the data's own (`Recipe.resolution`), so
        that a network sees maps closer in size to those it sees at deployment. Statistics are
        recomputed on the resized training split, as a load at that resolution would.
        """
        size = (int(size[0]), int(size[1]))
        if size == self.resolution:
            return self
        splits = {
            f"{which}_images": resize_uint8(self.split(which)[0], size)
            for which in ("train", "val", "test")
        }
        mean, std = channel_stats(splits["train_images"])
        return dataclasses.replace(
            self,
            **splits,
            resolution=size,
            mean=mean,
            std=std,
            provenance=f"{self.provenance}; resized to {size[0]}x{size[1]} for training",
        )

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        return (
            f"Dataset({self.name!r}, train={len(self.train_labels)}, val={len(self.val_labels)}, "
            f"test={len(self.test_labels)}, {c}x{h}x{w}, {self.num_classes} classes)"
        )

    @classmethod
    def from_arrays(
        cls,
        name: str,
        raw: RawData,
        *,
        val_fraction: float = 0.1,
        val_count: int | None = None,
        seed: int = 0,
        resolution: Resolution | None = None,
        limit_train: int | None = None,
    ) -> Dataset:
        """Split, limit, resize and measure raw arrays; see `load_dataset` for the arguments."""
        return _build(name, raw, val_fraction, val_count, seed, resolution, limit_train)


# Long: split, limit, resize and the statistics are one pass over the same arrays, in order.
def _build(
    name: str,
    raw: RawData,
    val_fraction: float,
    val_count: int | None,
    seed: int,
    resolution: Resolution | None,
    limit_train: int | None,
) -> Dataset:
    num_classes = len(raw.class_names)
    if num_classes < MIN_CLASSES:
        raise InputError(
            f"{name} has {num_classes} class{'' if num_classes == 1 else 'es'}; classification "
            f"needs at least {MIN_CLASSES} (one class scores accuracy 1.0 by always naming it)"
        )
    train_x, train_y = _check_split(name, "train", raw.train_images, raw.train_labels, num_classes)
    test_x, test_y = _check_split(name, "test", raw.test_images, raw.test_labels, num_classes)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise InputError(
            f"{name}: train images are {train_x.shape[1:]} but test images {test_x.shape[1:]}; both must match"
        )

    n_val = _val_size(len(train_y), val_fraction, val_count)
    # Independent streams: changing limit_train never changes which images are validation.
    val_idx = stratified_sample(
        train_y, n_val, num_classes, np.random.default_rng([seed, 0]), name, "validation"
    )
    keep = np.ones(len(train_y), dtype=bool)
    keep[val_idx] = False
    train_idx = np.flatnonzero(keep)
    emptied = np.flatnonzero(np.bincount(train_y[train_idx], minlength=num_classes) == 0)
    if len(emptied):
        c = int(emptied[0])
        raise InputError(
            f"{name}: the validation split takes all {int((train_y == c).sum())} images of class {c}, leaving none "
            "to train on; lower val_fraction/val_count or add data"
        )
    notes = [f"val {n_val} of {len(train_y)} train (stratified, seed {seed})"]
    if limit_train is not None:
        if limit_train < 1:
            raise InputError(f"limit_train must be a positive number of images, got {limit_train}")
        if limit_train < len(train_idx):
            pick = stratified_sample(
                train_y[train_idx],
                limit_train,
                num_classes,
                np.random.default_rng([seed, 1]),
                name,
                "limited training",
            )
            train_idx = train_idx[pick]
            notes.append(f"train limited to {limit_train}")

    splits = [
        (train_x[train_idx], train_y[train_idx]),
        (train_x[val_idx], train_y[val_idx]),
        (test_x, test_y),
    ]
    # np.require copies only read-only or strided arrays (e.g. from np.frombuffer): torch needs writable memory.
    tensors = [
        (torch.from_numpy(np.require(x, requirements="CW")), torch.from_numpy(y.astype(np.int64)))
        for x, y in splits
    ]
    if resolution is not None:
        size = as_hw(resolution)
        if size != tuple(train_x.shape[2:]):
            tensors = [(resize_uint8(x, size), y) for x, y in tensors]
            notes.append(f"resized to {size[0]}x{size[1]}")
    (tx, ty), (vx, vy), (sx, sy) = tensors
    mean, std = channel_stats(tx)
    return Dataset(
        name=name,
        train_images=tx,
        train_labels=ty,
        val_images=vx,
        val_labels=vy,
        test_images=sx,
        test_labels=sy,
        num_classes=num_classes,
        channels=int(tx.shape[1]),
        resolution=(int(tx.shape[2]), int(tx.shape[3])),
        class_names=tuple(raw.class_names),
        mean=mean,
        std=std,
        hflip_ok=raw.hflip_ok,
        provenance=f"{raw.provenance}; " + "; ".join(notes),
    )


def _check_split(
    name: str, split: str, images: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    if images.dtype != np.uint8 or images.ndim != 4:
        raise InputError(
            f"{name}: {split} images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}"
        )
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(
            f"{name}: {split} has {images.shape[0]} images but labels of shape {labels.shape}"
        )
    if len(labels) == 0:
        raise InputError(f"{name}: the {split} split is empty")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise InputError(
            f"{name}: {split} labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}"
        )
    return images, labels.astype(np.int64, copy=False)


def _val_size(n: int, val_fraction: float, val_count: int | None) -> int:
    if val_count is not None:
        if (
            isinstance(val_count, bool)
            or not isinstance(val_count, (int, np.integer))
            or val_count < 0
        ):
            raise InputError(f"val_count must be a non-negative integer, got {val_count!r}")
        if val_count >= n:
            raise InputError(
                f"val_count={val_count} leaves no training images out of {n}; choose a smaller count"
            )
        return int(val_count)
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    return int(round(n * val_fraction))


def stratified_sample(
    labels: np.ndarray, total: int, num_classes: int, rng: np.random.Generator, name: str, what: str
) -> np.ndarray:
    """Sorted indices of `total` items drawn per class in proportion to class size.

    Quotas use largest remainders, so a balanced 10% split is exactly 10% of every class. A class
    that would get no item is an error rather than a silent hole in the split: a validation set
    missing a class measures the wrong thing.
    """
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(labels, minlength=num_classes)
    exact = counts * (total / len(labels))
    quota = np.floor(exact).astype(np.int64)
    short = total - int(quota.sum())
    if short:
        # Largest fractional parts first; ties go to the lower class index, deterministically.
        order = np.lexsort((np.arange(num_classes), -(exact - quota)))
        quota[order[:short]] += 1
    empty = np.flatnonzero((quota < 1) & (counts > 0))
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        raise InputError(
            f"{name}: class {int(missing[0])} has no training images, so a {what} set cannot include it; check the data"
        )
    if len(empty):
        c = int(empty[0])
        raise InputError(
            f"{name}: a {what} set of {total} images gives class {c} ({counts[c]} images) none; "
            f"use a larger size (at least one image per class, {num_classes} classes) or more data"
        )
    keys = rng.random(len(labels))
    order = np.lexsort((keys, labels))  # grouped by class, random within a class
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(labels)) - starts[labels[order]]
    return np.sort(order[rank < quota[labels[order]]])


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std on a 0..1 scale, from a 256-bin histogram per channel.

    A histogram is exact and needs no float copy of the whole training set.
    """
    levels = torch.arange(256, dtype=torch.float64)
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        n = hist.sum()
        mean = (hist * levels).sum() / n
        var = (hist * (levels - mean) ** 2).sum() / n
        means.append(float(mean) / 255.0)
        stds.append(max(float(var.sqrt()) / 255.0, 1e-6))
    return tuple(means), tuple(stds)


def resize_uint8(images: torch.Tensor, size: tuple[int, int], chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 NCHW images with antialiased bilinear interpolation, in chunks to bound memory."""
    out = torch.empty((images.shape[0], images.shape[1], *size), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        x = images[start : start + chunk].float()
        y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def as_hw(resolution: Resolution) -> tuple[int, int]:
    hw = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
    if len(hw) != 2 or not all(isinstance(v, int) and v >= 4 for v in hw):
        raise InputError(
            f"resolution must be an integer >= 4 or (height, width), got {resolution!r}"
        )
    return hw  # type: ignore[return-value]
