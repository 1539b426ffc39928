"""Small nets and data for the nas tests: every block type, every activation, fast on one core."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import searchspace as ss
from nas.datasets import Dataset, load_dataset

# one stage per block type, so a sample of this space holds every type the proxies must survive
ALL_BLOCKS: dict[str, Any] = {
    "name": "all-blocks",
    "resolutions": [16],
    "classes": 5,
    "se_gate": "hsigmoid",
    "stem": {"channels": 8, "act": ["relu6", "hswish"]},
    "defaults": {"type": "ibn", "t": [1, 2], "k": [3], "se": [0, 0.25], "act": ["relu", "relu6", "hswish", "swish"]},
    "stages": [
        {"channels": 8, "depth": 1, "choices": {"type": "ibn", "t": 2, "groups": [1, 2]}},
        {"channels": 16, "stride": 2, "depth": 1, "choices": {"type": "fused"}},
        {"channels": 16, "depth": 1, "choices": {"type": "tucker"}},
        {"channels": 24, "stride": 2, "depth": 1, "choices": {"type": "dsconv"}},
        {"channels": 24, "depth": 1, "choices": {"type": "conv"}},
        {"channels": 32, "depth": 1, "choices": {"type": "skip"}},
        {"channels": 32, "depth": 1, "choices": {"type": "ibn"}},
    ],
    "head": {"conv": 48, "act": "hswish", "hidden": 32, "hidden_act": "relu"},
}


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
