"""hwnas.searchspace: what a net can be.

Spec work (loading spaces, sampling, encoding, counting cost) never imports
torch; ``build_model`` and ``export_onnx`` load it on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from searchspace.architecture import Architecture, Block, Head
from searchspace.cost import Cost, count_cost
from searchspace.errors import (
    ArchitectureError,
    ExportError,
    SearchSpaceError,
    SpecError,
    UnknownNameError,
)
from searchspace.known import known_architecture, known_architectures
from searchspace.resolve import resolve_architecture
from searchspace.spec import SearchSpace, list_spaces, load_space

if TYPE_CHECKING:
    from searchspace.export import export_onnx, export_pytorch
    from searchspace.model import build_model

__all__ = [
    "Architecture",
    "ArchitectureError",
    "Block",
    "Cost",
    "ExportError",
    "Head",
    "SearchSpace",
    "SearchSpaceError",
    "SpecError",
    "UnknownNameError",
    "build_model",
    "count_cost",
    "export_onnx",
    "export_pytorch",
    "known_architecture",
    "known_architectures",
    "list_spaces",
    "load_space",
    "resolve_architecture",
]

_LAZY = {
    "build_model": "searchspace.model",
    "export_onnx": "searchspace.export",
    "export_pytorch": "searchspace.export",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'searchspace' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
