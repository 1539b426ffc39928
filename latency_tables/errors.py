"""Exception types of the latency_tables package (messages: rule, value, fix)."""

from __future__ import annotations


class LatencyTableError(ValueError):
    """Anything wrong with a profile, a table file or a measurement."""


class MissingEntryError(LatencyTableError, KeyError):
    """A layer signature is not in the table and cannot be measured here."""

    def __init__(self, keys: list[str], profile_id: str, command: str) -> None:
        self.keys = keys
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        super().__init__(
            f"the {profile_id} table has no entry for {len(keys)} layer(s): {shown}. "
            f"Measure them on that device with: {command} (or allow estimates)"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class RuntimeUnavailableError(LatencyTableError):
    """The profile's runtime or execution provider is not usable on this host."""
