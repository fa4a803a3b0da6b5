"""Dataset layer: every loader on small files written here in the official formats, the shipped
Fashion-MNIST subset, the stratified split, the image-folder cache, error messages, and the
batch transforms."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nas.errors import InputError
from nas.evaluators.datasets import (
    DATASET_NAMES,
    Dataset,
    RawData,
    augment_batch,
    batches,
    default_cache_dir,
    imagefolder,
    iterate_batches,
    load_dataset,
    to_float,
)
from nas.evaluators.datasets.cifar import restricted_loads

# ---------------------------------------------------------------- writers of the official formats


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def indexed_images(n: int, hw: int = 8, channels: int = 1, offset: int = 0) -> np.ndarray:
    """Images whose first pixel holds their own index, so a split can be traced back to the source."""
    x = np.zeros((n, channels, hw, hw), dtype=np.uint8)
    x[:, :, 1:, :] = np.random.default_rng(n).integers(
        0, 256, (n, channels, hw - 1, hw), dtype=np.uint8
    )
    x[:, :, 0, 0] = ((np.arange(n) + offset) % 256)[:, None]
    x[:, :, 0, 1] = ((np.arange(n) + offset) // 256)[:, None]
    return x


def image_ids(images: torch.Tensor) -> set[int]:
    return set((images[:, 0, 0, 0].long() + 256 * images[:, 0, 0, 1].long()).tolist())


def write_fashion_idx(folder: Path, n_train: int = 100, n_test: int = 30, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": indexed_images(n_train)[:, 0],
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": indexed_images(n_test)[:, 0],
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def cifar_rows(n: int, offset: int) -> np.ndarray:
    """(n, 3072) rows as in the official files: 1024 red, 1024 green, 1024 blue values."""
    rows = np.empty((n, 3, 1024), dtype=np.uint8)
    rows[:, 0] = (np.arange(n) + offset)[:, None] % 256
    rows[:, 1] = 100
    rows[:, 2] = 200
    return rows.reshape(n, 3072)


def write_cifar10(folder: Path, per_batch: int = 10, protocol: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        batch = {
            b"batch_label": f"training batch {i} of 5".encode(),
            b"labels": [j % 10 for j in range(per_batch)],
            b"data": cifar_rows(per_batch, (i - 1) * per_batch),
            b"filenames": [f"img_{j}.png".encode() for j in range(per_batch)],
        }
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=protocol))
    test = {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": list(range(10)),
        b"data": cifar_rows(10, 200),
    }
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=protocol))
    names = [
        n.encode()
        for n in (
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        )
    ]
    meta = {b"label_names": names, b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return folder


def write_cifar100(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    train = {
        b"data": cifar_rows(300, 0),
        b"fine_labels": [j % 100 for j in range(300)],
        b"coarse_labels": [j % 20 for j in range(300)],
    }
    test = {
        b"data": cifar_rows(100, 0),
        b"fine_labels": list(range(100)),
        b"coarse_labels": [j % 20 for j in range(100)],
    }
    meta = {
        b"fine_label_names": [f"fine{j}".encode() for j in range(100)],
        b"coarse_label_names": [f"c{j}".encode() for j in range(20)],
    }
    for name, obj in (("train", train), ("test", test), ("meta", meta)):
        (folder / name).write_bytes(pickle.dumps(obj))
    return folder


def tar_gz(source: Path, archive: Path, arcname: str) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source, arcname=arcname)
    return archive


def py2_pickle(obj: object) -> bytes:
    """The byte layout Python 2's cPickle gave the official CIFAR files (protocol 2, str as BINSTRING)."""

    def enc(o: object) -> bytes:
        if isinstance(o, bytes):
            return (
                b"U" + bytes([len(o)]) if len(o) < 256 else b"T" + struct.pack("<i", len(o))
            ) + o
        if isinstance(o, bool) or o is None:
            return {None: b"N", False: b"\x89", True: b"\x88"}[o]
        if isinstance(o, int):
            return b"K" + bytes([o]) if 0 <= o < 256 else b"J" + struct.pack("<i", o)
        if isinstance(o, tuple):
            return b"(" + b"".join(map(enc, o)) + b"t"
        if isinstance(o, list):
            return b"](" + b"".join(map(enc, o)) + b"e"
        if isinstance(o, dict):
            return b"}(" + b"".join(enc(k) + enc(v) for k, v in o.items()) + b"u"
        if isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            dtype = (
                b"cnumpy\ndtype\n"
                + enc((b"u1", 0, 1))
                + b"R"
                + enc((3, b"|", None, None, None, -1, -1, 0))
                + b"b"
            )
            array = (
                b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n"
                + enc((0,))
                + enc(b"b")
                + b"tR"
            )
            state = (
                b"(" + enc(1) + enc(tuple(o.shape)) + dtype + enc(False) + enc(o.tobytes()) + b"t"
            )
            return array + state + b"b"
        raise TypeError(type(o))

    return b"\x80\x02" + enc(obj) + b"."


