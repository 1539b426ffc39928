"""Opaque cursors: what a page hands out as next_cursor, and the only thing the next request may send back."""

from __future__ import annotations

import base64
import json
from typing import Any

from service.errors import InvalidError


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> list[Any]:
    """The parts of a cursor this server gave out, each of its type; anything else is the client's error."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError, RecursionError):
        parts = None
    if (
        not isinstance(parts, list)
        or len(parts) != len(types)
        or not all(type(p) is t for p, t in zip(parts, types, strict=True))
    ):
        raise InvalidError(
            "cursor: not a cursor this server gave out (use next_cursor from the previous page)", field="cursor"
        )
    return parts
