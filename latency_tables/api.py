"""Convenience entry points used by the CLI, the search and the service."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from latency_tables.errors import LatencyTableError
from latency_tables.host import (
    LAYER_TOLERANCE,
    MEAN_TOLERANCE,
    REFERENCE_LAYERS,
    check_table,
    judge_signature,
    reference_figures,
)
from latency_tables.predictor import LatencyPredictor, Missing
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import Layer, arch_layers, parse_key, space_layers
from latency_tables.table import LatencyTable, find_table, save_lock, user_table_dir
from searchspace.architecture import Architecture

if TYPE_CHECKING:
    from searchspace.spec import SearchSpace


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


def load_predictor(
    profile: str | DeviceProfile,
    table: str | Path | None = None,
    missing: Missing = "auto",
    space: str | None = None,
    check: Literal["measure", "cached"] = "measure",
) -> LatencyPredictor:
    """The predictor for ``profile`` from ``table`` (a path) or the best table on the search path.

    The table is checked against this host (:func:`latency_tables.host.check_table`): ``measure`` times the
    speed signature when no cached verdict exists (a second or two, once per boot); ``cached`` never times
    anything (for processes that must answer at once, like the API server). A foreign table's predictions
    are flagged (``Prediction.foreign``) and it warns once.
    """
    if table is not None:
        path = Path(table)
        lut = LatencyTable.load(path)
        pid = profile if isinstance(profile, str) else profile.id
        if lut.profile.id != pid:
            raise LatencyTableError(f"table {path} is for profile {lut.profile.id}, not {pid}")
    else:
        path, lut = find_table(profile)
    host_check = check_table(lut, measure=check == "measure")
    return LatencyPredictor(lut, writable_copy_path(path, lut), missing=missing, space=space, host_check=host_check)


# ------------------------------------------------------------ building a table here
#: why first use does not extend a table that recorded no fingerprint
UNRECORDED = (
    "was measured on another machine of this host's kind (it predates host fingerprints: a shipped table or a copy "
    "of one), and a table built here predicts this host better"
)


def not_this_hosts(lut: LatencyTable, host: HostInfo, *, unrecorded: bool = True) -> str | None:
    """Why ``lut`` is not ``host``'s table to use and extend (a phrase that follows the table's name), or None.

    Another host kind's; with ``unrecorded=False``, one that recorded no
    fingerprint (a shipped table or a copy: measured on another machine of
    this kind, and a table built here predicts this host better); or one of
    this kind measurably at another speed (another VM of the "same" kind),
    whose figures must not mix with this host's. The reasons are tried
    cheapest first: the speed check times reference layers (seconds a
    first-use build need not spend on a table it replaces anyway).
    """
    diffs = lut.host.differences(host)
    if diffs:
        return f"was measured on another host kind ({'; '.join(diffs)})"
    if not unrecorded and not lut.host.fingerprinted:
        return UNRECORDED
    check = check_table(lut, host=host)
    if check.foreign:
        return f"runs at another speed on this host ({'; '.join(check.reasons)})"
    return None


def table_to_extend(
    profile: DeviceProfile, table: str | Path | None = None, host: HostInfo | None = None, *, unrecorded: bool = True
) -> tuple[Path, LatencyTable]:
    """The table new measurements of ``profile`` on ``host`` (default: this one) go into, and where it is saved.

    ``table`` names a file (created if missing). Otherwise: this host's table
    on the search path (its writable copy, see :func:`writable_copy_path`), or
    a new one in the user folder. Refuses a table of another profile or one
    measured on another host, since the two kinds of figures must not mix.
    ``unrecorded=False`` does not extend a table that recorded no fingerprint
    (a shipped table or a copy of one), even where it passes the host check:
    it was measured on another machine of this kind, and a table built here
    predicts this host better (first use).
    """
    from latency_tables import table as table_module

    host = host or HostInfo.current()
    if table:
        path = Path(table)
        if path.resolve().is_relative_to(table_module.PACKAGE_DATA.resolve()):
            raise LatencyTableError(
                f"table {path} is shipped with hwnas and is never written; measure into your own table "
                "(leave out --table, or name a file outside the package)"
            )
        lut = (
            LatencyTable.load(path) if path.exists() else LatencyTable(profile=profile, host=host.for_profile(profile))
        )
    else:
        try:
            found, lut = find_table(profile, host)
            path = writable_copy_path(found, lut)
            why = not_this_hosts(lut, host, unrecorded=unrecorded)
            if why:
                raise LatencyTableError(why)
        except LatencyTableError as exc:
            lut = LatencyTable(profile=profile, host=host.for_profile(profile))
            path = user_table_dir() / lut.default_filename()
            if path.exists():
                try:
                    other_host = bool(LatencyTable.load(path).host.differences(host))
                except LatencyTableError:
                    other_host = False
                if other_host:  # another machine's table under this name (say, imported): both stay
                    path = path.with_name(f"{lut.name}-{host.fingerprint()[:8]}.json.gz")
                else:  # this host kind's, but measurably another speed or unrecorded: out of the way, and said so
                    dest = set_aside(path)
                    warnings.warn(f"{path} {exc}; moved to {dest}", stacklevel=2)
    if lut.profile != profile:
        raise LatencyTableError(f"table {path} is for profile {lut.profile.id}, not {profile.id}")
    diffs = lut.host.differences(host)
    if diffs:
        raise LatencyTableError(
            f"table {path} was measured on another host ({'; '.join(diffs)}); measure into a new table with --table"
        )
    if not lut.note:
        lut.note = (
            f"Measured on {host.cpu} ({host.cores} cores, {host.machine}, {host.system}) with "
            f"{profile.runtime} {host.versions.get('onnxruntime' if profile.runtime == 'ort' else 'torch', '')}: "
            "these latencies describe that host."
        )
    return path, lut


def set_aside(path: Path) -> Path | None:
    """Move a user table another host's figures fill out of the way (into ``replaced/`` beside it, stamped),
    so a new table of this host can take its name; returns where it went (None if there was nothing)."""
    import time

    if not path.exists():
        return None
    dest = path.parent / "replaced" / f"{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}-{path.name}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with save_lock(path):  # not while another process is saving it
        if not path.exists():
            return None
        path.replace(dest)
    return dest


def layers_to_cover(
    spaces: Iterable[str | SearchSpace] = (),
    archs: Iterable[str | Architecture] = (),
    resolution: int | None = None,
    reference: bool = False,
) -> dict[str, Layer]:
    """The distinct measurable layers (by key) of every net of ``spaces`` at ``resolution`` and of ``archs``,
    plus (``reference``) the speed signature's reference layers, so every table built can be checked against
    the host that later uses it (:mod:`latency_tables.host`).

    Spaces are names, files or loaded spaces; nets are references
    (:func:`searchspace.resolve_architecture`) or architectures.
    """
    from searchspace import load_space, resolve_architecture
    from searchspace.spec import SearchSpace

    layers: dict[str, Layer] = {}
    for ref in spaces:
        layers.update(space_layers(ref if isinstance(ref, SearchSpace) else load_space(ref), resolution))
    for net in archs:
        arch = net if isinstance(net, Architecture) else resolve_architecture(net)
        layers.update({lyr.key: lyr for _, lyr in arch_layers(arch) if not lyr.is_identity})
    if reference:
        layers.update({key: parse_key(key) for key in REFERENCE_LAYERS})
    return layers


# ------------------------------------------------------------ importing a table measured elsewhere
#: a table's calibration is refitted on import only from at least this many measured nets
MIN_CALIBRATION_NETS = 10


@dataclass
class ImportResult:
    """What :func:`import_table` did: the table as saved, where, and what was new."""

    path: Path
    table: LatencyTable
    #: entries in the imported table, and how many of them the folder's table lacked
    received: int
    added: int
    #: True when a table of the same name was there and the import was merged into it
    merged: bool
    #: None when the calibration was refitted, else why not
    calibration_skipped: str | None

    @property
    def kept(self) -> int:
        """Imported entries the existing table already had (its figures are kept)."""
        return self.received - self.added


def same_speed(existing: LatencyTable, incoming: LatencyTable) -> None:
    """Raise unless two tables' figures for the reference layers both hold agree (machines sold under one
    name can differ by 2x: their entries must not be mixed in one table). Tables without common reference
    layers pass: nothing tells them apart."""
    mine, theirs = reference_figures(existing), reference_figures(incoming)
    mean, _, reasons = judge_signature(mine, theirs)
    if reasons:
        raise LatencyTableError(
            f"cannot merge a table measured at another speed: the imported table times the reference layers at "
            f"{mean:.2f}x the existing table's (tolerance +-{MEAN_TOLERANCE:.0%} on average, "
            f"+-{LAYER_TOLERANCE:.0%} per layer)"
        )


def import_table(
    source: str | Path | LatencyTable, name: str | None = None, folder: str | Path | None = None
) -> ImportResult:
    """Take a table measured elsewhere (the device agent) into the table folder: merged, recalibrated, saved.

    ``source`` is a table file or a loaded table; it is saved as ``name``
    (default ``<profile>@<host>.json.gz``) in ``folder`` (default the user
    table folder). A table already there of the same profile and host kind
    gains the new entries and nets (its own figures win); the calibration is
    refitted when the result holds at least :data:`MIN_CALIBRATION_NETS`
    measured nets. Nothing is written when any check fails.
    """
    table = source if isinstance(source, LatencyTable) else LatencyTable.load(source)
    for key in table.entries:
        parse_key(key)
    name = name or table.default_filename()
    if "/" in name or name in (".", ".."):
        raise LatencyTableError(f"lut import: --name is a file name in the table folder, not a path: {name!r}")
    if not name.endswith((".json", ".json.gz")):
        name += ".json.gz"
    path = Path(folder or user_table_dir()) / name
    received = added = len(table.entries)
    merged = path.exists()
    if merged:
        existing = LatencyTable.load(path)
        try:
            if existing.profile == table.profile and not existing.host.differences(table.host):
                same_speed(existing, table)
            added = existing.merge(table)
        except LatencyTableError as exc:
            raise LatencyTableError(f"{exc}; {path} exists: import under another file name with --name") from None
        if not existing.call_overhead_ms:
            existing.call_overhead_ms = table.call_overhead_ms
        table = existing
    skipped: str | None = None
    if len(table.networks) >= MIN_CALIBRATION_NETS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a table from another host is the point of importing
            predictor = LatencyPredictor(table, path, missing="error")
        try:
            predictor.calibrate()
        except LatencyTableError as exc:
            skipped = str(exc)
    else:
        skipped = f"{len(table.networks)} nets measured, it needs at least {MIN_CALIBRATION_NETS}"
    table.save(path)
    return ImportResult(
        path=path, table=table, received=received, added=added, merged=merged, calibration_skipped=skipped
    )


# ------------------------------------------------------------ describing tables
def open_table(ref: str | Path) -> tuple[Path, LatencyTable]:
    """A table by file path, else by profile id (the best table on the search path)."""
    path = Path(ref)
    if path.exists():
        return path, LatencyTable.load(path)
    return find_table(str(ref))


def table_summary(path: Path, table: LatencyTable) -> dict[str, Any]:
    """One table in a listing: name, profile, host, size, calibration and where it is."""
    cal = table.calibration
    return {
        "name": table.name,
        "profile": table.profile.id,
        "host": table.host.slug,
        "cpu": table.host.cpu,
        "entries": len(table.entries),
        "networks": len(table.networks),
        "calibration": cal.model,
        "cv_mape": cal.cv_mape,
        "path": str(path),
        "updated": table.updated,
    }


def describe_table(path: Path, table: LatencyTable) -> dict[str, Any]:
    """:func:`table_summary` plus the host, entries by kind, measurement spread and every calibration."""
    import numpy as np

    kinds = Counter(parse_key(k).kind for k in table.entries)
    spread = [e.p90_ms / e.median_ms for e in table.entries.values() if e.median_ms > 0]
    return {
        **table_summary(path, table),
        "note": table.note,
        "host_info": table.host.model_dump(),
        "call_overhead_ms": table.call_overhead_ms,
        "entries_by_kind": dict(sorted(kinds.items())),
        "calibration_detail": table.calibration.model_dump(),
        "space_calibrations": {k: v.model_dump() for k, v in table.space_calibrations.items()},
        "median_p90_over_median": float(np.median(spread)) if spread else None,
        "networks_by_space": dict(Counter(n.space for n in table.networks)),
    }
