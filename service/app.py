"""The web application: assembled here, nothing created at import time.

For now it serves the search-space catalogue (spaces, known nets, describing
an architecture) as JSON and a small page; the job API and the dashboard come
with the search issues.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from searchspace import (
    SearchSpaceError,
    UnknownNameError,
    count_cost,
    known_architectures,
    list_spaces,
    load_space,
    resolve_architecture,
)


def create_app() -> FastAPI:
    app = FastAPI(title="hwnas", version="0.1.0", description="Hardware-aware neural architecture search")

    @app.get("/api/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/spaces")
    def spaces() -> list[dict[str, Any]]:
        return [
            {"name": n, "description": s.description, "cardinality": str(s.cardinality()),
             "resolution": s.resolution, "classes": s.classes}
            for n in list_spaces()
            for s in [load_space(n)]
        ]

    @app.get("/api/v1/spaces/{name}")
    def space(name: str) -> dict[str, Any]:
        if name not in list_spaces():
            raise HTTPException(404, f"unknown search space {name!r}; built-in spaces: {', '.join(list_spaces())}")
        s = load_space(name)
        return {**s.to_dict(), "cardinality": str(s.cardinality())}

    @app.get("/api/v1/known")
    def known() -> list[dict[str, Any]]:
        return [
            {"name": n, "arch_id": a.arch_id, "string": a.encode(), **count_cost(a).as_dict()}
            for n, a in known_architectures().items()
        ]

    @app.get("/api/v1/architectures/describe")
    def describe(arch: str = Query(..., description="known name, JSON or string form")) -> dict[str, Any]:
        try:
            a = resolve_architecture(arch)
        except UnknownNameError as exc:
            raise HTTPException(404, str(exc)) from None
        except SearchSpaceError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"arch_id": a.arch_id, "string": a.encode(), **count_cost(a).as_dict(), "architecture": a.to_dict()}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{c.params:,}</td><td>{c.macs / 1e6:.1f}M</td>"
            f"<td><code>{a.arch_id}</code></td></tr>"
            for n, a in known_architectures().items()
            for c in [count_cost(a)]
        )
        space_rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{s.cardinality():.2e}</td><td>{html.escape(s.description)}</td></tr>"
            for n in list_spaces()
            for s in [load_space(n)]
        )
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>hwnas</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}td,th{{padding:.2rem .8rem;text-align:left}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style></head><body>
<h1>hwnas</h1>
<p>Hardware-aware neural architecture search. This build serves the search-space catalogue;
search jobs, latency tables and the Pareto dashboard arrive with the next issues.
API: <a href="/docs">/docs</a>.</p>
<h2>Search spaces</h2><table><tr><th>space</th><th>architectures</th><th>description</th></tr>{space_rows}</table>
<h2>Known nets</h2><table><tr><th>name</th><th>params</th><th>MACs</th><th>arch_id</th></tr>{rows}</table>
</body></html>"""

    return app
