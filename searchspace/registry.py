"""A name -> object registry: the one shape of every extension point (block types, runtimes, proxies, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries; an unknown name is an error that lists the known ones.

    ``what`` names the kind of entry in messages ("block type", "runtime");
    ``error`` is the exception type the owning package raises for it.
    """

    def __init__(self, what: str, error: Callable[[str], Exception]) -> None:
        self.what = what
        self.error = error
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.what} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> T:
        """Remove an entry (plugins and tests that register temporary ones)."""
        entry = self.get(name)
        del self._entries[name]
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise self.error(f"unknown {self.what} {name!r}; expected one of {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[T]:
        """Every entry, in registration order (where order carries meaning, e.g. calibration kinds)."""
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries
