"""Registry of measurement runtimes."""

from __future__ import annotations

from latency_tables.errors import LatencyTableError
from latency_tables.runtimes.base import Runtime
from latency_tables.runtimes.ort_runtime import OnnxRuntime
from latency_tables.runtimes.torch_runtime import TorchRuntime

_REGISTRY: dict[str, Runtime] = {}


def register(runtime: Runtime) -> Runtime:
    if runtime.name in _REGISTRY:
        raise ValueError(f"runtime '{runtime.name}' is registered twice")
    _REGISTRY[runtime.name] = runtime
    return runtime


def get_runtime(name: str) -> Runtime:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LatencyTableError(f"unknown runtime {name!r}; known runtimes: {', '.join(runtime_names())}") from None


def runtime_names() -> list[str]:
    return sorted(_REGISTRY)


for _runtime in (OnnxRuntime(), TorchRuntime()):
    register(_runtime)

__all__ = ["Runtime", "get_runtime", "register", "runtime_names"]