def write_image_folder(
    root: Path, eval_name: str = "test", size: int = 12, mode: str = "RGB", per_class: int = 6
) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), (eval_name, 2)):
        for label, cls in enumerate(("cat", "dog", "emu")):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                shape = (size, size) if mode == "L" else (size, size, 3)
                pixels = rng.integers(0, 256, shape, dtype=np.uint8)
                pixels[0, 0] = label * 80  # lossless PNG: lets the test check labels against pixels
                Image.fromarray(pixels, mode).save(folder / f"{i:03d}.png")
    (root / "README.md").write_text("stray files beside the split folders are ignored\n")
    return root


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_from_idx_gz(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm")
    ds = load_dataset("fashion-mnist", folder, val_fraction=0.2)
    assert isinstance(ds, Dataset)
    assert ds.train_images.shape == (80, 1, 8, 8) and ds.val_images.shape == (20, 1, 8, 8)
    assert ds.test_images.shape == (30, 1, 8, 8)
    assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64
    assert (
        ds.num_classes == 10
        and ds.class_names[0] == "T-shirt/top"
        and ds.class_names[9] == "Ankle boot"
    )
    assert (ds.channels, ds.resolution, ds.input_shape) == (1, (8, 8), (1, 8, 8))
    # train and val partition the official training set; the label of each image is its own
    assert image_ids(ds.train_images) | image_ids(ds.val_images) == set(range(100))
    assert not image_ids(ds.train_images) & image_ids(ds.val_images)
    ids = ds.val_images[:, 0, 0, 0].long() + 256 * ds.val_images[:, 0, 0, 1].long()
    assert torch.equal(ids % 10, ds.val_labels)
    assert torch.equal(ds.test_labels, torch.arange(30) % 10)
    assert "Fashion-MNIST" in ds.provenance and str(folder) in ds.provenance


def test_fashion_mnist_accepts_unpacked_idx_files(tmp_path: Path) -> None:
    ds = load_dataset(
        "fashion_mnist", write_fashion_idx(tmp_path / "fm", gz=False), val_fraction=0.2
    )
    assert len(ds.train_labels) + len(ds.val_labels) == 100


def test_truncated_idx_is_an_input_error(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm")
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-10]))
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_dataset("fashion-mnist", folder)


