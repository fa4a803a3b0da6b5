"""Batch-level preprocessing: normalisation, augmentation and shuffled batches.

Proxy training runs for minutes on a CPU, so per-image Python transforms (a DataLoader with
torchvision transforms) would cost more than the network itself. Everything here works on a
whole (N, C, H, W) batch with a few tensor operations, and all randomness comes from an explicit
torch.Generator so a trial is reproducible from its seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .base import Dataset


def to_float(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 images -> float32, standardised per channel; `mean`/`std` are on a 0..1 scale."""
    if images.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images, got {images.dtype}")
    shape = (1, -1, 1, 1)
    m = torch.tensor(mean, dtype=torch.float32).view(shape) * 255.0
    s = torch.tensor(std, dtype=torch.float32).view(shape) * 255.0
    return images.to(torch.float32).sub_(m).div_(s)


normalize = to_float


def augment_batch(
    images: torch.Tensor, generator: torch.Generator, *, pad: int | None = None, flip: bool = True
) -> torch.Tensor:
    """Random crop after zero padding, and (if `flip`) random horizontal flips, for a whole batch.

    Crop offsets and flips become one `gather` over the flattened pixels of a padded copy, so
    the cost does not grow with Python work per image (1.6 ms for 128 CIFAR images on one core,
    against 14.7 ms with advanced indexing by four broadcast index tensors: 10% of a proxy
    training step). Padding is zero: after `to_float` that is the mean colour, which disturbs
    the statistics less than black borders. `pad` defaults to an eighth of the height (4 at
    32x32, as in the usual CIFAR recipe). Works for any dtype.
    """
    n, _, h, _ = images.shape
    pad = h // 8 if pad is None else pad
    if n == 0 or (pad == 0 and not flip):
        return images.clone()
    dy, dx, flipped = draw_crop_flip(n, generator, pad=pad, flip=flip)
    return crop_flip(images, dy, dx, flipped, pad=pad)


def draw_crop_flip(
    n: int, generator: torch.Generator, *, pad: int, flip: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The random draws of `augment_batch` for `n` images: row and column offsets (n, 1) in
    [0, 2 * pad], and which images flip (n, 1) or None.

    Drawn apart from the pixels so that a loop whose images live on a GPU draws exactly the
    numbers the CPU loop draws, from the same CPU generator, and applies them there.
    """
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    flipped = torch.rand(n, 1, generator=generator) < 0.5 if flip else None
    return dy, dx, flipped


def crop_flip(
    images: torch.Tensor,
    dy: torch.Tensor,
    dx: torch.Tensor,
    flipped: torch.Tensor | None,
    *,
    pad: int,
) -> torch.Tensor:
    """Apply drawn crops and flips (`draw_crop_flip`) to a batch, on the batch's device."""
    n, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad)) if pad else images
    width = w + 2 * pad
    device = images.device
    cols = torch.arange(w, device=device).expand(n, w)
    if flipped is not None:
        cols = torch.where(flipped, cols.flip(1), cols)
    rows = torch.arange(h, device=device) + dy  # (n, h)
    index = (rows[:, :, None] * width + (cols + dx)[:, None, :]).reshape(n, 1, h * w)
    flat = padded.reshape(n, c, -1).gather(2, index.expand(n, c, h * w))
    return flat.reshape(n, c, h, w)


def iterate_batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) batches; shuffled by `generator` if given, else in order (for evaluation)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(labels)
    order = torch.randperm(n, generator=generator) if generator is not None else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield images[start : start + batch_size], labels[start : start + batch_size]
        else:
            idx = order[start : start + batch_size]
            yield images[idx], labels[idx]


def batches(
    dataset: Dataset,
    split: str,
    batch_size: int,
    *,
    generator: torch.Generator | None = None,
    augment: bool = False,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalised float batches of one split, augmented for training when `augment` is set.

    The usual training loop is `batches(ds, "train", 128, generator=g, augment=True)`; evaluation
    is `batches(ds, "val", 512)`.
    """
    if augment and generator is None:
        raise ValueError("augment=True needs a generator, so that augmentation is reproducible")
    images, labels = dataset.split(split)
    for x, y in iterate_batches(
        images, labels, batch_size, generator=generator, drop_last=drop_last
    ):
        x = to_float(x, dataset.mean, dataset.std)
        if augment:
            x = augment_batch(x, generator, flip=dataset.hflip_ok)  # type: ignore[arg-type]
        yield x, y
