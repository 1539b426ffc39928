"""Convenience entry points used by the CLI, the search and the service."""

from __future__ import annotations

from pathlib import Path

from latency_tables.predictor import LatencyPredictor, Missing
from latency_tables.profiles import DeviceProfile
from latency_tables.table import LatencyTable, find_table, user_table_dir


def writable_copy_path(path: Path, table: LatencyTable) -> Path:
    """Where a table may be extended: in place if it is a user's writable file, else a copy in the user folder.

    Shipped tables (in the package) are never written implicitly: layers
    measured on demand go to the user's copy, which shadows the shipped one.
    """
    from latency_tables import table as table_module

    shipped = path.resolve().is_relative_to(table_module.PACKAGE_DATA.resolve())
    if not shipped and path.parent.is_dir() and _writable(path):
        return path
    return user_table_dir() / table.default_filename()


def _writable(path: Path) -> bool:
    import os

    return os.access(path if path.exists() else path.parent, os.W_OK)


def load_predictor(profile: str | DeviceProfile, table: str | Path | None = None,
                   missing: Missing = "auto", space: str | None = None) -> LatencyPredictor:
    """The predictor for ``profile`` from ``table`` (a path) or the best table on the search path."""
    if table is not None:
        path = Path(table)
        lut = LatencyTable.load(path)
        pid = profile if isinstance(profile, str) else profile.id
        if lut.profile.id != pid:
            from latency_tables.errors import LatencyTableError

            raise LatencyTableError(f"table {path} is for profile {lut.profile.id}, not {pid}")
    else:
        path, lut = find_table(profile)
    return LatencyPredictor(lut, writable_copy_path(path, lut), missing=missing, space=space)
