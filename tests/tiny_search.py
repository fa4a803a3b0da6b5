"""Settings of a search on the `tiny` space that trains in seconds, shared by the slow tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.evaluators.datasets.idx import FASHION_MNIST_FILES, load_fashion_mnist_mini

TINY_SEARCH = dict(
    space="tiny",
    target="armv8",
    budget_mflops=60.0,  # MFLOPs at 224: cuts through the middle of the `tiny` space (19 to 138)
    limit_train=400,
    epochs=1,
    batch_size=64,
    workers=2,
    warm_start=False,
    early_stopping=False,
    confirm_seeds=0,
)
"""SearchConfig settings of a search that trains in seconds: the slow tests' common base."""


def small_fashion_mnist(folder: Path, train: int, test: int) -> Path:
    """Fashion-MNIST idx files in `folder` holding the first `train` and `test` images of each
    split of the shipped subset, as many of every class: real images in the full set's format
    (`--dataset fashion-mnist --data-dir folder`), for tests whose path trains on the whole
    training split, where ten thousand images would only make the same path slower."""
    raw = load_fashion_mnist_mini()
    folder.mkdir(parents=True, exist_ok=True)
    splits = {
        "train": (raw.train_images, raw.train_labels, train),
        "test": (raw.test_images, raw.test_labels, test),
    }
    for split, (images, labels, count) in splits.items():
        per_class = count // len(raw.class_names)
        assert per_class * len(raw.class_names) == count, "a count that every class divides"
        keep = np.sort(
            np.concatenate(
                [np.flatnonzero(labels == c)[:per_class] for c in range(len(raw.class_names))]
            )
        )
        files = {"images": images[keep, 0], "labels": labels[keep]}
        for kind, array in files.items():
            header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
            name = FASHION_MNIST_FILES[f"{split}_{kind}"].removesuffix(".gz")
            (folder / name).write_bytes(header + np.ascontiguousarray(array, np.uint8).tobytes())
    return folder
