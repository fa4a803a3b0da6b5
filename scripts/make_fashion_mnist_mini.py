#!/usr/bin/env python3
"""Build evaluators/data/fashion-mnist-mini.npz, the dataset a fresh install can search on.

A stratified subset of real Fashion-MNIST (1,000 train and 200 test images per class by default),
drawn with a fixed seed from the four idx files that Debian's dataset-fashion-mnist package
installs. The output is byte-for-byte reproducible: zip entries carry a fixed timestamp, and the
file records the sha256 of every source file (compressed and decompressed) and the indices of
the chosen images, so anyone can check it against their own copy of Fashion-MNIST.

    apt-get install -y dataset-fashion-mnist
    python scripts/make_fashion_mnist_mini.py            # writes the file
    python scripts/make_fashion_mnist_mini.py --check    # rebuilds in memory, compares bytes
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from nas.evaluators.datasets.idx import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    find_idx_files,
    read_idx,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "evaluators" / "data" / "fashion-mnist-mini.npz"
DEBIAN_PACKAGE = "dataset-fashion-mnist"


def debian_version() -> str:
    """The installed package version, or "unknown" when the files came from elsewhere."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", DEBIAN_PACKAGE],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pick(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `per_class` images of each class, so the subset keeps the original order."""
    chosen = [
        rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
        for c in range(len(FASHION_MNIST_CLASSES))
    ]
    return np.sort(np.concatenate(chosen))


def build(source: Path, train_per_class: int, test_per_class: int, seed: int) -> bytes:
    files = find_idx_files(source)
    arrays = {
        key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in files.items()
    }
    rng = np.random.default_rng(seed)
    train_idx = pick(arrays["train_labels"], train_per_class, rng)
    test_idx = pick(arrays["test_labels"], test_per_class, rng)

    names, file_sha, payload_sha = [], [], []
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        raw = files[key].read_bytes()
        names.append(files[key].name)
        file_sha.append(hashlib.sha256(raw).hexdigest())
        payload = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        payload_sha.append(hashlib.sha256(payload).hexdigest())

    version = debian_version()
    provenance = (
        f"Fashion-MNIST (Xiao, Rasul & Vollgraf 2017; Zalando SE, MIT license): stratified subset of "
        f"{len(train_idx)} train + {len(test_idx)} test images (seed {seed}) from Debian {DEBIAN_PACKAGE} {version}"
    )
    content = {
        "train_images": arrays["train_images"][train_idx][:, None],
        "train_labels": arrays["train_labels"][train_idx],
        "test_images": arrays["test_images"][test_idx][:, None],
        "test_labels": arrays["test_labels"][test_idx],
        "class_names": np.array(FASHION_MNIST_CLASSES),
        "provenance": np.array(provenance),
        "license": np.array("MIT (Expat), Copyright 2017 Zalando SE; see docs/datasets.md"),
        "seed": np.array(seed, dtype=np.int64),
        "source_package": np.array(f"{DEBIAN_PACKAGE} {version}"),
        "source_files": np.array(names),
        "source_sha256": np.array(file_sha),
        "source_payload_sha256": np.array(payload_sha),
        "train_source_index": train_idx.astype(np.uint16),
        "test_source_index": test_idx.astype(np.uint16),
    }
    return write_npz(content)


def write_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz that np.load reads, without np.savez's current-time stamps, so rebuilds are identical."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(value, order="C"), allow_pickle=False)
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument(
        "--source", type=Path, default=FASHION_MNIST_DIR, help="folder with the four idx .gz files"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--check", action="store_true", help="rebuild in memory and compare with --out"
    )
    args = parser.parse_args(argv)

    data = build(args.source, args.train_per_class, args.test_per_class, args.seed)
    digest = hashlib.sha256(data).hexdigest()
    if args.check:
        same = args.out.is_file() and args.out.read_bytes() == data
        print(
            f"{args.out}: {'identical to' if same else 'DIFFERS from'} a rebuild (sha256 {digest})"
        )
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out}: {len(data):,} bytes, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
