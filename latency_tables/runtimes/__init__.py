"""Registry of measurement runtimes: :func:`register_runtime`, :func:`get_runtime`, :func:`runtime_names`."""

from __future__ import annotations

from latency_tables.errors import LatencyTableError
from latency_tables.runtimes.base import Runtime
from latency_tables.runtimes.ort_runtime import OnnxRuntime
from latency_tables.runtimes.torch_runtime import TorchRuntime
from searchspace.registry import Registry

_REGISTRY: Registry[Runtime] = Registry("runtime", LatencyTableError)


def register_runtime(runtime: Runtime) -> Runtime:
    return _REGISTRY.register(runtime.name, runtime)


def get_runtime(name: str) -> Runtime:
    return _REGISTRY.get(name)


def runtime_names() -> list[str]:
    return _REGISTRY.names()


for _runtime in (OnnxRuntime(), TorchRuntime()):
    register_runtime(_runtime)

__all__ = ["Runtime", "get_runtime", "register_runtime", "runtime_names"]
