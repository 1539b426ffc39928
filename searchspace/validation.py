"""Turn pydantic's ValidationError into one readable message with field paths."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "tagged-union")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def describe_validation_error(exc: ValidationError, root: str = "") -> str:
    """One line per problem: ``path: message`` (paths like ``stages[2].depth``)."""
    lines = []
    for err in exc.errors():
        path = _path(tuple(err.get("loc", ())))
        msg = str(err.get("msg", ""))
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key (not allowed here; check the spelling)"
        elif err.get("type") == "missing":
            msg = "required field is missing"
        elif err.get("type") == "literal_error":
            got = err.get("input")
            msg = f"{msg}, got {got!r}"
        for piece in msg.split("\n"):
            sub = path
            head, sep, rest = piece.partition(": ")
            if sep and head.isidentifier():
                sub = f"{path}.{head}" if path else head
                piece = rest
            prefix = ".".join(p for p in (root, sub) if p)
            lines.append(f"{prefix}: {piece}" if prefix else piece)
    return "\n".join(lines)


def validate_model(model: type[M], data: Any, error: type[Exception], context: str, root: str = "") -> M:
    """``model.model_validate(data)``, raising ``error`` with readable field paths under ``root``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{context}:\n" + describe_validation_error(exc, root)) from None
