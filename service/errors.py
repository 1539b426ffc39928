"""The service's errors: each maps to one HTTP status and reads as rule, value, fix."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFoundError(ServiceError):
    status = 404
    title = "Not found"


class ConflictError(ServiceError):
    status = 409
    title = "Conflict"


class LimitError(ServiceError):
    """A job asks for more than this server allows (trials, seconds, workers, net size)."""

    status = 422
    title = "Over a limit"


class InvalidError(ServiceError):
    status = 422
    title = "Invalid input"


class AuthError(ServiceError):
    status = 401
    title = "Unauthorized"


class StartupError(ServiceError):
    """The server refuses to start with these settings (e.g. reachable from the network without API keys)."""


def shown(value: str, limit: int = 60) -> str:
    """``value`` for an error message: quoted, and cut short (a 5,000-character id is not worth echoing)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value):,} characters)"
