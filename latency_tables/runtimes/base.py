"""The contract of a measurement runtime (one subclass per file)."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

from latency_tables.errors import RuntimeUnavailableError

if TYPE_CHECKING:
    from latency_tables.profiles import DeviceProfile
    from latency_tables.signatures import Layer
    from searchspace.architecture import Architecture


class Runtime(ABC):
    """Turns a layer or a whole net into a zero-argument callable that runs one inference.

    The profiler times those callables (:func:`latency_tables.timing.time_calls`);
    a runtime never times anything itself, so every runtime is measured the
    same way. Adding one (TensorRT, OpenVINO, TFLite) = a subclass in a new
    file + one line in ``runtimes/__init__.py``.
    """

    name: ClassVar[str]
    providers: ClassVar[tuple[str, ...]] = ("cpu",)
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    #: the Python package the runtime runs on: a host without it cannot measure
    package: ClassVar[str | None] = None

    def unavailable(self, profile: DeviceProfile) -> str | None:
        """Why ``profile`` cannot be measured on this host, or None if it can."""
        if profile.provider not in self.providers:
            return f"runtime {self.name} has no provider {profile.provider!r} (has: {', '.join(self.providers)})"
        if profile.precision not in self.precisions:
            return f"runtime {self.name} has no precision {profile.precision!r} (has: {', '.join(self.precisions)})"
        if self.package is not None:
            try:
                importlib.import_module(self.package)
            except ImportError:
                return f"{self.package} is not installed"
        return self.provider_unavailable(profile)

    def provider_unavailable(self, profile: DeviceProfile) -> str | None:
        """Why this host (with :attr:`package` installed) lacks ``profile``'s provider, or None if it has it."""
        return None

    def require(self, profile: DeviceProfile) -> None:
        """Raise :class:`RuntimeUnavailableError` where ``profile`` cannot be measured on this host."""
        reason = self.unavailable(profile)
        if reason:
            raise RuntimeUnavailableError(f"cannot measure {profile.id} here: {reason}")

    @abstractmethod
    def prepare_layer(self, layer: Layer, profile: DeviceProfile) -> Callable[[], object]:
        """A callable that runs ``layer`` once on a fixed input."""

    def prepare_overhead(self, profile: DeviceProfile) -> Callable[[], object] | None:
        """A call that does (almost) nothing: its time is the fixed cost every isolated layer paid.

        The predictor counts that cost once per net instead of once per layer.
        None where the runtime has no meaningful fixed cost to measure.
        """
        return None

    @abstractmethod
    def prepare_network(self, arch: Architecture, profile: DeviceProfile) -> Callable[[], object]:
        """A callable that runs the whole net once on a fixed input."""

    def ahead(
        self, profile: DeviceProfile, layers: Sequence[Layer] = (), archs: Sequence[Architecture] = ()
    ) -> Prepared:
        """The layers and nets about to be measured, with whatever slow work preparing them needs done ahead
        (by a runtime that can do it in parallel, while nothing is being timed). By default nothing is done
        ahead: each is prepared when it is asked for."""
        return Prepared(self, profile)


class Prepared:
    """Runners for the layers and nets a :meth:`Runtime.ahead` call announced; anything not made ahead (or
    whose work ahead failed) is prepared when asked for, so it fails, if it does, as it would have alone."""

    def __init__(self, runtime: Runtime, profile: DeviceProfile) -> None:
        self.runtime, self.profile = runtime, profile

    def layer(self, layer: Layer) -> Callable[[], object]:
        return self.runtime.prepare_layer(layer, self.profile)

    def network(self, arch: Architecture) -> Callable[[], object]:
        return self.runtime.prepare_network(arch, self.profile)
