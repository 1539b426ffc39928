"""User data: a ``.npz`` file of arrays, or a folder of class sub-folders of images."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from nas.datasets.base import Dataset
from nas.errors import DatasetError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    """N x H x W, N x H x W x C (C in 1, 3, 4) or N x C x H x W -> N x C x H x W, uint8 or float32."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DatasetError(
            f"{where}: expected images as N x H x W, N x H x W x C or N x C x H x W; got shape {x.shape}"
        )
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DatasetError(f"{where}: expected numeric pixels, got dtype {x.dtype}")
    out = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(out).all():
        raise DatasetError(f"{where}: pixels must be finite (found NaN or inf)")
    return out


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    if y.ndim != 1:
        raise DatasetError(f"{where}: expected a 1-d array of integer labels, got shape {y.shape}")
    whole = np.issubdtype(y.dtype, np.floating) and bool(np.all(np.mod(y, 1) == 0))
    if not np.issubdtype(y.dtype, np.integer) and not whole:
        raise DatasetError(f"{where}: expected integer labels, got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise DatasetError(f"{where}: labels must be >= 0, got {int(y.min())}")
    return y.astype(np.int64)


def _holdout(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * fraction))
    test, train = order[:n_test], np.sort(order[n_test:])
    return x[train], y[train], x[np.sort(test)], y[np.sort(test)]


def load_npz(path: str | Path, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """Arrays ``x`` and ``y`` (and optionally ``x_test``, ``y_test``; else ``test_fraction`` is held out)."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"path: {p} is not a file (expected a .npz with arrays x and y)")
    try:
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # numpy raises several types for a bad archive
        raise DatasetError(f"path: {p} is not a readable .npz file ({exc})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DatasetError(f"{p}: missing array(s) {', '.join(missing)}; found {', '.join(sorted(arrays)) or 'none'}")
    x, y = _to_nchw(arrays["x"], f"{p}: x"), _labels(arrays["y"], f"{p}: y")
    if len(x) != len(y):
        raise DatasetError(f"{p}: x holds {len(x)} images but y holds {len(y)} labels")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{p}: give both x_test and y_test, or neither")
    if "x_test" in arrays:
        xt, yt = _to_nchw(arrays["x_test"], f"{p}: x_test"), _labels(arrays["y_test"], f"{p}: y_test")
        if len(xt) != len(yt):
            raise DatasetError(f"{p}: x_test holds {len(xt)} images but y_test holds {len(yt)} labels")
        if xt.dtype != x.dtype:
            xt = xt.astype(np.float32) if x.dtype == np.float32 else xt
            x = x.astype(np.float32)
    else:
        if not 0 < test_fraction < 1:
            raise DatasetError(f"test_fraction: must be in (0, 1), got {test_fraction}")
        x, y, xt, yt = _holdout(x, y, test_fraction, seed)
    n_classes = int(max(y.max(initial=0), yt.max(initial=0))) + 1
    names = arrays.get("classes")
    classes = tuple(str(c) for c in names) if names is not None else tuple(str(i) for i in range(n_classes))
    if len(classes) < n_classes:
        raise DatasetError(f"{p}: classes names {len(classes)} classes but labels go up to {n_classes - 1}")
    return Dataset(p.stem, x, y, xt, yt, classes=classes, description=f"arrays from {p}")


def load_folder(path: str | Path, size: int | None = None, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """``path/<class>/<image>``, or ``path/train/<class>/...`` with ``path/test/<class>/...``.

    Images are read with Pillow, converted to grayscale when every image is
    grayscale (else RGB), and resized to ``size`` (default: the most common
    image size, which must be square or is made so by resizing).
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"path: {root} is not a folder (expected class sub-folders of images)")
    split_dirs = {"train": root / "train", "test": root / "test"}
    has_split = all(d.is_dir() for d in split_dirs.values())
    parts = split_dirs if has_split else {"all": root}
    class_names = sorted({d.name for base in parts.values() for d in base.iterdir() if d.is_dir()})
    if not class_names:
        raise DatasetError(f"path: {root} has no class sub-folders (expected {root}/<class>/<image files>)")
    files: dict[str, list[tuple[Path, int]]] = {}
    for part, base in parts.items():
        found = []
        for ci, cname in enumerate(class_names):
            folder = base / cname
            images = (
                sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
            )
            if not images and part != "test":
                raise DatasetError(f"path: class folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found += [(f, ci) for f in images]
        files[part] = found
    opened = {}
    for found in files.values():
        for f, _ in found:
            try:
                with Image.open(f) as im:
                    im.load()
                    opened[f] = im.copy()
            except (UnidentifiedImageError, OSError) as exc:
                raise DatasetError(f"path: cannot read image {f} ({exc})") from None
    gray = all(im.mode in ("L", "1", "I", "I;16", "F") for im in opened.values())
    if size is None:
        (w, h), _ = Counter(im.size for im in opened.values()).most_common(1)[0]
        size = max(w, h)
    if size < 4:
        raise DatasetError(f"size: must be >= 4 pixels, got {size}")

    def stack(found: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
        arrs = []
        for f, _ in found:
            im = opened[f].convert("L" if gray else "RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
            arrs.append(a[None] if gray else a.transpose(2, 0, 1))
        x = np.stack(arrs) if arrs else np.zeros((0, 1 if gray else 3, size, size), np.uint8)
        return x, np.asarray([c for _, c in found], dtype=np.int64)

    if has_split:
        x, y = stack(files["train"])
        xt, yt = stack(files["test"])
    else:
        if not 0 < test_fraction < 1:
            raise DatasetError(f"test_fraction: must be in (0, 1), got {test_fraction}")
        x, y, xt, yt = _holdout(*stack(files["all"]), test_fraction, seed)
    return Dataset(root.name, x, y, xt, yt, classes=tuple(class_names), description=f"image folder {root}")
