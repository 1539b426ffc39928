"""A seeded synthetic dataset whose labels a small net can learn (for tests and smoke runs).

Each class has a random smooth prototype image; a sample is its class's
prototype, randomly shifted by up to two pixels, plus Gaussian noise.
Everything follows from the seed.
"""

from __future__ import annotations

import numpy as np

from nas.datasets.base import Dataset
from nas.errors import DatasetError


def load(
    train: int = 1024,
    test: int = 256,
    classes: int = 10,
    size: int = 32,
    channels: int = 3,
    noise: float = 0.5,
    seed: int = 0,
) -> Dataset:
    for name, value, low in (
        ("train", train, 2),
        ("test", test, 0),
        ("classes", classes, 2),
        ("size", size, 4),
        ("channels", channels, 1),
    ):
        if not isinstance(value, int) or value < low:
            raise DatasetError(f"synthetic.{name}: must be an integer >= {low}, got {value!r}")
    if noise < 0:
        raise DatasetError(f"synthetic.noise: must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(classes, channels, 4, 4))
    # smooth prototypes: a 4x4 pattern upsampled to size x size
    reps = -(-size // 4)
    protos = np.kron(coarse, np.ones((1, 1, reps, reps)))[:, :, :size, :size]

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, classes, n)
        x = protos[y]
        shifts = rng.integers(-2, 3, size=(n, 2))
        x = np.stack([np.roll(img, tuple(s), axis=(1, 2)) for img, s in zip(x, shifts, strict=True)]) if n else x
        x = x + noise * rng.normal(size=x.shape)
        return x.astype(np.float32), y.astype(np.int64)

    x_train, y_train = make(train)
    x_test, y_test = make(test)
    return Dataset(
        "synthetic",
        x_train,
        y_train,
        x_test,
        y_test,
        classes=tuple(f"class{i}" for i in range(classes)),
        description=f"synthetic: {classes} classes, {size}x{size}x{channels}, noise {noise}, seed {seed}",
    )
