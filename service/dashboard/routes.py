"""Dashboard pages (/, /jobs/{id}, /architectures/{id}, /compare, /devices) and their static files.

Each page is one HTML shell naming its page module; the JS fetches /api/v1 with
the browser's stored API key. Nothing here reads the database.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse

from service.dashboard import vendor

STATIC = Path(__file__).parent / "static"
LONG_CACHE = {"Cache-Control": "public, max-age=31536000, immutable"}
SHORT_CACHE = {"Cache-Control": "no-cache"}
STATIC_FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
# Content-Security-Policy: the pages load only what this server serves (no CDN, no network at run time).
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'"
)

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def plotly_js() -> Path:
    """plotly.min.js as shipped inside the ``plotly`` Python package (every trace type)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js: not found at {path}; reinstall the `plotly` package (>=6)")
    return path


@lru_cache(maxsize=1)
def bundles() -> dict[str, tuple[str, Path]]:
    """Role ("2d", "basic", "3d") -> (URL, file) of the plotly.js bundle a page loads.

    The partial bundles ``make`` vendored (service/dashboard/vendor.py) when they are
    there and intact, else the Python package's full bundle for every role. URLs carry
    the version, so a browser may keep them for a year and still sees an upgrade.
    """
    manifest = vendor.read_manifest()
    if manifest is not None:
        version = manifest["version"]
        return {
            role: (f"/static/bundles/{version}/{b['file']}", vendor.VENDOR / b["file"])
            for role, b in manifest["bundles"].items()
        }
    from plotly.offline import get_plotlyjs_version

    full = (f"/static/bundles/{get_plotlyjs_version()}/plotly.min.js", plotly_js())
    return dict.fromkeys(vendor.BUNDLES, full)


# the job page draws scattergl and parcoords; the others only scatter and bar; the jobs list draws nothing
PAGE_BUNDLE: dict[str, str | None] = {
    "job": "2d",
    "jobs": None,
    "architecture": "basic",
    "compare": "basic",
    "devices": "basic",
}


def shell(page: str, title: str) -> HTMLResponse:
    role = PAGE_BUNDLE[page]
    plotly_tag = f'<script src="{html.escape(bundles()[role][0])}" id="plotly-js" async></script>\n' if role else ""
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · hwnas</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/dashboard.css">
{plotly_tag}<script type="module" src="/static/dashboard.js"></script>
</head><body data-page="{html.escape(page)}" data-plotly-3d="{html.escape(bundles()["3d"][0])}">
<header class="top"><nav aria-label="main"><a href="/" class="brand">hwnas</a>
<a href="/">Jobs</a><a href="/devices">Devices</a><a href="/compare">Compare</a><a href="/docs">API</a></nav>
<span id="auth-status" aria-live="polite"></span></header>
<div id="key-form-area"></div>
<main id="main"><h1 id="page-title">{html.escape(title)}</h1><p class="loading">Loading…</p>
<noscript>The dashboard needs JavaScript; the REST API is described at <a href="/docs">/docs</a>.</noscript>
</main></body></html>"""
    return HTMLResponse(body, headers={"Content-Security-Policy": CSP, **SHORT_CACHE})


@router.get("/", response_class=HTMLResponse)
def jobs_page() -> HTMLResponse:
    return shell("jobs", "Jobs")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str) -> HTMLResponse:
    return shell("job", "Job")


@router.get("/architectures/{arch_id}", response_class=HTMLResponse)
def architecture_page(arch_id: str) -> HTMLResponse:
    return shell("architecture", "Architecture")


@router.get("/compare", response_class=HTMLResponse)
def compare_page() -> HTMLResponse:
    return shell("compare", "Compare")


@router.get("/devices", response_class=HTMLResponse)
def devices_page() -> HTMLResponse:
    return shell("devices", "Devices")


@lru_cache(maxsize=4)
def gzipped(path: Path) -> bytes:
    """A bundle compressed once, not per request (compressing plotly.js is seconds of a core)."""
    import gzip

    return gzip.compress(path.read_bytes(), compresslevel=9, mtime=0)


@router.get("/static/bundles/{version}/{name}", response_model=None)
def bundle_file(version: str, name: str, request: Request) -> Response:
    url = f"/static/bundles/{version}/{name}"
    path = next((p for u, p in bundles().values() if u == url), None)
    if path is None:
        raise HTTPException(404, f"{url}: no such bundle")
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            gzipped(path),
            media_type="text/javascript",
            headers={**LONG_CACHE, "Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    return FileResponse(path, media_type="text/javascript", headers=LONG_CACHE)


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    if name not in STATIC_FILES:
        raise HTTPException(404, f"/static/{name}: no such file")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers=SHORT_CACHE)
