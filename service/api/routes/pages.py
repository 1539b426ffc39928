"""The front page (the dashboard builds on the same /api/v1 routes)."""

from __future__ import annotations

import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from searchspace import count_cost, known_architectures, list_spaces, load_space

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
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
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>hwnas</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}td,th{{padding:.2rem .8rem;text-align:left}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}</style></head><body>
<h1>hwnas</h1>
<p>Hardware-aware neural architecture search. Submit search jobs with <code>POST /api/v1/jobs</code> or
<code>hwnas submit CONFIG.yaml</code>; the REST API is described at <a href="/docs">/docs</a>.</p>
<h2>Search spaces</h2><table><tr><th>space</th><th>architectures</th><th>description</th></tr>{space_rows}</table>
<h2>Known nets</h2><table><tr><th>name</th><th>params</th><th>MACs</th><th>arch_id</th></tr>{rows}</table>
</body></html>"""
