"""Which latency table a search predicts with, and this host's table built on first use.

A table measured on another machine, even one sold under the same CPU label,
can be off by 2x, so a search picks its table per latency profile by the
config's ``latency_table``:

- ``auto``: this host's table where this host can run the profile
  (:func:`latency_tables.first_use.ensure_host_table`: built on first use for
  the layers the space needs, with calibration nets, and cached in the user
  table folder for every later search); else the best table on the search
  path, flagged when it describes another host;
- ``host``: this host's table; an error where this host cannot run the profile;
- ``shipped``: the table shipped with hwnas, flagged when it describes another host;
- a table file: that table, checked the same way.

The search makes every choice before it evaluates a net (a build measures
layers, and workers computing proxies beside it would distort the figures),
reports the build's progress as :class:`TableEvent`, and records each
:class:`TableChoice` with the study, so results, the CLI, the API and the
dashboard can say which latencies came from a table measured elsewhere, and
how to build this host's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import ConfigError, SearchError

if TYPE_CHECKING:
    from latency_tables.host import HostCheck
    from latency_tables.table import LatencyTable
    from nas.config import SearchConfig

__all__ = [
    "TableChoice",
    "TableEvent",
    "choose_table",
    "pick_table",
    "foreign_warnings",
    "shipped_table",
    "table_profile",
]

#: the study attribute the choices of the search's last run are kept in
STUDY_ATTR = "hwnas_latency_tables"


@dataclass(frozen=True)
class TableChoice:
    """The table one latency profile of a search is predicted from, and whether it describes this host."""

    profile: str
    #: the latency metrics (objectives and constraints) it serves
    metrics: list[str]
    #: how it was chosen: host (this host's table), found (the best on the search path: this host cannot run
    #: the profile), shipped, file
    source: str
    table: str
    path: str
    #: same / foreign / unverified (:class:`latency_tables.host.HostCheck`)
    verdict: str
    reasons: list[str] = field(default_factory=list)
    #: this run measured layers or calibration nets into it
    built_now: bool = False
    layers_measured: int = 0
    nets_measured: int = 0
    #: seconds choosing (and building) it took
    seconds: float = 0.0
    #: how to build this host's table, when the table describes another host
    build_command: str | None = None
    summary: str = ""
    #: one line for a person, when the latencies describe another host
    warning: str | None = None

    @property
    def foreign(self) -> bool:
        return self.verdict == "foreign"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "foreign": self.foreign}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableChoice:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class TableEvent:
    """Progress of choosing one profile's table: ``done`` of ``total`` measurements of the phase ``what``;
    the last event of a profile carries its ``choice`` (and ``what`` is its summary)."""

    profile: str
    done: int
    total: int
    what: str
    choice: TableChoice | None = None

    @property
    def finished(self) -> bool:
        return self.choice is not None

    def line(self) -> str:
        if self.choice is not None:
            return self.choice.summary
        return f"latency table {self.profile}: {self.what} {self.done}/{self.total}"


TableProgress = Callable[[TableEvent], None]


# ------------------------------------------------------------ table files
@lru_cache(maxsize=16)
def _load(path: str, mtime_ns: int) -> LatencyTable:
    from latency_tables.table import LatencyTable

    return LatencyTable.load(path)


def _load_table(path: str | Path) -> LatencyTable:
    """A table file, read once per version of the file."""
    p = Path(path)
    return _load(str(p.resolve()), p.stat().st_mtime_ns)


def table_profile(path: str | Path) -> str:
    """The profile id of the table file at ``path``; a ConfigError naming ``latency_table`` when it is none."""
    from latency_tables.errors import LatencyTableError

    try:
        return _load_table(path).profile.id
    except (LatencyTableError, OSError) as exc:
        raise ConfigError(f"latency_table: {path} is not a readable latency table ({exc})") from None


def shipped_table(profile: str) -> Path:
    """The table file shipped with hwnas for ``profile`` (the one of this host's kind where there are several);
    a ConfigError naming the shipped tables when there is none."""
    from latency_tables import table as table_module
    from latency_tables.profiles import HostInfo

    folder = table_module.PACKAGE_DATA
    shipped = [(p, _load_table(p)) for p in table_module.table_files(folder)]
    mine = [(p, t) for p, t in shipped if t.profile.id == profile]
    if not mine:
        names = ", ".join(t.name for _, t in shipped) or "none"
        raise ConfigError(
            f"latency_table: shipped: hwnas ships no table for {profile} (shipped tables: {names}); "
            "use auto to build this host's table"
        )
    host = HostInfo.current()
    return next((p for p, t in mine if not t.host.differences(host)), mine[0][0])


# ------------------------------------------------------------ choosing
def _phases(profile: str, progress: TableProgress | None) -> Callable[[int, int, str], None] | None:
    """ensure_host_table's ``progress(done, total, what)`` as TableEvents: its layers, then its calibration nets."""
    if progress is None:
        return None
    from latency_tables.first_use import WAITING

    phase = ["measuring this host's layers"]

    def report(done: int, total: int, what: str) -> None:
        if what == WAITING:
            progress(TableEvent(profile, done, total, what))
            return
        if what.startswith("round "):  # interleaved_timings names each net's round
            phase[0] = "measuring calibration nets"
        if total:
            progress(TableEvent(profile, done, total, phase[0]))

    return report


def _runnable(table: LatencyTable) -> str | None:
    """None where this host can run the table's profile, else why not."""
    from latency_tables.runtimes import get_runtime

    try:
        return get_runtime(table.profile.runtime).unavailable(table.profile)
    except Exception as exc:  # noqa: BLE001 - an unknown runtime: nothing here runs it
        return str(exc)


def _choice(
    where: _For,
    profile: str,
    source: str,
    path: Path,
    table: LatencyTable,
    check: HostCheck,
    start: float,
    summary: str | None = None,
    layers: int = 0,
    nets: int = 0,
) -> TableChoice:
    from latency_tables.host import build_command

    metrics = where.metrics
    command = warning = None
    if check.foreign:
        command = build_command(profile, where.space_name)
        unavailable = _runnable(table)
        how = (
            f"this host cannot run {profile} ({unavailable}); build a table on a host that can"
            if unavailable
            else "build this host's table"
        )
        warning = (
            f"{', '.join(metrics)} predicted from latency table {table.name}, measured on another host "
            f"({'; '.join(check.reasons)}); {how}: {command}"
        )
    return TableChoice(
        profile=profile,
        metrics=metrics,
        source=source,
        table=table.name,
        path=str(path),
        verdict=check.verdict,
        reasons=list(check.reasons),
        built_now=bool(layers or nets),
        layers_measured=layers,
        nets_measured=nets,
        seconds=time.perf_counter() - start,
        build_command=command,
        summary=summary or f"latency table {table.name} ({path}): {check.summary()}",
        warning=warning,
    )


@dataclass(frozen=True)
class _For:
    """What a choice is made for: the latency metrics it serves, and the space's name for a build command."""

    metrics: list[str]
    space_name: str | None


def choose_table(
    config: SearchConfig, profile: str, space: Any = None, progress: TableProgress | None = None
) -> TableChoice:
    """The table ``config`` predicts ``profile`` from (see the module docstring), built first where needed.

    ``space`` is the config's loaded space (loaded here when not given); ``progress`` sees the build's
    measurements and, last, the choice.
    """
    mode = config.latency_table
    if mode in ("auto", "host") and space is None:
        space = config.load_space()
    metrics = [m.name for m in config.metrics if m.kind == "latency" and m.arg == profile]
    space_name = config.space if isinstance(config.space, str) else None
    return pick_table(mode, profile, space, metrics=metrics, space_name=space_name, progress=progress)


def pick_table(
    mode: str,
    profile: str,
    space: Any,
    *,
    metrics: list[str] | None = None,
    space_name: str | None = None,
    progress: TableProgress | None = None,
) -> TableChoice:
    """:func:`choose_table` for a ``latency_table`` setting ``mode`` and a loaded ``space`` (used by auto and
    host), outside a search config (the proxies' self-check times its nets this way): ``metrics`` are the
    latency metrics the table serves, ``space_name`` names the space in a build command."""
    from latency_tables.host import check_table
    from latency_tables.table import find_table

    start = time.perf_counter()
    where = _For(list(metrics or []), space_name)
    if mode in ("auto", "host"):
        from latency_tables import first_use
        from latency_tables.errors import RuntimeUnavailableError

        try:
            host = first_use.ensure_host_table(
                profile,
                space,
                calibrate=first_use.FIRST_USE_NETS,
                progress=_phases(profile, progress),
            )
        except RuntimeUnavailableError as exc:
            if mode == "host":
                raise SearchError(
                    f"latency_table: host: {exc}; use auto or shipped to predict from a table measured elsewhere"
                ) from None
            path, table = find_table(profile)
            choice = _choice(where, profile, "found", path, table, check_table(table), start)
        except OSError as exc:  # this host's table cannot be saved (a read-only table folder, a full disk)
            unsaved = (
                f"this host's latency table cannot be saved ({exc.strerror or exc}); "
                "set HWNAS_LUT_DIR to a writable folder"
            )
            if mode == "host":
                raise SearchError(f"latency_table: host: {unsaved}") from None
            path, table = find_table(profile)
            choice = _choice(where, profile, "found", path, table, check_table(table), start)
            choice = replace(choice, summary=f"{choice.summary} ({unsaved})")
        else:
            if mode == "host" and host.check.foreign:
                raise SearchError(f"latency_table: host: {host.check.summary()}")
            # this host's table, where it measured something; a table of this host on the search path (say the
            # shipped one, on the host that measured it) it took as it was stays where it is
            path = host.path if host.path.exists() else find_table(profile)[0]
            choice = _choice(
                where,
                profile,
                "host",
                path,
                host.table,
                host.check,
                start,
                summary=host.summary(),
                layers=host.layers_measured,
                nets=host.nets_measured,
            )
    else:
        path = shipped_table(profile) if mode == "shipped" else Path(mode)
        try:
            table = _load_table(path)
        except OSError as exc:
            raise SearchError(f"latency_table: cannot read {path} ({exc.strerror or exc})") from None
        if table.profile.id != profile:
            raise SearchError(f"latency_table: {path} is a table of {table.profile.id}, not of {profile}")
        choice = _choice(
            where, profile, "shipped" if mode == "shipped" else "file", path, table, check_table(table), start
        )
    if progress is not None:
        progress(TableEvent(profile, 1, 1, choice.summary, choice))
    return choice


def foreign_warnings(choices: list[dict[str, Any]] | dict[str, dict[str, Any]]) -> list[str]:
    """The warning of each recorded choice (``TableChoice.as_dict``) whose table describes another host."""
    items = list(choices.values()) if isinstance(choices, dict) else list(choices)
    return [c["warning"] for c in items if c.get("foreign") and c.get("warning")]
