"""Latency table files: one per (device profile, host), versioned JSON (gzip when large).

A table maps layer keys (:mod:`latency_tables.signatures`) to measured
latencies with their spread, keeps the end-to-end measurements of whole nets
it was calibrated on, and the fitted calibration. It is the profiler's cache
too: building is incremental and resumable because every finished entry is
in the file.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from latency_tables.errors import LatencyTableError
from latency_tables.portable import file_lock, write_atomic
from latency_tables.profiles import DeviceProfile, HostInfo
from searchspace.validation import validate_model

TABLE_FORMAT = "hwnas.latency-table"
TABLE_VERSION = 1
#: shipped tables live here; tables a user builds go to user_table_dir()
PACKAGE_DATA = Path(__file__).resolve().parent / "data"


class Entry(BaseModel):
    """A layer's latency: the least-disturbed of ``passes`` measurements made at different times.

    On a shared machine interference comes in regimes lasting seconds; one
    measurement can fall wholly inside one, two at different times rarely do.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    median_ms: float = Field(ge=0)
    p10_ms: float = Field(ge=0)
    p90_ms: float = Field(ge=0)
    runs: int = Field(ge=0)
    passes: int = Field(default=1, ge=1)

    def combine(self, other: Entry) -> Entry:
        best = self if self.median_ms <= other.median_ms else other
        return best.model_copy(update={"passes": self.passes + other.passes})


