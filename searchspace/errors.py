"""Exception types of the searchspace package.

Every message states the rule, shows the offending value and, where it can,
names the field by its path (``stages[2].depth``) and the allowed values.
"""

from __future__ import annotations


class SearchSpaceError(ValueError):
    """Base class: anything wrong with a space, an architecture or an export."""


class SpecError(SearchSpaceError):
    """A search-space specification is invalid (unknown key, bad value, ...)."""


class ArchitectureError(SearchSpaceError):
    """An architecture is invalid or cannot be decoded."""


class UnknownNameError(SearchSpaceError, KeyError):
    """A named thing (space, known net, block type) does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ExportError(SearchSpaceError):
    """Exporting a model (ONNX, code) failed or produced a wrong result."""
