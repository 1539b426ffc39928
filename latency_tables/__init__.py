"""hwnas.latency_tables: what a net costs on a device, measured, never guessed.

Everything is imported lazily: ``python -m latency_tables.agent`` runs on a
device that has onnxruntime and numpy and nothing else of hwnas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latency_tables.api import load_predictor
    from latency_tables.errors import LatencyTableError, MissingEntryError, RuntimeUnavailableError
    from latency_tables.predictor import LatencyPredictor, Prediction
    from latency_tables.profiles import DeviceProfile, HostInfo
    from latency_tables.signatures import arch_keys, arch_layers, space_layers
    from latency_tables.table import LatencyTable, find_table, list_tables, user_table_dir

_LAZY = {
    "LatencyTableError": "latency_tables.errors",
    "MissingEntryError": "latency_tables.errors",
    "RuntimeUnavailableError": "latency_tables.errors",
    "LatencyPredictor": "latency_tables.predictor",
    "Prediction": "latency_tables.predictor",
    "DeviceProfile": "latency_tables.profiles",
    "HostInfo": "latency_tables.profiles",
    "arch_keys": "latency_tables.signatures",
    "arch_layers": "latency_tables.signatures",
    "space_layers": "latency_tables.signatures",
    "LatencyTable": "latency_tables.table",
    "find_table": "latency_tables.table",
    "list_tables": "latency_tables.table",
    "user_table_dir": "latency_tables.table",
    "load_predictor": "latency_tables.api",
}

__all__ = [
    "DeviceProfile",
    "HostInfo",
    "LatencyPredictor",
    "LatencyTable",
    "LatencyTableError",
    "MissingEntryError",
    "Prediction",
    "RuntimeUnavailableError",
    "arch_keys",
    "arch_layers",
    "find_table",
    "list_tables",
    "load_predictor",
    "space_layers",
    "user_table_dir",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'latency_tables' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
