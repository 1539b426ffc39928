"""This host's table, built on first use: what a search does before it predicts its first latency.

A table shipped with hwnas, or measured on another VM of the "same" kind,
can be wrong by 20% per net (or 2x) and nothing in its name tells. So when
a search needs a profile this host can run, :func:`ensure_host_table`:

1. takes the table of this host if one passes the host check
   (:mod:`latency_tables.host`) and recorded its host's fingerprint: a
   shipped table (or a copy of one) recorded only the CPU's label, and even
   where it passes the check it predicted 30-90% of nets within 10% on a VM
   of its kind, against 100% for a table built there in ~35 s
   (benchmarks/results/latency-host-*-here.json);
2. otherwise starts one in the user table folder (a user table that turned
   out foreign is set aside into ``replaced/``, the shipped one is never
   touched);
3. measures what the space needs that the table lacks: every layer of the
   space where it has at most :data:`FULL_COVER_MAX_LAYERS` of them (the
   MobileNetV2 and FBNet spaces: a few hundred), else the layers of the
   calibration nets, the rest measured as a search meets them; plus the
   reference layers of the speed signature;
4. measures ``calibrate`` random nets of the space end to end and fits the
   calibration, unless the table already has that many of the space.

The result is saved as it goes and shared by every later job on this host.
Two jobs starting together on a new host take turns (a lock per profile in
the user table folder): the second waits, saying so through ``progress``,
then finds the table the first built and measures only what it still lacks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latency_tables.api import layers_to_cover, not_this_hosts, table_to_extend
from latency_tables.errors import LatencyTableError
from latency_tables.host import HostCheck, built_here, check_table
from latency_tables.portable import file_lock
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.table import LatencyTable, find_table, user_table_dir

if TYPE_CHECKING:
    from searchspace.spec import SearchSpace

#: a space with at most this many distinct layers is measured whole on first use (mobilenetv2: 258,
#: fbnet-cifar: 418); larger ones (mobiledet-cifar: 6,740) get their calibration nets' layers, the rest on demand
FULL_COVER_MAX_LAYERS = 1000
#: calibration nets measured per space on first use
FIRST_USE_NETS = 20
#: interleaved rounds per calibration net on first use
FIRST_USE_ROUNDS = 2

#: ``progress(done, total, what)``
Progress = Callable[[int, int, str], None]
#: what ``progress`` is told while another process builds this profile's table
WAITING = "waiting for another job building this host's table"


@dataclass(frozen=True)
class HostTable:
    """What :func:`ensure_host_table` found or built."""

    path: Path
    table: LatencyTable
    check: HostCheck
    #: the table it replaced as the one to use, and why (None when it kept using the one it found)
    replaced: str | None
    layers_measured: int
    nets_measured: int
    seconds: float

    @property
    def built(self) -> bool:
        return bool(self.layers_measured or self.nets_measured)

    def summary(self) -> str:
        if not self.built:
            return f"latency table {self.table.name} ({self.path}): {self.check.summary()}"
        why = f" instead of {self.replaced}" if self.replaced else ""
        return (
            f"built this host's latency table {self.table.name}{why}: {self.layers_measured} layers and "
            f"{self.nets_measured} calibration nets measured in {self.seconds:.0f} s -> {self.path}"
        )


def _space(space: str | dict[str, Any] | SearchSpace) -> tuple[str, SearchSpace]:
    from searchspace.spec import SearchSpace, load_space

    loaded = space if isinstance(space, SearchSpace) else load_space(space)
    return (space if isinstance(space, str) else loaded.name), loaded


def ensure_host_table(
    profile: str | DeviceProfile,
    space: str | dict[str, Any] | SearchSpace,
    *,
    resolution: int | None = None,
    calibrate: int = FIRST_USE_NETS,
    seed: int = 0,
    progress: Progress | None = None,
) -> HostTable:
    """This host's table for ``profile``, covering ``space`` (a name, a spec or a loaded space; see the module
    docstring).

    Raises :class:`RuntimeUnavailableError` where this host cannot run ``profile`` (a CUDA profile without a
    GPU): there the caller uses the table it has, flagged by its host check.
    """
    from latency_tables.kit import calibration_archs
    from latency_tables.predictor import LatencyPredictor
    from latency_tables.profiler import build_table, check_available, measure_networks

    start = time.perf_counter()
    prof = profile if isinstance(profile, DeviceProfile) else DeviceProfile.parse(profile)
    check_available(prof)
    name, loaded = _space(space)

    def waiting() -> None:
        if progress:
            progress(0, 1, WAITING)

    with file_lock(user_table_dir() / f".first-use-{prof.id}.lock", waiting, abandonable=True):
        host = HostInfo.current()
        replaced = None
        found_path: Path | None = None
        try:
            found_path, found = find_table(prof, host)
            why = not_this_hosts(found, host, unrecorded=False)  # a shipped table is never this machine's
            replaced = f"{found.name}, which {why}" if why else None
        except LatencyTableError:
            pass
        path, table = table_to_extend(prof, host=host, unrecorded=False)
        layers = layers_to_cover([loaded], resolution=resolution, reference=True)
        nets = calibration_archs([loaded], calibrate, seed, resolution) if calibrate else []
        nets = [(name, a) for _, a in nets]
        if len(layers) > FULL_COVER_MAX_LAYERS:
            layers = layers_to_cover(archs=[a for _, a in nets], reference=True)
        measured = build_table(table, layers.values(), path, progress=progress)
        have = sum(1 for n in table.networks if n.space == name)
        new_nets = 0
        if nets and have < len(nets):
            new_nets = measure_networks(table, nets, path, progress=progress, rounds=FIRST_USE_ROUNDS)
            LatencyPredictor(table, path, missing="measure", space=name).calibrate()
            table.save(path)
        elif measured and not path.exists():
            table.save(path)
        if not path.exists() and found_path is not None:
            path = found_path  # this host's table as found (e.g. the shipped one, on its own host), nothing added
        # measured here just now: this host's by construction (timing it again at once, on a busy machine, could
        # make it look foreign to the host that measured it); recorded before the lock is let go, or a job
        # waiting for it would time the table itself first; a table found and kept was checked above
        check = built_here(table, host) if (measured or new_nets) else check_table(table, host=host)
    return HostTable(
        path=path,
        table=table,
        check=check,
        replaced=replaced if (measured or new_nets) else None,
        layers_measured=measured,
        nets_measured=new_nets,
        seconds=time.perf_counter() - start,
    )
