"""Is a latency table this host's? The fingerprint first, then a measured speed signature.

Two VMs sold under one CPU label can run the same layers 20% apart, so a
table is checked against the host that is about to use it:

1. the fingerprint (:meth:`HostInfo.differences`: CPU label, family / model /
   stepping, instruction sets, caches, cores, runtime versions); any
   difference makes the table ``foreign``;
2. where the fingerprints agree and this host can run the table's profile,
   the speed signature: a few fixed reference layers (:data:`REFERENCE_LAYERS`,
   every kind of block, small and large) are timed here, a second or two in
   all, and compared with the table's own figures for them. Their geometric
   mean ratio beyond :data:`MEAN_TOLERANCE`, or one layer beyond
   :data:`LAYER_TOLERANCE`, makes the table ``foreign`` too;
3. where the layers agree, a few whole nets the table measured end to end
   (:func:`probe_nets`: its quickest calibration nets of one space, spread
   over their latency) are timed here too, a few seconds more: the table's
   calibration, fitted on such nets, is what turns its layers into a net's
   latency, and eight layers can agree where what lies between them (memory
   traffic, the runtime's fusions across layers) does not. Their geometric
   mean ratio beyond :data:`NET_TOLERANCE` makes the table ``foreign``.

A table whose host cannot be checked here (a profile this host cannot run,
a table without the reference layers) is ``unverified``. Results are cached
per table, host fingerprint and boot in the user table folder
(``host-checks.cache``), so later jobs on this boot pay nothing; a process
that must not measure (the API server) reads the cache only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from latency_tables.portable import boot_id, measurement_lock, write_atomic

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from latency_tables.profiles import DeviceProfile, HostInfo
    from latency_tables.table import LatencyTable

#: layers timed for the speed signature: a stem at two sizes, inverted bottlenecks (ReLU6; ReLU; SE with
#: h-swish), fused, Tucker, and a head. All are in the built-in spaces, so shipped tables already hold them.
REFERENCE_LAYERS = (
    "32x3:conv_k3_c32_relu6",
    "224x3:conv_k3_s2_c32_relu6",
    "14x88:ibn_k7_e3_c88_relu6",
    "16x24:ibn_k5_e4_c24_relu",
    "8x40:ibn_k3_e4_se0.25_c40_hswish",
    "16x40:fused_k3_s2_e8_se0.25_sg_c120_relu6",
    "8x40:tucker_k5_m16_n40_c48_relu6",
    "7x320:head_c1280_relu6_n1000",
)
#: the signature's geometric mean ratio (here / table) may differ from 1 by this much
MEAN_TOLERANCE = 0.06
#: and any single reference layer by this much
LAYER_TOLERANCE = 0.15
#: interleaved rounds per reference layer; each layer's fastest round counts
ROUNDS = 3
#: whole nets the check times too, from the table's own end-to-end measured nets
NET_PROBES = 4
#: only nets the table measured at most this fast are probes (the check stays within seconds)
NET_PROBE_MAX_MS = 5.0
#: the probe nets' geometric mean ratio (here / table) may differ from 1 by this much
NET_TOLERANCE = 0.06
#: interleaved rounds per probe net; each net's least-disturbed round counts
NET_ROUNDS = 3
#: not *.json: the table folder's listing reads every *.json* file as a table
CHECKS_FILE = "host-checks.cache"
#: part of every cached verdict's key: a verdict made by an older check is made again
CHECK_VERSION = 2

Verdict = Literal["same", "foreign", "unverified"]


@dataclass(frozen=True)
class HostCheck:
    """Whether ``table``'s latencies describe this host, and why."""

    table: str
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    #: geometric mean over the reference layers of (time here / time in the table); None if not measured
    speed_ratio: float | None = None
    layer_ratios: dict[str, float] = field(default_factory=dict)
    checked: str = ""
    seconds: float = 0.0
    #: geometric mean over the probe nets of (time here / time in the table); None if none was timed
    net_ratio: float | None = None

    @property
    def foreign(self) -> bool:
        return self.verdict == "foreign"

    def summary(self) -> str:
        if self.verdict == "same":
            parts = [f"reference layers at {self.speed_ratio:.2f}x" if self.speed_ratio else ""]
            parts.append(f"whole nets at {self.net_ratio:.2f}x" if self.net_ratio else "")
            said = ", ".join(p for p in parts if p)
            return f"table {self.table} matches this host" + (f" ({said} the table's time)" if said else "")
        what = "was measured on another host" if self.foreign else "could not be checked against this host"
        return f"table {self.table} {what}: {'; '.join(self.reasons)}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons), "foreign": self.foreign}


