"""Fashion-MNIST (Xiao et al. 2017) from Debian's ``dataset-fashion-mnist`` package.

Read straight from the package's IDX files, nothing downloaded: 60,000
training and 10,000 test images, 28x28 grayscale, 10 classes of clothing.
``HWNAS_FASHION_MNIST_DIR`` or an explicit path points elsewhere.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from nas.datasets.base import Dataset
from nas.datasets.idx import find_idx, read_idx
from nas.errors import DatasetError

DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def default_dir() -> Path:
    return Path(os.environ.get("HWNAS_FASHION_MNIST_DIR", DEFAULT_DIR))


@lru_cache(maxsize=2)
def _load(folder: Path) -> Dataset:
    if not folder.is_dir():
        raise DatasetError(
            f"dataset 'fashion-mnist': folder {folder} does not exist; install Debian's package "
            "(apt-get install dataset-fashion-mnist; `make test` and `make serve` do) or give its path"
        )
    parts = {}
    for part, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(find_idx(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(find_idx(folder, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DatasetError(f"dataset 'fashion-mnist': {prefix} images must be N x H x W uint8, got {images.shape}")
        if labels.shape != (images.shape[0],):
            raise DatasetError(
                f"dataset 'fashion-mnist': {prefix} has {images.shape[0]} images but {labels.shape[0]} labels"
            )
        parts[part] = (images[:, None], labels.astype(np.int64))
    for arr in (*parts["train"], *parts["test"]):
        arr.setflags(write=False)
    return Dataset(
        "fashion-mnist", *parts["train"], *parts["test"], classes=CLASSES, description=f"Fashion-MNIST from {folder}"
    )


def load(path: str | Path | None = None) -> Dataset:
    """The dataset (cached per folder: repeated loads share one copy of the arrays)."""
    return _load(Path(path) if path is not None else default_dir())
