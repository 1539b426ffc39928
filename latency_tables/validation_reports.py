"""Validation reports kept beside the tables: ``<table>.validation/<space>.json``, where the service finds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from latency_tables.errors import LatencyTableError

REPORT_FORMAT = "hwnas.validation-report"
REPORT_VERSION = 1


def report_path(table_name: str, space: str, folder: Path | None = None) -> Path:
    """``<folder>/<table name>.validation/<space>.json``: a table's validation on one space, next to the table."""
    from latency_tables.table import user_table_dir

    return (folder or user_table_dir()) / f"{table_name}.validation" / f"{space}.json"


def save_report(result: dict[str, Any], folder: Path | None = None) -> Path:
    """Keep a validation (``ValidationResult.as_dict()``, plus ``measured_on``) where the service finds it.

    Nets keep their id and timings, not their string form, so a report stays small.
    """
    import json
    import os

    data = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        **{k: v for k, v in result.items() if k not in ("nets", "plot")},
        "nets": [{k: v for k, v in net.items() if k != "arch"} for net in result.get("nets", [])],
    }
    path = report_path(str(result["table"]), str(result["space"]), folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def load_reports(table_name: str) -> list[dict[str, Any]]:
    """Every space's newest validation report of a table: the user's own (run on this host) before shipped ones."""
    import json

    from latency_tables.table import table_dirs

    found: dict[str, dict[str, Any]] = {}
    for folder in table_dirs():
        for path in sorted((folder / f"{table_name}.validation").glob("*.json")):
            data = json.loads(path.read_text())
            if data.get("format") != REPORT_FORMAT or data.get("version") != REPORT_VERSION:
                raise LatencyTableError(
                    f"{path}: not a validation report of version {REPORT_VERSION}; run "
                    f"`hwnas lut validate` again to rewrite it"
                )
            found.setdefault(str(data["space"]), data | {"path": str(path)})
    return [found[s] for s in sorted(found)]