def build_command(profile: str, space: str | None = None) -> str:
    """The command that builds this host's table for ``profile`` (and ``space``) as a search's first use does:
    about a minute, where measuring every layer of a large space takes a quarter of an hour or more."""
    return f"hwnas lut build --profile {profile} --space {space or 'SPACE'} --first-use"


def reference_figures(table: LatencyTable) -> dict[str, float]:
    """The table's own latency of each reference layer it holds."""
    return {k: table.entries[k].median_ms for k in REFERENCE_LAYERS if k in table.entries}


def measure_signature(
    profile: DeviceProfile,
    keys: tuple[str, ...] | list[str] = REFERENCE_LAYERS,
    rounds: int = ROUNDS,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, float]:
    """Each layer's median latency here (ms), the fastest of ``rounds`` interleaved rounds, under the host's
    measurement lock (the caller must not hold it)."""
    from latency_tables.runtimes import get_runtime
    from latency_tables.signatures import parse_key
    from latency_tables.timing import time_calls

    runtime = get_runtime(profile.runtime)
    runtime.require(profile)
    # a wait for another measurement can be long (a table being built): said to the progress display, else on
    # stderr, never silent
    waiting = (lambda message: progress(0, rounds * len(keys), message)) if progress else None
    with measurement_lock(on_wait=waiting):
        runners = {k: runtime.prepare_layer(parse_key(k), profile) for k in keys}
        best: dict[str, float] = {}
        for r in range(rounds):
            for i, (key, run) in enumerate(runners.items()):
                if progress:
                    progress(r * len(runners) + i, rounds * len(runners), key)
                t = time_calls(run, warmup=5, min_runs=20, min_seconds=0.04, max_seconds=1.0).median_ms
                best[key] = min(best.get(key, math.inf), t)
    return best


def judge_signature(
    table_figures: dict[str, float], here: dict[str, float]
) -> tuple[float, dict[str, float], list[str]]:
    """(geometric mean ratio, per-layer ratios, reasons the table is foreign) for two signatures."""
    ratios = {k: here[k] / v for k, v in table_figures.items() if k in here and v > 0 and here[k] > 0}
    if not ratios:
        return math.nan, {}, []
    mean = math.exp(sum(math.log(r) for r in ratios.values()) / len(ratios))
    reasons = []
    if abs(mean - 1) > MEAN_TOLERANCE:
        reasons.append(
            f"this host runs the reference layers at {mean:.2f}x the table's time "
            f"(tolerance {1 - MEAN_TOLERANCE:.2f}-{1 + MEAN_TOLERANCE:.2f})"
        )
    off = {k: r for k, r in ratios.items() if abs(r - 1) > LAYER_TOLERANCE}
    if off:
        worst = max(off, key=lambda k: abs(math.log(off[k])))
        reasons.append(
            f"{len(off)} of {len(ratios)} reference layers differ by more than {LAYER_TOLERANCE:.0%} "
            f"(worst {worst}: {off[worst]:.2f}x)"
        )
    return mean, ratios, reasons


def checks_path() -> Path:
    from latency_tables.table import user_table_dir

    return user_table_dir() / CHECKS_FILE


def probe_nets(table: LatencyTable) -> list[Any]:
    """The table's end-to-end measured nets the check times: :data:`NET_PROBES` of those at most
    :data:`NET_PROBE_MAX_MS`, spread evenly over their latency (the same ones every time), all of one space
    (the one with the most such nets): a space's calibration nets were measured together, in one session,
    while nets added on another day carry that day's speed."""
    quick_nets = [n for n in table.networks if n.median_ms <= NET_PROBE_MAX_MS]
    if not quick_nets:
        return []
    spaces: dict[str, int] = {}
    for n in quick_nets:
        spaces[n.space] = spaces.get(n.space, 0) + 1
    space = min(spaces, key=lambda k: (-spaces[k], k))
    quick = sorted((n for n in quick_nets if n.space == space), key=lambda n: (n.median_ms, n.arch))
    if len(quick) <= NET_PROBES:
        return quick
    step = (len(quick) - 1) / (NET_PROBES - 1)
    return [quick[round(i * step)] for i in range(NET_PROBES)]


