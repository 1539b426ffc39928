"""Datasets as arrays, and the view a net sees of them.

A :class:`Dataset` holds a source's images as they are stored (uint8 or
float32, N x C x H x W) with integer labels, a train part and a test part.
A :class:`DataView` presents it to one kind of net: resized or padded to the
net's resolution, channels repeated (or averaged) to its input channels,
normalised with the train part's statistics, and split into train and
held-out validation indices that depend only on the seed. Pixels are
converted batch by batch, so a view costs no memory beyond its source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from nas.errors import DatasetError

if TYPE_CHECKING:
    import torch

Split = Literal["train", "val", "test"]
Fit = Literal["auto", "resize", "pad"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one source. ``x_*`` are (N, C, H, W) uint8 or float32 arrays; ``y_*`` int64."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    description: str = ""

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.ndim != 4:
                raise DatasetError(f"dataset {self.name!r}: x_{part} must be N x C x H x W, got shape {x.shape}")
            if x.dtype not in (np.uint8, np.float32):
                raise DatasetError(f"dataset {self.name!r}: x_{part} must be uint8 or float32, got {x.dtype}")
            if y.shape != (x.shape[0],):
                raise DatasetError(
                    f"dataset {self.name!r}: y_{part} must hold one label per image ({x.shape[0]}), got shape {y.shape}"
                )
            if len(y) and (y.min() < 0 or y.max() >= len(self.classes)):
                raise DatasetError(
                    f"dataset {self.name!r}: y_{part} labels must lie in 0..{len(self.classes) - 1}, "
                    f"got {int(y.min())}..{int(y.max())}"
                )
        if self.x_test.shape[1:] != self.x_train.shape[1:]:
            raise DatasetError(
                f"dataset {self.name!r}: train and test images differ in shape: "
                f"{self.x_train.shape[1:]} vs {self.x_test.shape[1:]}"
            )
        if len(self.y_train) < 2:
            raise DatasetError(f"dataset {self.name!r}: needs at least 2 training images, got {len(self.y_train)}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    def summary(self) -> dict[str, object]:
        return {
            "name": self.name,
            "train": len(self.y_train),
            "test": len(self.y_test),
            "classes": self.num_classes,
            "channels": self.channels,
            "size": list(self.size),
            "dtype": str(self.x_train.dtype),
            "description": self.description,
        }

    def view(
        self,
        resolution: int,
        channels: int,
        *,
        val_fraction: float = 0.1,
        seed: int = 0,
        limit: int | None = None,
        fit: Fit = "auto",
    ) -> DataView:
        """This dataset as a net with ``resolution`` x ``resolution`` x ``channels`` inputs sees it."""
        return DataView(self, resolution, channels, val_fraction=val_fraction, seed=seed, limit=limit, fit=fit)


def _stratified_split(
    y: np.ndarray, val_fraction: float, limit: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per class: shuffle, take ``val_fraction`` for validation; then cap the train part at ``limit``."""
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = int(round(len(idx) * val_fraction))
        if val_fraction > 0 and len(idx) > 1:
            n_val = min(max(n_val, 1), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    train_idx = rng.permutation(np.concatenate(train))
    val_idx = np.sort(np.concatenate(val))
    if limit is not None:
        train_idx = train_idx[:limit]
    return train_idx, val_idx


@dataclass(eq=False)
class DataView:
    """A dataset presented at one resolution and channel count, with deterministic splits."""

    dataset: Dataset
    resolution: int
    channels: int
    val_fraction: float = 0.1
    seed: int = 0
    limit: int | None = None
    fit: Fit = "auto"
    indices: dict[str, np.ndarray] = field(init=False)
    mean: np.ndarray = field(init=False)
    std: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if not 8 <= self.resolution <= 4096:
            raise DatasetError(f"resolution: must be between 8 and 4096, got {self.resolution}")
        if self.channels < 1:
            raise DatasetError(f"channels: must be >= 1, got {self.channels}")
        src = self.dataset.channels
        if src != self.channels and src != 1 and self.channels != 1:
            raise DatasetError(
                f"channels: dataset {self.dataset.name!r} has {src}-channel images; a net with "
                f"{self.channels} input channels cannot take them (only 1 -> C repeat and C -> 1 averaging exist)"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise DatasetError(f"val_fraction: must be in [0, 1), got {self.val_fraction}")
        if self.limit is not None and self.limit < 1:
            raise DatasetError(f"limit: must be >= 1 training images, got {self.limit}")
        if self.fit not in ("auto", "resize", "pad"):
            raise DatasetError(f"fit: expected one of auto, resize, pad; got {self.fit!r}")
        if self.fit == "pad" and max(self.dataset.size) > self.resolution:
            raise DatasetError(
                f"fit: cannot pad {self.dataset.size[0]}x{self.dataset.size[1]} images to "
                f"{self.resolution}x{self.resolution} (they are larger); use fit 'resize'"
            )
        rng = np.random.default_rng(self.seed)
        train, val = _stratified_split(self.dataset.y_train, self.val_fraction, self.limit, rng)
        self.indices = {"train": train, "val": val, "test": np.arange(len(self.dataset.y_test))}
        # statistics of the training images, per source channel, in [0, 1] units for uint8
        sample = self.dataset.x_train[train[: min(len(train), 5000)]].astype(np.float64)
        if self.dataset.x_train.dtype == np.uint8:
            sample /= 255.0
        mean = sample.mean(axis=(0, 2, 3))
        std = sample.std(axis=(0, 2, 3))
        self.mean = mean.astype(np.float32)
        self.std = np.where(std > 1e-6, std, 1.0).astype(np.float32)

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def __len__(self) -> int:
        return len(self.indices["train"])

    def size(self, split: Split) -> int:
        return len(self._split(split))

    def _split(self, split: str) -> np.ndarray:
        try:
            return self.indices[split]
        except KeyError:
            raise DatasetError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}") from None

    @property
    def mode(self) -> Literal["resize", "pad"]:
        """How images reach the net's size: 'pad' (centered, zero border) or 'resize' (bilinear)."""
        if self.fit != "auto":
            return self.fit
        h, w = self.dataset.size
        if (h, w) == (self.resolution, self.resolution):
            return "pad"
        grow = self.resolution - max(h, w)
        return "pad" if h == w and 0 <= grow <= max(h, w) // 4 else "resize"

    def present(self, x: np.ndarray) -> torch.Tensor:
        """Source images (N, C, H, W) -> normalised float32 tensor (N, channels, resolution, resolution)."""
        import torch
        import torch.nn.functional as F  # noqa: N812

        t = torch.from_numpy(np.ascontiguousarray(x)).float()
        if x.dtype == np.uint8:
            t = t / 255.0
        t = (t - torch.from_numpy(self.mean)[None, :, None, None]) / torch.from_numpy(self.std)[None, :, None, None]
        h, w = t.shape[2], t.shape[3]
        r = self.resolution
        if (h, w) != (r, r):
            if self.mode == "pad":
                # pad with the normalised value of a black pixel, so the border looks like background
                top, left = (r - h) // 2, (r - w) // 2
                black = -torch.from_numpy(self.mean) / torch.from_numpy(self.std)
                out = black[None, :, None, None].expand(t.shape[0], t.shape[1], r, r).clone()
                out[:, :, top : top + h, left : left + w] = t
                t = out
            else:
                t = F.interpolate(t, size=(r, r), mode="bilinear", align_corners=False, antialias=max(h, w) > r)
        src = t.shape[1]
        if src != self.channels:
            t = t.expand(-1, self.channels, -1, -1).contiguous() if src == 1 else t.mean(dim=1, keepdim=True)
        return t

    def batch(self, split: Split, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels at positions ``index`` of ``split``."""
        import torch

        rows = self._split(split)[index]
        x = self.dataset.x_test if split == "test" else self.dataset.x_train
        y = self.dataset.y_test if split == "test" else self.dataset.y_train
        return self.present(x[rows]), torch.from_numpy(y[rows].astype(np.int64))

    def sample(self, n: int, seed: int = 0, split: Split = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` images of ``split`` drawn without replacement (with, if the split is smaller), by ``seed``."""
        size = self.size(split)
        if size == 0:
            raise DatasetError(f"split {split!r} of dataset {self.dataset.name!r} is empty")
        rng = np.random.default_rng(seed)
        pick = rng.choice(size, n, replace=n > size)
        return self.batch(split, pick)

    def batches(
        self, split: Split, batch_size: int, *, shuffle: bool = False, seed: int = 0, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over ``split`` in batches; the order depends only on ``seed`` when shuffled."""
        if batch_size < 1:
            raise DatasetError(f"batch_size: must be >= 1, got {batch_size}")
        size = self.size(split)
        order = np.random.default_rng(seed).permutation(size) if shuffle else np.arange(size)
        stop = size - size % batch_size if drop_last else size
        for start in range(0, stop, batch_size):
            yield self.batch(split, order[start : start + batch_size])