def test_cut_gzip_stream_is_an_input_error(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm")
    path = folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(InputError, match="t10k-images.*download it again"):
        load_dataset("fashion-mnist", folder)


def test_wrong_magic_number_is_an_input_error(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm")
    labels = folder / "train-labels-idx1-ubyte.gz"
    (folder / "train-images-idx3-ubyte.gz").write_bytes(
        labels.read_bytes()
    )  # a 1-d file where 3-d belongs
    with pytest.raises(InputError, match="magic number 0x00000801, expected 0x00000803"):
        load_dataset("fashion-mnist", folder)


def test_missing_idx_file_is_named(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        InputError, match="lacks t10k-labels-idx1-ubyte.gz.*apt-get install dataset-fashion-mnist"
    ):
        load_dataset("fashion-mnist", folder)


# ---------------------------------------------------------------- the shipped subset


def test_shipped_fashion_mnist_mini() -> None:
    ds = load_dataset("fashion-mnist-mini")
    assert (
        ds.name == "fashion-mnist-mini" and ds.input_shape == (1, 28, 28) and ds.num_classes == 10
    )
    assert ds.train_images.dtype == torch.uint8 and ds.test_labels.dtype == torch.int64
    assert (len(ds.train_labels), len(ds.val_labels), len(ds.test_labels)) == (9000, 1000, 2000)
    counts = torch.bincount(ds.train_labels, minlength=10) + torch.bincount(
        ds.val_labels, minlength=10
    )
    assert counts.tolist() == [1000] * 10
    assert torch.bincount(ds.val_labels, minlength=10).tolist() == [100] * 10
    assert torch.bincount(ds.test_labels, minlength=10).tolist() == [200] * 10
    assert int(ds.test_labels.min()) == 0 and int(ds.test_labels.max()) == 9
    # real Fashion-MNIST statistics (the full set: mean 0.2860, std 0.3530), not noise
    assert abs(ds.mean[0] - 0.286) < 0.01 and abs(ds.std[0] - 0.353) < 0.01
    assert "Fashion-MNIST" in ds.provenance and "MIT" in ds.provenance and "seed 0" in ds.provenance
    assert ds.hflip_ok


def test_shipped_file_records_its_sources() -> None:
    path = Path(str(resources.files("nas.evaluators") / "data" / "fashion-mnist-mini.npz"))
    assert path.stat().st_size < 8_000_000
    with np.load(path, allow_pickle=False) as npz:
        assert list(npz["source_files"]) == [
            "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        ]  # fmt: skip
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in npz["source_sha256"])
        index = npz["train_source_index"]
        assert len(np.unique(index)) == 10_000 and index.max() < 60_000
    with zipfile.ZipFile(path) as zf:  # fixed timestamps make the build reproducible
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_mini_takes_no_data_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="built in.*fashion-mnist"):
        load_dataset("fashion-mnist-mini", tmp_path)


# ---------------------------------------------------------------- CIFAR


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_from_folder(tmp_path: Path, protocol: int) -> None:
    ds = load_dataset("cifar10", write_cifar10(tmp_path / "c", protocol=protocol), val_fraction=0.2)
    assert ds.input_shape == (3, 32, 32) and ds.num_classes == 10
    assert (len(ds.train_labels), len(ds.val_labels), len(ds.test_labels)) == (40, 10, 10)
    assert ds.class_names[:2] == ("airplane", "automobile")
    # rows are red plane, green plane, blue plane
    assert torch.all(ds.train_images[:, 1] == 100) and torch.all(ds.train_images[:, 2] == 200)
    red = ds.train_images[:, 0, 0, 0].long()
    assert torch.equal(red % 10, ds.train_labels)
    assert torch.equal(ds.test_images[:, 0, 0, 0].long(), torch.arange(200, 210))


def test_cifar10_from_tar_gz_and_from_its_folder(tmp_path: Path) -> None:
    source = write_cifar10(tmp_path / "src")
    (tmp_path / "dl").mkdir()
    archive = tar_gz(source, tmp_path / "dl" / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    from_archive = load_dataset("cifar10", archive, val_fraction=0.2)
    from_folder = load_dataset("cifar10", tmp_path / "dl", val_fraction=0.2)
    from_files = load_dataset("cifar10", source, val_fraction=0.2)
    for ds in (from_archive, from_folder):
        assert torch.equal(ds.train_images, from_files.train_images)
        assert torch.equal(ds.val_labels, from_files.val_labels)
        assert "cifar-10-python.tar.gz" in ds.provenance


def test_cifar10_in_the_official_python2_byte_layout(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path / "c")
    data = cifar_rows(10, 150)
    (folder / "data_batch_3").write_bytes(
        py2_pickle(
            {b"batch_label": b"training batch 3 of 5", b"labels": list(range(10)), b"data": data}
        )
    )
    assert (
        restricted_loads((folder / "data_batch_3").read_bytes())[b"data"].tolist() == data.tolist()
    )  # type: ignore[index]
    ds = load_dataset("cifar10", folder, val_fraction=0.2)
    red = torch.cat([ds.train_images[:, 0, 0, 0], ds.val_images[:, 0, 0, 0]]).tolist()
    assert set(range(150, 160)) <= set(red) and not set(range(20, 30)) & set(
        red
    )  # batch 3 replaced


def test_cifar100_fine_labels_from_tar_gz(tmp_path: Path) -> None:
    source = write_cifar100(tmp_path / "src")
    archive = tar_gz(source, tmp_path / "cifar-100-python.tar.gz", "cifar-100-python")
    ds = load_dataset("cifar-100", archive, val_count=100)
    assert ds.num_classes == 100 and ds.class_names[5] == "fine5"
    assert (len(ds.train_labels), len(ds.val_labels), len(ds.test_labels)) == (200, 100, 100)
    assert torch.bincount(ds.val_labels, minlength=100).tolist() == [1] * 100
    assert torch.equal(
        load_dataset("cifar100", source, val_count=100).train_images, ds.train_images
    )


def test_cifar_pickle_cannot_run_code(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path / "c")
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # noqa: ANN204
            return (open, (str(marker), "w"))

    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2)
    )
    with pytest.raises(
        InputError, match="test_batch is not a CIFAR python batch: it refers to io.open"
    ):
        load_dataset("cifar10", folder, val_fraction=0.2)
    assert not marker.exists()


