"""Small nets and data for the nas tests: every block type, every activation, fast on one core."""

from __future__ import annotations

import pytest
import torch

import searchspace as ss
from nas.datasets import Dataset, load_dataset
from tests.specs import ALL_BLOCKS


@pytest.fixture(scope="session")
def all_blocks() -> ss.SearchSpace:
    return ss.load_space(ALL_BLOCKS)


@pytest.fixture(scope="session")
def synthetic() -> Dataset:
    return load_dataset("synthetic", train=512, test=128, classes=5, size=16, channels=3, seed=1)


@pytest.fixture(scope="session")
def batch(synthetic: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return synthetic.view(16, 3).sample(16, seed=0)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
