"""The web dashboard: HTML shells and vanilla JS that read the same /api/v1 routes as any client.

No build step: the files in ``static/`` are served as they are. plotly.js comes
from the npm registry's ``plotly.js`` package as partial bundles that ``make``
fetches once (``vendor.py``), or else from the installed ``plotly`` Python
package; never from a CDN, never downloaded at run time.
"""
