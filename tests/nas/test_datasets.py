"""Datasets: the IDX reader, Fashion-MNIST from its Debian package, user data, views and splits."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.datasets import Dataset, DataSpec, dataset_names, fashion_mnist, load_dataset, resolve_data_spec
from nas.datasets.idx import read_idx
from nas.errors import DatasetError


def write_idx(path: Path, arr: np.ndarray, code: int = 0x08, gz: bool = False) -> Path:
    raw = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


# ------------------------------------------------------------------ IDX
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    got = read_idx(write_idx(tmp_path / ("a.gz" if gz else "a"), arr, gz=gz))
    assert got.shape == (2, 3, 4) and np.array_equal(got, arr)


def test_idx_rejects_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(DatasetError, match="first two bytes"):
        read_idx(bad)
    short = write_idx(tmp_path / "short", np.zeros((3, 2), np.uint8))
    short.write_bytes(short.read_bytes()[:-1])
    with pytest.raises(DatasetError, match=r"shape \(3, 2\) \(6 bytes of data\), file holds 5"):
        read_idx(short)
    weird = tmp_path / "weird"
    weird.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01a")
    with pytest.raises(DatasetError, match="element type 0x07"):
        read_idx(weird)


# ------------------------------------------------------------------ Fashion-MNIST
def test_fashion_mnist_from_the_debian_package() -> None:
    ds = load_dataset("fashion-mnist")
    assert (len(ds.y_train), len(ds.y_test)) == (60000, 10000)
    assert ds.x_train.shape[1:] == (1, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.num_classes == 10 and ds.classes[9] == "ankle boot"
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert load_dataset("fashion-mnist") is ds  # loaded once per folder


def test_fashion_mnist_missing_folder_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load()


def test_fashion_mnist_from_another_folder(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), gz=True
        )
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    ds = DataSpec(name="fashion-mnist", path=str(tmp_path)).load()
    assert (len(ds.y_train), len(ds.y_test)) == (20, 10)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    fashion_mnist._load.cache_clear()
    with pytest.raises(DatasetError, match="missing t10k-labels-idx1-ubyte"):
        DataSpec(name="fashion-mnist", path=str(tmp_path)).load()


# ------------------------------------------------------------------ views
def test_pad_keeps_pixels_and_paints_the_border_black() -> None:
    ds = load_dataset("fashion-mnist")
    view = ds.view(32, 3, seed=0)
    assert view.mode == "pad"
    x, _ = view.batch("train", np.arange(4))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])  # channel repeat
    black = float(-view.mean[0] / view.std[0])
    assert torch.allclose(x[:, :, :2, :], torch.tensor(black)) and torch.allclose(x[:, :, :, -2:], torch.tensor(black))
    rows = view.indices["train"][:4]
    raw = torch.from_numpy(ds.x_train[rows, 0].astype(np.float32) / 255)
    assert torch.allclose(x[:, 0, 2:30, 2:30], (raw - float(view.mean[0])) / float(view.std[0]), atol=1e-6)


def test_resize_and_channel_average(synthetic: Dataset) -> None:
    fm = load_dataset("fashion-mnist")
    assert fm.view(224, 1).mode == "resize" and fm.view(16, 1).mode == "resize"
    x, _ = fm.view(16, 1).batch("test", np.arange(3))
    assert x.shape == (3, 1, 16, 16)
    gray = synthetic.view(16, 1)  # 3 channels -> 1 by averaging
    x, _ = gray.batch("train", np.arange(2))
    assert x.shape == (2, 1, 16, 16)
    with pytest.raises(DatasetError, match="cannot pad 28x28 images to 16x16"):
        fm.view(16, 1, fit="pad")
    with pytest.raises(DatasetError, match="channels: dataset 'synthetic' has 3-channel images"):
        synthetic.view(16, 2)


def test_splits_are_seeded_stratified_and_disjoint() -> None:
    ds = load_dataset("fashion-mnist")
    a, b, c = ds.view(32, 1, seed=0), ds.view(32, 1, seed=0), ds.view(32, 1, seed=1)
    assert np.array_equal(a.indices["train"], b.indices["train"])
    assert not np.array_equal(a.indices["train"], c.indices["train"])
    assert len(np.intersect1d(a.indices["train"], a.indices["val"])) == 0
    assert len(a.indices["train"]) + len(a.indices["val"]) == 60000
    assert np.bincount(ds.y_train[a.indices["val"]]).tolist() == [600] * 10
    small = ds.view(32, 1, limit=500, val_fraction=0.05)
    assert (small.size("train"), small.size("val"), small.size("test")) == (500, 3000, 10000)
    x1, y1 = a.sample(8, seed=3)
    x2, y2 = b.sample(8, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    with pytest.raises(DatasetError, match="split: expected one of train, val, test"):
        a.size("holdout")  # type: ignore[arg-type]
    with pytest.raises(DatasetError, match=r"val_fraction: must be in \[0, 1\)"):
        ds.view(32, 1, val_fraction=1.0)


def test_batches_cover_a_split_once(synthetic: Dataset) -> None:
    view = synthetic.view(16, 3, val_fraction=0.25)
    seen = torch.cat([y for _, y in view.batches("val", 10, shuffle=True, seed=4)])
    assert len(seen) == view.size("val")
    assert sorted(seen.tolist()) == sorted(synthetic.y_train[view.indices["val"]].tolist())


# ------------------------------------------------------------------ user data
def test_npz_channel_last_and_holdout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (50, 12, 12, 3), dtype=np.uint8), y=np.arange(50) % 4)
    ds = load_dataset(str(tmp_path / "d.npz"))
    assert ds.x_train.shape == (40, 3, 12, 12) and ds.x_test.shape == (10, 3, 12, 12)
    assert ds.num_classes == 4 and ds.name == "d"
    np.savez(
        tmp_path / "t.npz",
        x=rng.random((20, 8, 8)),
        y=np.arange(20) % 2,
        x_test=rng.random((6, 8, 8)),
        y_test=np.arange(6) % 2,
        classes=np.array(["cat", "dog"]),
    )
    ds = load_dataset(str(tmp_path / "t.npz"))
    assert ds.x_train.dtype == np.float32 and len(ds.y_test) == 6 and ds.classes == ("cat", "dog")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((4, 8, 8))}, "missing array\\(s\\) y"),
        ({"x": np.zeros((4, 8, 8)), "y": np.zeros(3, int)}, "x holds 4 images but y holds 3 labels"),
        ({"x": np.zeros((4, 8)), "y": np.zeros(4, int)}, "expected images as N x H x W"),
        ({"x": np.full((4, 8, 8), np.nan), "y": np.zeros(4, int)}, "must be finite"),
        ({"x": np.zeros((4, 8, 8)), "y": np.array([0.5, 1, 0, 1])}, "expected integer labels"),
        ({"x": np.zeros((4, 8, 8)), "y": np.zeros(4, int), "x_test": np.zeros((2, 8, 8))}, "both x_test and y_test"),
    ],
)
def test_npz_errors_name_the_array(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=message):
        load_dataset(str(tmp_path / "bad.npz"))


def test_npz_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_text("not a zip")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        load_dataset(str(tmp_path / "x.npz"))
    with pytest.raises(DatasetError, match="is not a file"):
        DataSpec(name="npz", path=str(tmp_path / "missing.npz")).load()


def _images(folder: Path, n: int, mode: str = "L", size: int = 10) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(n):
        shape = (size, size) if mode == "L" else (size, size, 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"{i}.png")


def test_image_folder(tmp_path: Path) -> None:
    _images(tmp_path / "data" / "ants", 6)
    _images(tmp_path / "data" / "bees", 4)
    (tmp_path / "data" / "bees" / "notes.txt").write_text("not an image")
    ds = load_dataset(str(tmp_path / "data"))
    assert ds.classes == ("ants", "bees") and ds.channels == 1 and ds.size == (10, 10)
    assert len(ds.y_train) + len(ds.y_test) == 10
    _images(tmp_path / "split" / "train" / "a", 3, "RGB", 12)
    _images(tmp_path / "split" / "train" / "b", 3, "RGB", 12)
    _images(tmp_path / "split" / "test" / "a", 2, "RGB", 12)
    ds = DataSpec(name="folder", path=str(tmp_path / "split"), options={"size": 8}).load()
    assert (len(ds.y_train), len(ds.y_test), ds.channels, ds.size) == (6, 2, 3, (8, 8))


def test_image_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no class sub-folders"):
        load_dataset(str(tmp_path / "empty"))
    _images(tmp_path / "d" / "a", 2)
    (tmp_path / "d" / "b").mkdir()
    with pytest.raises(DatasetError, match=r"class folder .*b holds no images"):
        load_dataset(str(tmp_path / "d"))
    (tmp_path / "d" / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"cannot read image .*broken.png"):
        load_dataset(str(tmp_path / "d"))


# ------------------------------------------------------------------ registry and spec
def test_registry_and_spec_errors(tmp_path: Path) -> None:
    assert {"fashion-mnist", "synthetic", "folder", "npz"} <= set(dataset_names())
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'; expected one of .*fashion-mnist"):
        DataSpec(name="cifar").load()
    with pytest.raises(DatasetError, match="dataset.path: dataset 'folder' needs a path"):
        DataSpec(name="folder").load()
    with pytest.raises(DatasetError, match="dataset.path: dataset 'synthetic' takes no path"):
        DataSpec(name="synthetic", path="/tmp").load()
    with pytest.raises(DatasetError, match="dataset.options: colour not understood by 'synthetic'; allowed: train"):
        DataSpec(name="synthetic", options={"colour": 1}).load()
    with pytest.raises(DatasetError, match="synthetic.classes: must be an integer >= 2"):
        DataSpec(name="synthetic", options={"classes": 1}).load()
    with pytest.raises(DatasetError, match="neither a dataset name"):
        load_dataset(str(tmp_path / "nothing-here"))


def test_resolve_data_spec_reads_a_name_an_npz_or_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_spec("synthetic", seed=3) == DataSpec(name="synthetic", seed=3)
    assert resolve_data_spec("fashion-mnist") == DataSpec(name="fashion-mnist", seed=0)
    # a .npz is taken by its name (a missing file is the loader's error, naming the file)
    npz = str(tmp_path / "later.npz")
    assert resolve_data_spec(npz, seed=1) == DataSpec(name="npz", path=npz, seed=1)
    (tmp_path / "imgs").mkdir()
    assert resolve_data_spec(str(tmp_path / "imgs")) == DataSpec(name="folder", path=str(tmp_path / "imgs"))
    # a registered name wins over a folder of that name in the working directory
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synthetic").mkdir()
    assert resolve_data_spec("synthetic") == DataSpec(name="synthetic")


def test_resolve_data_spec_rejects_anything_else(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-folder")
    with pytest.raises(
        DatasetError,
        match=r"^--dataset: '.*no-such-folder' is neither a dataset name "
        r"\(.*fashion-mnist.*\) nor an existing image folder or .npz file$",
    ):
        resolve_data_spec(missing)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="neither a dataset name"):
        resolve_data_spec(str(tmp_path / "file.txt"))


def test_synthetic_is_seeded() -> None:
    a, b = load_dataset("synthetic", seed=3), load_dataset("synthetic", seed=3)
    c = load_dataset("synthetic", seed=4)
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)
