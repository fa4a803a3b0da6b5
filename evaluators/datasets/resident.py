"""One split of a dataset held on a device as uint8, with its batches made there.

A GPU trains a small candidate faster than the host can gather, standardise, crop and flip a
batch and copy it over, so the GPU loop copies each split to the device once, as uint8 (CIFAR-10's
50,000 training images are 150 MB), and makes every batch there. The random numbers are still
drawn on the CPU, from the run's own generator and in the order the CPU loop draws them (the
epoch's permutation, then each batch's crop offsets and flips), and copied to the device once
per epoch. So for the same seed a run sees the same batches, crops and flips on either device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from .base import Dataset
from .transforms import crop_flip, draw_crop_flip


class ResidentSplit:
    """uint8 images and their labels on `device`, standardised a batch at a time."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
    ) -> None:
        if images.dtype != torch.uint8:
            raise TypeError(f"ResidentSplit expects uint8 images, got {images.dtype}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        # Computed on the CPU exactly as `to_float` computes them, then copied.
        shape = (1, -1, 1, 1)
        self.mean = (torch.tensor(mean, dtype=torch.float32).view(shape) * 255.0).to(self.device)
        self.std = (torch.tensor(std, dtype=torch.float32).view(shape) * 255.0).to(self.device)

    @classmethod
    def of(cls, data: Dataset, split: str, device: torch.device) -> ResidentSplit:
        """The `split` ("train", "val" or "test") of `data` on `device`."""
        images, labels = data.split(split)
        return cls(images, labels, data.mean, data.std, device)

    def __len__(self) -> int:
        return len(self.labels)

    def standardise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 -> float32 standardised per channel, with the operations of `to_float`."""
        return images.to(torch.float32).sub_(self.mean).div_(self.std)

    def training_batches(
        self,
        batch_size: int,
        generator: torch.Generator,
        *,
        pad: int,
        flip: bool,
        channels_last: bool,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled, augmented batches; the last incomplete batch is dropped.

        `generator` is a CPU generator: it draws what `iterate_batches` and `augment_batch`
        draw for the CPU loop, in the same order.
        """
        n = len(self)
        steps = n // batch_size
        order = torch.randperm(n, generator=generator)
        augment = bool(pad or flip)
        draws = [
            draw_crop_flip(batch_size, generator, pad=pad, flip=flip)
            for _ in range(steps if augment else 0)
        ]
        order = order[: steps * batch_size].to(self.device, non_blocking=True)
        if augment:
            dy = torch.stack([d[0] for d in draws]).to(self.device, non_blocking=True)
            dx = torch.stack([d[1] for d in draws]).to(self.device, non_blocking=True)
            flips = (
                torch.stack([d[2] for d in draws]).to(self.device, non_blocking=True)  # type: ignore[misc]
                if flip
                else None
            )
        for step in range(steps):
            index = order[step * batch_size : (step + 1) * batch_size]
            x = self.standardise(self.images[index])
            if augment:
                flipped = flips[step] if flips is not None else None
                x = crop_flip(x, dy[step], dx[step], flipped, pad=pad)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index]

    def batches_in_order(
        self, batch_size: int, *, channels_last: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Standardised batches in their stored order, for evaluation."""
        for start in range(0, len(self), batch_size):
            x = self.standardise(self.images[start : start + batch_size])
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[start : start + batch_size]
