"""The dataset registry: where training proxies and data-dependent zero-cost proxies get images.

Built in: ``fashion-mnist`` (Debian's package, read from its IDX files),
``synthetic`` (seeded, learnable; for tests), ``folder`` (class sub-folders
of images) and ``npz`` (arrays ``x`` and ``y``). A :class:`DataSpec` names
one with its options; it is what a search config carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nas.datasets.base import SPLITS, Dataset, DataView, Split
from nas.errors import DatasetError
from searchspace.registry import Registry

__all__ = [
    "SPLITS",
    "DataSpec",
    "DataView",
    "Dataset",
    "DatasetSource",
    "Split",
    "dataset_names",
    "get_dataset",
    "load_dataset",
    "register_dataset",
    "resolve_data_spec",
]


@dataclass(frozen=True)
class DatasetSource:
    """How to load one kind of dataset: ``load(path, **options)``.

    ``path`` says whether a path is ``required``, ``optional`` (a default
    location exists) or not taken (``none``).
    """

    name: str
    description: str
    load: Callable[..., Dataset]
    path: Literal["required", "optional", "none"] = "none"
    options: tuple[str, ...] = ()


DATASETS: Registry[DatasetSource] = Registry("dataset", DatasetError)


def register_dataset(source: DatasetSource) -> DatasetSource:
    return DATASETS.register(source.name, source)


def get_dataset(name: str) -> DatasetSource:
    """A registered dataset source by name (:func:`load_dataset` loads one)."""
    return DATASETS.get(name)


def dataset_names() -> list[str]:
    return DATASETS.names()


def _fashion(path: str | None = None) -> Dataset:
    from nas.datasets import fashion_mnist

    return fashion_mnist.load(path)


def _synthetic(path: str | None = None, **options: Any) -> Dataset:
    from nas.datasets import synthetic

    return synthetic.load(**options)


def _folder(path: str | None = None, **options: Any) -> Dataset:
    from nas.datasets.arrays import load_folder

    return load_folder(str(path), **options)


def _npz(path: str | None = None, **options: Any) -> Dataset:
    from nas.datasets.arrays import load_npz

    return load_npz(str(path), **options)


register_dataset(
    DatasetSource(
        "fashion-mnist",
        "Fashion-MNIST, 60k/10k 28x28 grayscale, 10 classes (Debian package)",
        _fashion,
        path="optional",
    )
)
register_dataset(
    DatasetSource(
        "synthetic",
        "seeded random class prototypes plus noise (tests, smoke runs)",
        _synthetic,
        options=("train", "test", "classes", "size", "channels", "noise", "seed"),
    )
)
register_dataset(
    DatasetSource(
        "folder",
        "a folder of class sub-folders of images (or train/ and test/ of them)",
        _folder,
        path="required",
        options=("size", "test_fraction", "seed"),
    )
)
register_dataset(
    DatasetSource(
        "npz",
        "a .npz file with arrays x, y (and optionally x_test, y_test, classes)",
        _npz,
        path="required",
        options=("test_fraction", "seed"),
    )
)


class DataSpec(BaseModel):
    """Which dataset, and how a net sees it (the ``dataset`` section of a search config)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "fashion-mnist"
    path: str | None = None
    options: dict[str, int | float | str] = Field(default_factory=dict)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    limit: int | None = Field(default=None, ge=1, description="use at most this many training images")
    fit: Literal["auto", "resize", "pad"] = "auto"
    seed: int = 0

    def source(self) -> DatasetSource:
        return get_dataset(self.name)

    def load(self) -> Dataset:
        src = self.source()
        if src.path == "required" and not self.path:
            raise DatasetError(f"dataset.path: dataset {self.name!r} needs a path ({src.description})")
        if src.path == "none" and self.path:
            raise DatasetError(f"dataset.path: dataset {self.name!r} takes no path")
        unknown = sorted(set(self.options) - set(src.options))
        if unknown:
            allowed = ", ".join(src.options) or "none"
            raise DatasetError(
                f"dataset.options: {', '.join(unknown)} not understood by {self.name!r}; allowed: {allowed}"
            )
        try:
            return src.load(self.path, **self.options)
        except TypeError as exc:  # an option of the wrong type
            raise DatasetError(f"dataset.options: {exc}") from None

    def view(self, resolution: int, channels: int) -> DataView:
        return self.load().view(
            resolution, channels, val_fraction=self.val_fraction, seed=self.seed, limit=self.limit, fit=self.fit
        )


def resolve_data_spec(ref: str, seed: int = 0) -> DataSpec:
    """The DataSpec a ``--dataset`` argument names: a registered name, a ``.npz`` file or an image folder.

    The one reading of such a reference, for the CLI, the API and the worker alike.
    """
    if ref in DATASETS:
        return DataSpec(name=ref, seed=seed)
    if ref.endswith(".npz"):
        return DataSpec(name="npz", path=ref, seed=seed)
    if Path(ref).is_dir():
        return DataSpec(name="folder", path=ref, seed=seed)
    raise DatasetError(
        f"--dataset: {ref!r} is neither a dataset name ({', '.join(DATASETS.names())}) "
        "nor an existing image folder or .npz file"
    )


def load_dataset(name: str | DataSpec, **options: Any) -> Dataset:
    """A dataset by registered name, by path (a folder of class folders, or a .npz file), or by spec."""
    if isinstance(name, DataSpec):
        return name.load()
    if name in DATASETS:
        return DataSpec(name=name, options=options).load()
    p = Path(name)
    if p.suffix == ".npz":
        return DataSpec(name="npz", path=name, options=options).load()
    if p.is_dir():
        return DataSpec(name="folder", path=name, options=options).load()
    raise DatasetError(
        f"dataset: {name!r} is neither a dataset name ({', '.join(dataset_names())}) "
        "nor an existing folder or .npz file"
    )