def test_cifar_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs data_dir"):
        load_dataset("cifar10")
    with pytest.raises(
        InputError, match="neither cifar-10-python.tar.gz nor the files data_batch_1"
    ):
        load_dataset("cifar10", tmp_path)
    (tmp_path / "bad.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(InputError, match="as a tar archive"):
        load_dataset("cifar10", tmp_path / "bad.tar.gz")
    folder = write_cifar10(tmp_path / "c")
    (folder / "data_batch_2").write_bytes(
        pickle.dumps({b"data": np.zeros((3, 10), np.uint8), b"labels": [0, 1, 2]})
    )
    with pytest.raises(
        InputError, match=r"data_batch_2: 'data' must be a uint8 array of shape \(N, 3072\)"
    ):
        load_dataset("cifar10", folder)


# ---------------------------------------------------------------- image folders


def test_image_folder_loads_and_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_image_folder(tmp_path / "imgs")
    cache = tmp_path / "cache"
    ds = load_dataset("imagefolder", root, val_count=3, cache_dir=cache)
    assert ds.class_names == ("cat", "dog", "emu") and ds.input_shape == (3, 12, 12)
    assert (len(ds.train_labels), len(ds.val_labels), len(ds.test_labels)) == (15, 3, 6)
    assert torch.equal(ds.train_images[:, 0, 0, 0].long(), ds.train_labels * 80)
    assert torch.equal(ds.test_images[:, 0, 0, 0].long(), ds.test_labels * 80)
    assert "test/ as test" in ds.provenance
    (cache_file,) = cache.glob("imagefolder-*.npy")
    stamp = cache_file.stat().st_mtime_ns

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached image folder was decoded again")

    monkeypatch.setattr(imagefolder, "decode_images", no_decoding)
    again = load_dataset("imagefolder", root, val_count=3, cache_dir=cache)
    assert torch.equal(again.train_images, ds.train_images) and torch.equal(
        again.test_images, ds.test_images
    )
    assert cache_file.stat().st_mtime_ns == stamp

    # touching one image changes the key, so the folder is decoded afresh
    image = root / "train" / "dog" / "001.png"
    os.utime(image, ns=(stamp, stamp + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset("imagefolder", root, val_count=3, cache_dir=cache)


def test_image_folder_with_val_and_grayscale(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs", eval_name="val", mode="L", size=10)
    ds = load_dataset("imagefolder", root, val_count=3, cache_dir=tmp_path / "cache")
    assert ds.input_shape == (1, 10, 10) and len(ds.mean) == 1
    assert len(ds.test_labels) == 6 and "val/ as test" in ds.provenance


def test_image_folder_mixed_sizes_need_a_resolution(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "imgs")
    Image.new("RGB", (20, 16), "red").save(root / "test" / "emu" / "big.png")
    with pytest.raises(InputError, match="20x16, not 12x12.*--proxy-resolution"):
        load_dataset("imagefolder", root, val_count=3, cache_dir=tmp_path / "cache")
    ds = load_dataset("imagefolder", root, val_count=3, resolution=8, cache_dir=tmp_path / "cache")
    assert ds.input_shape == (3, 8, 8) and len(ds.test_labels) == 7
    assert torch.all(ds.test_images[-1, 0] == 255) and torch.all(
        ds.test_images[-1, 1:] == 0
    )  # the red one, cropped


def test_image_folder_decodes_the_same_in_worker_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_image_folder(tmp_path / "imgs", per_class=100)
    classes = imagefolder.list_classes(root / "train")
    paths = imagefolder.scan_split(root / "train", classes, require_all=True).paths
    serial, _ = imagefolder.decode_images(paths, (12, 12), resize=False, workers=1)
    monkeypatch.setattr(imagefolder, "_POOL_MIN_IMAGES", 0)
    pooled, gray = imagefolder.decode_images(paths, (12, 12), resize=False, workers=2)
    assert np.array_equal(serial, pooled) and not gray


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no train/ folder"):
        load_dataset("imagefolder", tmp_path)
    (tmp_path / "train" / "cat").mkdir(parents=True)
    with pytest.raises(InputError, match="neither test/ nor val/"):
        load_dataset("imagefolder", tmp_path)
    (tmp_path / "test" / "cat").mkdir(parents=True)
    with pytest.raises(InputError, match="cat holds no images"):
        load_dataset("imagefolder", tmp_path, cache_dir=tmp_path / "cache")
    root = write_image_folder(tmp_path / "imgs")
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="cannot decode .*broken.jpg.*remove or replace"):
        load_dataset("imagefolder", root, cache_dir=tmp_path / "cache")


def test_default_cache_dir_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "datasets"
    monkeypatch.delenv("NAS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "nas" / "datasets"


# ---------------------------------------------------------------- splits and entry-point errors


def test_split_is_stratified_and_fixed_by_the_seed(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm", n_train=1000)
    a = load_dataset("fashion-mnist", folder, seed=3)
    b = load_dataset("fashion-mnist", folder, seed=3)
    c = load_dataset("fashion-mnist", folder, seed=4)
    assert torch.equal(a.val_images, b.val_images) and torch.equal(a.train_labels, b.train_labels)
    assert image_ids(a.val_images) != image_ids(c.val_images)
    assert torch.bincount(a.val_labels, minlength=10).tolist() == [10] * 10
    assert a.mean == b.mean and "seed 3" in a.provenance


def test_limit_train_keeps_the_validation_set(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm", n_train=1000)
    full = load_dataset("fashion-mnist", folder)
    small = load_dataset("fashion-mnist", folder, limit_train=50, resolution=4)
    assert torch.equal(full.val_labels, small.val_labels) and len(small.val_labels) == 100
    assert torch.bincount(small.train_labels, minlength=10).tolist() == [5] * 10
    assert image_ids(full.train_images) >= image_ids(
        load_dataset("fashion-mnist", folder, limit_train=50).train_images
    )
    assert small.input_shape == (1, 4, 4) and "train limited to 50" in small.provenance


def test_zero_validation_is_allowed_for_final_training(tmp_path: Path) -> None:
    ds = load_dataset("fashion-mnist", write_fashion_idx(tmp_path / "fm"), val_fraction=0.0)
    assert ds.val_images.shape == (0, 1, 8, 8) and len(ds.train_labels) == 100


def test_too_small_for_a_validation_split(tmp_path: Path) -> None:
    folder = write_fashion_idx(tmp_path / "fm", n_train=20)
    with pytest.raises(InputError, match="gives class .* none; use a larger size"):
        load_dataset(
            "fashion-mnist", folder, val_fraction=0.1
        )  # 2 validation images for 10 classes
    with pytest.raises(InputError, match="takes all 2 images of class 0"):
        load_dataset("fashion-mnist", folder, val_fraction=0.95)
    with pytest.raises(InputError, match="val_count=20 leaves no training images"):
        load_dataset("fashion-mnist", folder, val_count=20)
    with pytest.raises(InputError, match="val_fraction must be in"):
        load_dataset("fashion-mnist", folder, val_fraction=1.5)
    with pytest.raises(InputError, match="limited training set of 5 images gives class"):
        load_dataset("fashion-mnist", folder, val_count=10, limit_train=5)


def test_unknown_name_and_missing_dir() -> None:
    with pytest.raises(
        InputError, match="unknown dataset 'imagenet'; choose one of: " + ", ".join(DATASET_NAMES)
    ):
        load_dataset("imagenet")
    with pytest.raises(InputError, match="does not exist"):
        load_dataset("cifar10", "/nonexistent/cifar")
    with pytest.raises(InputError, match="resolution must be"):
        load_dataset("fashion-mnist-mini", resolution=2)


def test_dataset_checks_hand_built_fields() -> None:
    raw = RawData(
        indexed_images(20, 6, 3),
        np.arange(20) % 2,
        indexed_images(4, 6, 3),
        np.arange(4) % 2,
        ("a", "b"),
        "made here",
    )
    ds = Dataset.from_arrays("toy", raw, val_count=2)
    assert (
        ds.channels == 3
        and len(ds.mean) == 3
        and repr(ds) == "Dataset('toy', train=18, val=2, test=4, 3x6x6, 2 classes)"
    )
    with pytest.raises(ValueError, match="train_labels must be int64"):
        Dataset(**{**ds.__dict__, "train_labels": ds.train_labels.int()})


# ---------------------------------------------------------------- batch transforms


def test_to_float_standardises_with_the_train_statistics(tmp_path: Path) -> None:
    ds = load_dataset("cifar10", write_cifar10(tmp_path / "c", per_batch=40), val_fraction=0.1)
    x = to_float(ds.train_images, ds.mean, ds.std)
    assert x.dtype == torch.float32 and x.shape == ds.train_images.shape
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x[:, 0].std(unbiased=False), torch.tensor(1.0), atol=1e-3)


def test_augment_batch_keeps_shape_and_is_reproducible() -> None:
    x = torch.rand(64, 3, 16, 16)
    a = augment_batch(x, torch.Generator().manual_seed(1), flip=True)
    b = augment_batch(x, torch.Generator().manual_seed(1), flip=True)
    c = augment_batch(x, torch.Generator().manual_seed(2), flip=True)
    assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b) and not torch.equal(a, c)
    u = augment_batch((x * 255).to(torch.uint8), torch.Generator().manual_seed(1))
    assert u.dtype == torch.uint8 and u.shape == x.shape
    assert torch.equal(augment_batch(x, torch.Generator(), pad=0, flip=False), x)


def test_augment_batch_crops_windows_and_flips_whole_rows() -> None:
    x = torch.rand(32, 2, 8, 8)
    flips = augment_batch(x, torch.Generator().manual_seed(0), pad=0, flip=True)
    same = (flips == x).flatten(1).all(1)
    mirrored = (flips == x.flip(3)).flatten(1).all(1)
    assert torch.all(same | mirrored) and same.any() and mirrored.any()
    crops = augment_batch(
        x, torch.Generator().manual_seed(0), pad=1, flip=False
    )  # pad defaults to H // 8 = 1
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(len(x)):
        windows = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)]
        assert any(torch.equal(crops[i], w) for w in windows)


def test_iterate_batches_covers_every_item_once() -> None:
    images, labels = torch.arange(10).view(10, 1, 1, 1).to(torch.uint8), torch.arange(10)
    shuffled = list(iterate_batches(images, labels, 4, generator=torch.Generator().manual_seed(0)))
    again = list(iterate_batches(images, labels, 4, generator=torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in shuffled] == [4, 4, 2]
    assert sorted(torch.cat([y for _, y in shuffled]).tolist()) == list(range(10))
    assert all(torch.equal(y1, y2) for (_, y1), (_, y2) in zip(shuffled, again, strict=True))
    assert torch.cat([y for _, y in shuffled]).tolist() != list(range(10))
    ordered = list(iterate_batches(images, labels, 4, drop_last=True))
    assert [y.tolist() for _, y in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_batches_normalise_and_augment_a_split() -> None:
    ds = load_dataset("fashion-mnist-mini", limit_train=200)
    out = list(batches(ds, "train", 64, generator=torch.Generator().manual_seed(0), augment=True))
    assert [x.shape for x, _ in out] == [(64, 1, 28, 28)] * 3 + [(8, 1, 28, 28)]
    assert all(x.dtype == torch.float32 for x, _ in out)
    with pytest.raises(ValueError, match="needs a generator"):
        next(batches(ds, "train", 64, augment=True))
