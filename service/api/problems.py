"""Every error as RFC 9457 problem details (application/problem+json); never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import ServiceError

log = logging.getLogger("hwnas.api")
MEDIA_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal error",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route's error statuses: each one problem details."""
    return {
        status: {
            "description": TITLES[status],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def document(app: FastAPI) -> None:
    """The app's OpenAPI document says what it sends: the Problem schema, and problem+json (not FastAPI's
    HTTPValidationError) for every 422."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        from service.schemas import Problem

        schema = generate()
        for operation in (op for ops in schema.get("paths", {}).values() for op in ops.values()):
            responses = operation.get("responses", {})
            if "422" in responses and MEDIA_TYPE not in responses["422"].get("content", {}):
                responses["422"] = errors(422)[422]
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema()
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        return schema

    # mypy: FastAPI documents replacing app.openapi with a custom generator
    app.openapi = openapi  # type: ignore[method-assign]


def _matching(routes: Any, path: str) -> list[tuple[str, set[str]]]:
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's included routers
        if inner is not None:
            out += _matching(inner.routes, path)
        elif getattr(route, "path_regex", None) is not None and route.path_regex.match(path) and route.methods:
            out.append((route.path, set(route.methods)))
    return out


def allowed_methods(routes: Any, path: str) -> set[str]:
    """The methods of the resource at ``path``: every route of its most literal template (Starlette's 405 names
    only the first matching route's, so GET /jobs/{id} hid DELETE; /spaces/validate is not /spaces/{name})."""
    matching = _matching(routes, path)
    if not matching:
        return set()
    fewest = min(template.count("{") for template, _ in matching)
    return {m for template, methods in matching if template.count("{") == fewest for m in methods}


def problem(
    status: int,
    detail: str,
    request: Request,
    errors: list[dict[str, str]] | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or (str(loc[0]) if loc else "")


TABLE_UPLOAD = "/api/v1/devices/tables"


class BodyTooLarge(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodyLimit:
    """413 as problem details for a body over the limit: at once when Content-Length says so, else as soon as
    the bytes read pass it. (Starlette's own limiter answers in plain text, over any error handler.) Table
    uploads have their own, larger limit."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_table_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_table_bytes = max_table_bytes

    def limit(self, scope: Scope) -> tuple[int, str]:
        if scope.get("path") == TABLE_UPLOAD:
            return self.max_table_bytes, "HWNAS_MAX_TABLE_BYTES"
        return self.max_body_bytes, "HWNAS_MAX_BODY_BYTES"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, name = self.limit(scope)
        scope["hwnas.body_limit"] = (limit, name)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await too_large(Request(scope, receive))(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        await self.app(scope, limited, send)


def too_large(request: Request) -> JSONResponse:
    limit, name = request.scope.get("hwnas.body_limit", (0, "HWNAS_MAX_BODY_BYTES"))
    return problem(
        413,
        f"body: larger than this server accepts; expected at most {limit:,} bytes ({name})",
        request,
        [{"field": "body", "message": f"expected at most {limit:,} bytes ({name})"}],
    )


def install(app: FastAPI, max_body_bytes: int, max_table_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes, max_table_bytes=max_table_bytes)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        from service.configs import field_errors

        errors = (
            field_errors(exc.detail)
            if "\n" in exc.detail
            else ([{"field": exc.field, "message": exc.detail.removeprefix(f"{exc.field}: ")}] if exc.field else None)
        )
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(
            exc.status, exc.detail.replace("\n", "; ").replace(":; ", ": "), request, errors, exc.title, headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return problem(400, f"body: not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})", request)
            errors.append({"field": _loc(tuple(err.get("loc", ()))), "message": str(err.get("msg", ""))})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, detail, request, errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 413:
            return too_large(request)
        if exc.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's, for a Body()
            reason = "nested too deeply" if isinstance(exc.__cause__, RecursionError) else str(exc.__cause__)
            detail = f"body: not valid JSON ({reason}); expected a JSON object"
        elif exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path} (see /docs)"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            methods = allowed_methods(request.app.routes, request.url.path)
            if methods:
                headers = {**(headers or {}), "Allow": ", ".join(sorted(methods))}
            detail = (
                f"{request.method} is not allowed on {request.url.path}; expected one of "
                f"{', '.join(sorted(methods)) or 'none'} (see /docs)"
            )
        return problem(exc.status_code, detail, request, headers=headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, f"internal error ({type(exc).__name__}); the server log has the details", request)
