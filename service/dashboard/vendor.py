"""Partial plotly.js bundles for the dashboard, taken from the npm registry's ``plotly.js`` package by ``make``.

The ``plotly`` Python package ships the full plotly.js (every trace type);
parsing it delays the first paint of every page (benchmarks/results/
dashboard.json measures the page loads). plotly.js's own npm package ships partial bundles beside it:
``gl2d`` (scatter, scattergl, parcoords: the job page), ``basic`` (scatter,
bar: the other pages) and ``gl3d`` (scatter3d: loaded only when a job has a
3-D view). ``make install`` runs ``python -m service.dashboard.vendor``, which
fetches the pinned tarball with ``npm pack``, checks its sha512 against the pin
below, and writes the three files and a manifest to ``static/vendor/``. Nothing
is downloaded at run time; without the manifest the service serves the full
bundle from the Python package for every page (slower, same plots).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "4.1.1"
# `npm view plotly.js@4.1.1 dist.integrity`: the tarball's sha512, so a changed tarball is refused
INTEGRITY = "sha512-fYLAOj091/+M4h1rmtVIkRIpdkz5/P9IdNUeB9wKmCUyvewuUdlCYR5ryqDWP7Cb36Dn4EvSrs6YKvRJ9ukNdQ=="
# role -> file in the package's dist/
BUNDLES = {"2d": "plotly-gl2d.min.js", "basic": "plotly-basic.min.js", "3d": "plotly-gl3d.min.js"}
VENDOR = Path(__file__).parent / "static" / "vendor"
MANIFEST = VENDOR / "plotly.json"


def sha512_integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def read_manifest(vendor: Path = VENDOR) -> dict | None:
    """The manifest when every bundle it names is on disk with its recorded sha256, else None."""
    manifest = vendor / "plotly.json"
    try:
        data = json.loads(manifest.read_text())
        for role in BUNDLES:
            entry = data["bundles"][role]
            if hashlib.sha256((vendor / entry["file"]).read_bytes()).hexdigest() != entry["sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


def fetch(vendor: Path = VENDOR, npm: str = "npm") -> dict:
    """Download (npm pack), verify and unpack the pinned bundles; a no-op when they are already there."""
    current = read_manifest(vendor)
    if current is not None and current.get("version") == VERSION:
        return current
    if shutil.which(npm) is None:
        raise RuntimeError(
            f"{npm}: not found; install Node.js and npm (Debian: apt-get install npm) to fetch "
            f"plotly.js {VERSION}'s partial bundles, or run without them (the full bundle is slower)"
        )
    with tempfile.TemporaryDirectory(prefix="hwnas-plotly-") as tmp:
        proc = subprocess.run(
            [npm, "pack", f"plotly.js@{VERSION}", "--pack-destination", tmp, "--json", "--silent"],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"npm pack plotly.js@{VERSION} failed ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"npm pack plotly.js@{VERSION}: expected one tarball in {tmp}, found {tarballs}")
        data = tarballs[0].read_bytes()
        if sha512_integrity(data) != INTEGRITY:
            raise RuntimeError(
                f"plotly.js@{VERSION}: the tarball's sha512 is {sha512_integrity(data)}, "
                f"not the pinned {INTEGRITY}; refusing it"
            )
        vendor.mkdir(parents=True, exist_ok=True)
        bundles = {}
        with tarfile.open(tarballs[0]) as tar:
            for role, name in BUNDLES.items():
                member = tar.extractfile(f"package/dist/{name}")
                if member is None:
                    raise RuntimeError(f"plotly.js@{VERSION}: dist/{name} is missing from the tarball")
                body = member.read()
                (vendor / name).write_bytes(body)
                bundles[role] = {"file": name, "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
            license_file = tar.extractfile("package/LICENSE")
            if license_file is not None:
                (vendor / "LICENSE.plotly.js").write_bytes(license_file.read())
    manifest = {"package": "plotly.js", "version": VERSION, "integrity": INTEGRITY, "bundles": bundles}
    (vendor / "plotly.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> int:
    try:
        manifest = fetch()
    except RuntimeError as e:
        print(f"dashboard bundles: {e}", file=sys.stderr)
        return 1
    sizes = ", ".join(f"{b['file']} {b['bytes'] / 1e6:.2f} MB" for b in manifest["bundles"].values())
    print(f"dashboard bundles: plotly.js {manifest['version']} ({sizes}) in {VENDOR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