class NetMeasurement(BaseModel):
    """A whole net measured end to end (for calibration), stored by its string form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: str
    space: str = ""
    median_ms: float = Field(ge=0)
    p10_ms: float = Field(ge=0)
    p90_ms: float = Field(ge=0)
    runs: int = Field(ge=0)
    #: interleaved rounds; the least-disturbed round's figures are kept
    rounds: int = Field(default=1, ge=1)


class Calibration(BaseModel):
    """From a net's raw sum of layer latencies to its latency (:mod:`latency_tables.calibration`).

    affine: intercept + scale * raw; weights: that plus weights_scale * raw * ln(the net's parameters in
    millions); per-kind: intercept + per_layer * layers + sum over kinds of scale[kind] * (that kind's sum).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["raw", "affine", "weights", "per-kind"] = "raw"
    intercept_ms: float = 0.0
    per_layer_ms: float = 0.0
    scale: float = 1.0
    weights_scale: float = 0.0
    kind_scales: dict[str, float] = Field(default_factory=dict)
    fitted_on: int = 0
    cv_mape: float | None = None
    note: str = ""


class LatencyTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["hwnas.latency-table"] = "hwnas.latency-table"
    version: int = TABLE_VERSION
    profile: DeviceProfile
    host: HostInfo
    note: str = ""
    created: str = Field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    updated: str = ""
    #: fixed cost of one call of this runtime, in every isolated entry; counted once per net
    call_overhead_ms: float = Field(default=0.0, ge=0)
    entries: dict[str, Entry] = Field(default_factory=dict)
    networks: list[NetMeasurement] = Field(default_factory=list)
    calibration: Calibration = Field(default_factory=Calibration)
    #: per-space calibrations, fitted where a space has enough measured nets; the global one is the fallback
    space_calibrations: dict[str, Calibration] = Field(default_factory=dict)

    def calibration_for(self, space: str | None) -> Calibration:
        return self.space_calibrations.get(space or "", self.calibration)

    @property
    def name(self) -> str:
        return f"{self.profile.id}@{self.host.slug}"

    def default_filename(self) -> str:
        return f"{self.name}.json.gz"

    # ---------------------------------------------------------------- io
    @classmethod
    def from_dict(cls, data: Any, source: str = "table") -> LatencyTable:
        if not isinstance(data, dict):
            raise LatencyTableError(f"{source}: a latency table is a JSON object, got {type(data).__name__}")
        if data.get("format") != TABLE_FORMAT:
            raise LatencyTableError(
                f"{source}: format must be {TABLE_FORMAT!r}, got {data.get('format')!r} (is this a latency table?)"
            )
        version = data.get("version")
        if version != TABLE_VERSION:
            hint = "upgrade hwnas to read it" if isinstance(version, int) and version > TABLE_VERSION else "rebuild it"
            raise LatencyTableError(
                f"{source}: table format version {version!r} is not supported "
                f"(this hwnas reads {TABLE_VERSION}); {hint}"
            )
        return validate_model(cls, data, LatencyTableError, f"{source}: invalid latency table")

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise LatencyTableError(f"cannot read latency table {p}: {exc.strerror}") from None
        try:
            text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            data = json.loads(text)
        except (OSError, EOFError, ValueError) as exc:  # EOFError: a cut gzip stream
            raise LatencyTableError(f"{p}: not a JSON (or gzipped JSON) latency table: {exc}") from None
        return cls.from_dict(data, str(p))

    def save(self, path: str | Path, *, merge: bool = True) -> Path:
        """Write atomically; ``.gz`` paths are gzipped (stable bytes: no timestamp in the header).

        Several processes extend one host's table (two workers' first use, layers a search meets later), each
        from the copy it loaded. So, under a lock on the file, what another process saved there meanwhile is
        taken in first (:meth:`absorb`), unless ``merge`` is False or the file holds another profile's or
        host's table, or one of this host kind measured at another speed (then this one replaces it, as asked:
        figures of two speeds never mix). The lock is ``.<name>.lock`` beside the file (:func:`save_lock`).
        """
        p = Path(path)
        with save_lock(p):
            if merge and p.exists():
                try:
                    on_disk = LatencyTable.load(p)
                except LatencyTableError:
                    on_disk = None  # unreadable: replaced by this one
                if on_disk is not None and self.same_kind(on_disk):
                    self.absorb(on_disk)
            self.updated = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            data = self.model_dump(mode="json")
            data["entries"] = dict(sorted(data["entries"].items()))
            text = json.dumps(data, indent=1, sort_keys=False).encode("utf-8")
            blob = gzip.compress(text, mtime=0) if p.suffix == ".gz" else text
            write_atomic(p, blob)
        return p

    def same_kind(self, other: LatencyTable) -> bool:
        """Whether ``other`` holds figures this table may take in: same profile, same host kind, and the
        reference layers both hold (if any) timed alike (within the host check's tolerances)."""
        from latency_tables.host import judge_signature, reference_figures

        if other.profile != self.profile or self.host.differences(other.host):
            return False
        return not judge_signature(reference_figures(self), reference_figures(other))[2]

    def absorb(self, other: LatencyTable) -> int:
        """Take in what a copy of this table saved elsewhere has and this one lacks: entries, nets, and each
        calibration fitted on more nets than this one's. Where both measured a layer or net, this copy's
        figures stay. Returns the entries added."""
        added = 0
        for key, entry in other.entries.items():
            if key not in self.entries:
                self.entries[key] = entry
                added += 1
        known = {n.arch for n in self.networks}
        self.networks += [n for n in other.networks if n.arch not in known]
        if other.calibration.fitted_on > self.calibration.fitted_on:
            self.calibration = other.calibration
        for space, cal in other.space_calibrations.items():
            mine = self.space_calibrations.get(space)
            if mine is None or cal.fitted_on > mine.fitted_on:
                self.space_calibrations[space] = cal
        if not self.call_overhead_ms:
            self.call_overhead_ms = other.call_overhead_ms
        return added

    def merge(self, other: LatencyTable) -> int:
        """Add ``other``'s entries and networks (same profile and host kind); return entries added."""
        if other.profile != self.profile:
            raise LatencyTableError(f"cannot merge a {other.profile.id} table into a {self.profile.id} table")
        diffs = self.host.differences(other.host)
        if diffs:
            raise LatencyTableError(f"cannot merge tables of different hosts ({'; '.join(diffs)})")
        return self.absorb(other)


def save_lock(path: Path) -> Any:
    """The lock a table file is saved (or moved away) under: ``.<name>.lock`` beside it."""
    return file_lock(path.with_name(f".{path.name}.lock"))


def user_table_dir() -> Path:
    """Where tables a user builds or imports go: $HWNAS_LUT_DIR, else $XDG_DATA_HOME/hwnas/latency_tables
    (~/.local/share/hwnas/latency_tables), beside the predictors."""
    env = os.environ.get("HWNAS_LUT_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "hwnas" / "latency_tables"


def table_dirs() -> list[Path]:
    return [user_table_dir(), PACKAGE_DATA]


def table_files(folder: Path) -> list[Path]:
    """The table files in ``folder``: ``*.json`` / ``*.json.gz``, not hidden files (a table being saved is a
    hidden temp file until it is renamed into place)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json*") if not p.name.startswith(".") and p.is_file())


def list_tables() -> list[tuple[Path, LatencyTable]]:
    """Every table on the search path (user tables first: they shadow shipped ones of the same name)."""
    seen: set[str] = set()
    out = []
    for folder in table_dirs():
        for path in table_files(folder):
            table = LatencyTable.load(path)
            if table.name not in seen:
                seen.add(table.name)
                out.append((path, table))
    return out


def find_table(profile: DeviceProfile | str, host: HostInfo | None = None) -> tuple[Path, LatencyTable]:
    """The table for ``profile`` measured on this host's kind (or, failing that, the only one there is)."""
    pid = profile if isinstance(profile, str) else profile.id
    host = host or HostInfo.current()
    candidates = [(p, t) for p, t in list_tables() if t.profile.id == pid]
    for path, table in candidates:
        if not table.host.differences(host):
            return path, table
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise LatencyTableError(
            f"no latency table for profile {pid}; build one with: hwnas lut build --profile {pid} --space SPACE "
            f"(tables: {', '.join(t.name for _, t in list_tables()) or 'none'})"
        )
    raise LatencyTableError(
        f"several {pid} tables and none from this host: {', '.join(t.name for _, t in candidates)}; pass --table PATH"
    )
