"""The web dashboard: HTML shells and vanilla JS that read the same /api/v1 routes as any client.

No build step: the files in ``static/`` are served as they are, and plotly.js
comes from the installed ``plotly`` Python package (never a CDN).
"""
