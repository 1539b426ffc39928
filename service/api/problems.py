"""Every error as RFC 9457 problem details (application/problem+json); never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import ServiceError

log = logging.getLogger("hwnas.api")
MEDIA_TYPE = "application/problem+json"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          409: "Conflict", 413: "Content too large", 415: "Unsupported media type", 422: "Invalid input",
          500: "Internal error"}


def problem(status: int, detail: str, request: Request, errors: list[dict[str, str]] | None = None,
            title: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status,
                            "detail": detail, "instance": request.url.path}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or (str(loc[0]) if loc else "")


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        from service.jobs import field_errors

        errors = field_errors(exc.detail) if "\n" in exc.detail else (
            [{"field": exc.field, "message": exc.detail}] if exc.field else None)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, exc.detail.replace("\n", "; ").replace(":; ", ": "), request, errors,
                       exc.title, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return problem(400, f"body: not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})",
                               request)
            errors.append({"field": _loc(tuple(err.get("loc", ()))), "message": str(err.get("msg", ""))})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, detail, request, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 413:
            detail = f"body: larger than this server accepts ({request.app.state.settings.max_body_bytes:,} bytes)"
        elif exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path} (see /docs)"
        return problem(exc.status_code, detail, request, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, f"internal error ({type(exc).__name__}); the server log has the details", request)