def measure_nets(profile: DeviceProfile, codes: list[str], rounds: int = NET_ROUNDS) -> list[float]:
    """Each net's latency here (ms), the least-disturbed of ``rounds`` interleaved rounds, measured as the
    table's calibration nets were (under the host's measurement lock)."""
    from latency_tables.profiler import interleaved_timings
    from searchspace.architecture import Architecture

    archs = [Architecture.decode(c) for c in codes]
    with measurement_lock():
        return [t.median_ms for t in interleaved_timings(archs, profile, rounds)]


def judge_nets(table_ms: list[float], here_ms: list[float]) -> tuple[float, list[str]]:
    """(geometric mean ratio here / table, reasons the table is foreign) for the probe nets."""
    logs = [math.log(h / t) for t, h in zip(table_ms, here_ms, strict=True) if t > 0 and h > 0]
    if not logs:
        return math.nan, []
    mean = math.exp(sum(logs) / len(logs))
    if abs(mean - 1) <= NET_TOLERANCE:
        return mean, []
    return mean, [
        f"whole nets run at {mean:.2f}x the table's end-to-end figures here ({len(logs)} of the nets it measured; "
        f"tolerance {1 - NET_TOLERANCE:.2f}-{1 + NET_TOLERANCE:.2f}), though its reference layers agree"
    ]


def _cache_key(table: LatencyTable, host: HostInfo) -> str:
    figures = reference_figures(table)
    nets = [(n.arch, n.median_ms) for n in probe_nets(table)]
    return json.dumps([CHECK_VERSION, table.name, figures, nets, host.fingerprint(), boot_id()], sort_keys=True)


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(checks_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


#: this process's verdicts too: where the table folder is read-only, the file cannot keep them
_MEMORY: dict[str, dict[str, Any]] = {}


def cached_check(table: LatencyTable, host: HostInfo | None = None) -> HostCheck | None:
    from latency_tables.profiles import HostInfo

    key = _cache_key(table, host or HostInfo.current())
    entry = _MEMORY.get(key) or _read_cache().get(key)
    if not isinstance(entry, dict):
        return None
    try:
        return HostCheck(**{**entry, "reasons": tuple(entry.get("reasons", ()))})
    except TypeError:
        return None


def _store(table: LatencyTable, host: HostInfo, check: HostCheck) -> None:
    _MEMORY[_cache_key(table, host)] = {k: v for k, v in check.as_dict().items() if k != "foreign"}
    data = _read_cache()
    if len(data) > 200:  # checks of old boots and old tables: keep the file small
        data = dict(list(data.items())[-100:])
    data[_cache_key(table, host)] = {k: v for k, v in check.as_dict().items() if k != "foreign"}
    # a read-only table folder: the check is simply made again next time
    with contextlib.suppress(OSError):
        write_atomic(checks_path(), (json.dumps(data, indent=1) + "\n").encode())


def built_here(table: LatencyTable, host: HostInfo | None = None) -> HostCheck:
    """The verdict on a table this process has just measured on this host: ``same`` by construction, recorded
    for the rest of the boot without timing anything again (re-timed at once, on a busy machine, a table
    could look foreign to the very host that measured it)."""
    from latency_tables.profiles import HostInfo

    host = host or HostInfo.current()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    check = HostCheck(table.name, "same", (), checked=now)
    _store(table, host, check)
    return check


def check_table(
    table: LatencyTable,
    *,
    measure: bool = True,
    host: HostInfo | None = None,
    use_cache: bool = True,
) -> HostCheck:
    """Whether ``table`` describes this host (see the module docstring). ``measure=False`` never times
    anything: the cached signature verdict if there is one, else the fingerprint's."""
    from latency_tables.profiles import HostInfo
    from latency_tables.runtimes import get_runtime

    host = host or HostInfo.current()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    diffs = table.host.differences(host)
    if diffs:
        return HostCheck(table.name, "foreign", tuple(diffs), checked=now)
    if use_cache:
        cached = cached_check(table, host)
        if cached is not None:
            return cached
    figures = reference_figures(table)
    if not figures:
        return HostCheck(table.name, "unverified", ("the table holds none of the reference layers",), checked=now)
    try:
        unavailable = get_runtime(table.profile.runtime).unavailable(table.profile)
    except Exception as exc:  # noqa: BLE001 - an unknown runtime: nothing here can measure it
        unavailable = str(exc)
    if unavailable:
        return HostCheck(
            table.name, "unverified", (f"this host cannot run {table.profile.id}: {unavailable}",), checked=now
        )
    if not measure:
        return HostCheck(table.name, "unverified", ("the speed signature was not measured yet",), checked=now)
    start = time.perf_counter()
    here = measure_signature(table.profile, list(figures))
    mean, ratios, reasons = judge_signature(figures, here)
    if reasons:  # a busy moment can look like another host: measure once more, keep each layer's faster time
        again = measure_signature(table.profile, list(figures))
        here = {k: min(v, again.get(k, v)) for k, v in here.items()}
        mean, ratios, reasons = judge_signature(figures, here)
    net_ratio = None
    probes = probe_nets(table)
    if probes and not reasons:  # the layers agree: do whole nets?
        try:
            here_nets = measure_nets(table.profile, [n.arch for n in probes])
        except Exception as exc:  # noqa: BLE001 - a net this hwnas cannot rebuild or run: the layers decide
            _log.warning("host check of %s: its nets could not be timed here (%s); the layers decide", table.name, exc)
        else:
            recorded = [n.median_ms for n in probes]
            net_ratio, net_reasons = judge_nets(recorded, here_nets)
            if net_reasons:  # as for the layers, a busy moment is not another host: once more, the faster time
                with contextlib.suppress(Exception):
                    retimed = measure_nets(table.profile, [n.arch for n in probes])
                    here_nets = [min(a, b) for a, b in zip(here_nets, retimed, strict=True)]
                    net_ratio, net_reasons = judge_nets(recorded, here_nets)
            reasons = reasons + net_reasons
    check = HostCheck(
        table.name,
        "foreign" if reasons else "same",
        tuple(reasons),
        speed_ratio=mean,
        layer_ratios=ratios,
        checked=now,
        seconds=time.perf_counter() - start,
        net_ratio=None if net_ratio is None or math.isnan(net_ratio) else net_ratio,
    )
    _store(table, host, check)
    return check


# ------------------------------------------------------------ layers measured later, in the table's terms
#: reference layers re-timed around a batch of layers measured on demand (the four quickest to time)
DRIFT_PROBE = REFERENCE_LAYERS[:4]
#: a drift this small (geometric mean) is left alone: it is within the probe's own noise
DRIFT_MIN = 0.02


def measure_in_table_terms(table: LatencyTable, layers: list[Any], path: Path | None) -> float:
    """Measure ``layers`` into ``table`` (this host's) as the table's own figures would have been measured.

    A table's layers and its calibration nets are measured together; layers a
    search meets later are measured minutes or days after, while the machine
    runs a few percent faster or slower (or beside busy workers). So the
    reference layers the table holds are re-timed just before and after the
    batch, and the batch's new entries are scaled by the table's figures for
    them over the ones just measured (left alone within :data:`DRIFT_MIN`, and
    never by more than 2x). Returns the ratio applied (1.0 for none).
    """
    from latency_tables.profiler import build_table

    figures = {k: v for k, v in reference_figures(table).items() if k in DRIFT_PROBE}
    fresh = [lyr for lyr in layers if lyr.key not in table.entries]
    if not figures or not fresh:
        build_table(table, layers, path)
        return 1.0
    before = measure_signature(table.profile, list(figures), rounds=1)
    build_table(table, layers, path)
    after = measure_signature(table.profile, list(figures), rounds=1)
    logs = [math.log(figures[k] / t) for probe in (before, after) for k, t in probe.items() if t > 0]
    ratio = math.exp(sum(logs) / len(logs)) if logs else 1.0
    if abs(ratio - 1) <= DRIFT_MIN:
        return 1.0
    ratio = min(2.0, max(0.5, ratio))
    for lyr in fresh:
        e = table.entries.get(lyr.key)
        if e is not None:
            table.entries[lyr.key] = e.model_copy(
                update={"median_ms": e.median_ms * ratio, "p10_ms": e.p10_ms * ratio, "p90_ms": e.p90_ms * ratio}
            )
    if path is not None:
        table.save(path)
    return ratio
