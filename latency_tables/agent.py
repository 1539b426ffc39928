"""The device agent: measure a latency kit on a machine the service cannot reach.

    python -m latency_tables.agent kit.zip --profile ort-cpu-fp32-t1 -o table.json.gz

It runs where only the Python standard library, numpy and onnxruntime exist
(a phone, a Jetson, a Raspberry Pi), so it imports nothing of hwnas but
:mod:`latency_tables.timing` and :mod:`latency_tables.portable` (the kit carries them; ``python kit.zip``
works too). It measures exactly as the profiler does: the call overhead,
every layer of the kit in ``--passes`` passes keeping the least-disturbed
one, the calibration nets in interleaved ``--rounds``, each through an
IOBinding with a preallocated output. It writes a latency table
(``hwnas.latency-table`` version 1, gzipped if the name ends in ``.gz``)
every ~10 s and on Ctrl-C; run the same command again to resume. Take the
table home with ``hwnas lut import table.json.gz``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latency_tables.portable import (
    PROFILE_ID,
    PROFILE_ID_FORM,
    PROVIDERS,
    bound_runner,
    cpu_fingerprint,
    cpu_model,
    format_profile_id,
    gpu_names,
    measurement_lock,
    write_atomic,
)
from latency_tables.portable import host_slug as portable_slug
from latency_tables.timing import time_calls

KIT_FORMAT = "hwnas.latency-kit"
KIT_VERSION = 1
TABLE_FORMAT = "hwnas.latency-table"
TABLE_VERSION = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
PROG = "hwnas-agent"

Profile = dict[str, Any]
Table = dict[str, Any]


class AgentError(Exception):
    """A user error with a message fit for one line (exit code 2, no traceback)."""


# ---------------------------------------------------------------- profiles
def parse_profile(text: str) -> Profile:
    """A profile id as the dict :class:`latency_tables.profiles.DeviceProfile` dumps (no pydantic here)."""
    m = PROFILE_ID.match(text.strip())
    if not m:
        raise AgentError(f"{text!r} is not a profile id; expected {PROFILE_ID_FORM}")
    return {
        "runtime": m["runtime"],
        "provider": m["provider"],
        "precision": m["precision"],
        "threads": int(m["threads"]),
        "batch": int(m["batch"] or 1),
    }


def profile_id(p: Profile) -> str:
    return format_profile_id(p["runtime"], p["provider"], p["precision"], p["threads"], p["batch"])


def resolve_profile(kit_profile: Profile, wanted: str | None, threads: int | None) -> Profile:
    """The profile to measure: the kit's, or ``wanted`` where the kit's graphs allow it; ``threads`` overrides."""
    prof = dict(kit_profile) if wanted is None else parse_profile(wanted)
    kit_id = profile_id(kit_profile)
    if prof["runtime"] != "ort":
        raise AgentError(f"profile {profile_id(prof)}: this agent measures onnxruntime ('ort') profiles only")
    if prof["precision"] != kit_profile["precision"]:
        raise AgentError(
            f"profile {profile_id(prof)} wants {prof['precision']} but the kit holds {kit_profile['precision']} graphs "
            f"(kit profile {kit_id}); export a {prof['precision']} kit with: hwnas lut export-kit --profile "
            f"{profile_id(prof)} ..."
        )
    if prof["batch"] != kit_profile["batch"]:
        raise AgentError(
            f"profile {profile_id(prof)} wants batch {prof['batch']} but the kit's graphs have batch "
            f"{kit_profile['batch']} (kit profile {kit_id}); export a kit for batch {prof['batch']}"
        )
    if threads is not None:
        if threads < 1:
            raise AgentError(f"--threads must be >= 1, got {threads}")
        prof["threads"] = threads
    return prof


# ---------------------------------------------------------------- host
def host_info(ort_version: str) -> dict[str, Any]:
    """This machine as :class:`latency_tables.profiles.HostInfo` describes one, from the standard library."""
    versions = {"python": platform.python_version(), "onnxruntime": ort_version, "numpy": np.__version__}
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "machine": platform.machine(),
        "system": platform.system(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        **cpu_fingerprint(),
    }


def host_slug(host: dict[str, Any]) -> str:
    """The file-name-safe host name ``HostInfo.slug`` makes, e.g. ``amd-epyc-2c``."""
    return portable_slug(str(host["cpu"]), int(host["cores"]))


# ---------------------------------------------------------------- kit
class Kit:
    """A kit zip: its manifest, checked, and its files read on demand."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise AgentError(f"kit {path} does not exist") from None
        except IsADirectoryError:
            raise AgentError(f"kit {path} is a directory, not a kit zip") from None
        except OSError as exc:
            raise AgentError(f"cannot read kit {path}: {exc.strerror or exc}") from None
        except zipfile.BadZipFile:
            raise AgentError(f"{path} is not a kit (not a zip file); make one with: hwnas lut export-kit") from None
        try:
            manifest = json.loads(self.zip.read("manifest.json"))
        except KeyError:
            raise AgentError(f"{path} is not a kit (no manifest.json); make one with: hwnas lut export-kit") from None
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise AgentError(f"{path}: unreadable manifest.json: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != KIT_FORMAT:
            raise AgentError(f"{path} is not a {KIT_FORMAT} (manifest format {_get(manifest, 'format')!r})")
        version = manifest.get("version")
        if version != KIT_VERSION:
            hint = (
                (
                    "upgrade the agent (copy latency_tables/agent.py from the hwnas that made the kit, or run "
                    "python kit.zip)"
                )
                if isinstance(version, int) and version > KIT_VERSION
                else "export the kit again"
            )
            raise AgentError(
                f"{path}: kit format version {version!r} is not supported (this agent reads {KIT_VERSION}); {hint}"
            )
        try:
            self.profile: Profile = parse_profile(profile_id(manifest["profile"]))
            self.layers = [(str(i["key"]), str(i["file"]), _shape(i["input_shape"])) for i in manifest["layers"]]
            self.networks = [
                (str(n["arch"]), str(n.get("space", "")), str(n["file"]), _shape(n["input_shape"]))
                for n in manifest.get("networks", [])
            ]
            overhead = manifest.get("overhead") or {}
            self.overhead = (str(overhead["file"]), _shape(overhead["input_shape"])) if overhead else None
            self.spaces = [str(s["name"]) for s in manifest.get("spaces", [])]
            self.min_onnxruntime = str(manifest.get("min_onnxruntime", "0"))
        except (KeyError, TypeError, ValueError, AgentError) as exc:
            raise AgentError(f"{path}: malformed kit manifest ({type(exc).__name__}: {exc})") from None

    def read(self, name: str) -> bytes:
        try:
            return self.zip.read(name)
        except (KeyError, zipfile.BadZipFile, OSError) as exc:
            raise AgentError(f"kit {self.path}: cannot read {name}: {exc}") from None


def _get(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _version(text: str) -> tuple[int, ...]:
    """'1.16.3' -> (1, 16, 3); stops at the first part that is not a number ('1.17.0rc1' -> (1, 17))."""
    out = []
    for part in text.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def _shape(value: Any) -> tuple[int, ...]:
    shape = tuple(int(v) for v in value)
    if not shape or any(v < 1 for v in shape):
        raise ValueError(f"bad input shape {value!r}")
    return shape


# ---------------------------------------------------------------- the table file
def new_table(profile: Profile, host: dict[str, Any], kit: Kit) -> Table:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    note = (
        f"Measured on {host['cpu']} ({host['cores']} cores, {host['machine']}, {host['system']}) with onnxruntime "
        f"{host['versions']['onnxruntime']} by the hwnas device agent (kit of {', '.join(kit.spaces) or 'layers'}): "
        "these latencies describe that host."
    )
    return {
        "format": TABLE_FORMAT,
        "version": TABLE_VERSION,
        "profile": profile,
        "host": host,
        "note": note,
        "created": now,
        "updated": "",
        "call_overhead_ms": 0.0,
        "entries": {},
        "networks": [],
    }


def load_table(path: Path, profile: Profile, host: dict[str, Any]) -> Table | None:
    """The unfinished table at ``path`` to resume (None if there is none); refuses another profile or host."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AgentError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    except (OSError, ValueError, EOFError) as exc:
        raise AgentError(
            f"{path} exists but is not a JSON latency table ({exc}); move it away or choose another -o"
        ) from None
    if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT or data.get("version") != TABLE_VERSION:
        raise AgentError(f"{path} exists but is not a {TABLE_FORMAT} version {TABLE_VERSION}; choose another -o")
    try:
        theirs = parse_profile(profile_id(data["profile"]))
        entries, networks = data["entries"], data["networks"]
        if not isinstance(entries, dict) or not isinstance(networks, list):
            raise TypeError("entries must be an object and networks a list")
        for e in entries.values():
            float(e["median_ms"]), int(e.get("passes", 1))
        for n in networks:
            str(n["arch"]), float(n["median_ms"]), int(n.get("rounds", 1))
        old_host = data["host"]
    except (KeyError, TypeError, ValueError, AgentError) as exc:
        raise AgentError(f"{path}: malformed latency table ({type(exc).__name__}: {exc}); choose another -o") from None
    if theirs != profile:
        raise AgentError(f"{path} holds a {profile_id(theirs)} table, not {profile_id(profile)}; choose another -o")
    diffs = [
        f"{k}: {old_host.get(k)!r} vs {host[k]!r}" for k in ("cpu", "cores", "machine") if old_host.get(k) != host[k]
    ]
    if diffs:
        raise AgentError(f"{path} was measured on another host ({'; '.join(diffs)}); choose another -o")
    return data


def save_table(table: Table, path: Path) -> None:
    """Write atomically (temp file + rename); gzip when the name ends in .gz (no timestamp in the header)."""
    table["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    text = json.dumps(table, indent=1).encode("utf-8")
    blob = gzip.compress(text, mtime=0) if path.name.endswith(".gz") else text
    write_atomic(path, blob)


# ---------------------------------------------------------------- measuring
def _runner(ort: Any, kit: Kit, file: str, shape: tuple[int, ...], profile: Profile, what: str) -> Callable[[], object]:
    data = kit.read(file)
    try:
        return bound_runner(data, shape, profile["provider"], profile["threads"])
    except Exception as exc:  # onnxruntime raises its own types (Fail, InvalidGraph, ...) for graphs it cannot run
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AgentError(f"onnxruntime {ort.__version__} cannot run {what} ({file}): {first[:300]}") from None


class ProgressLine:
    """One status line with ETA on stderr (rewritten in place on a terminal, a line every 10 s otherwise)."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = 0.5 if self.tty else 10.0
        self.start = time.monotonic()
        self.last = float("-inf")

    def __call__(self, done: int, item: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        elapsed = now - self.start
        eta = f"{elapsed / done * (self.total - done):.0f}s" if done else "?"
        pct = 100.0 * done / self.total if self.total else 100.0
        line = f"{PROG}: {done}/{self.total} {pct:5.1f}% {elapsed:.0f}s elapsed, ETA {eta}  {item[:60]}"
        if self.tty:
            print("\r" + line.ljust(120), end="", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)


def measure(
    kit: Kit,
    table: Table,
    out: Path,
    profile: Profile,
    ort: Any,
    passes: int,
    rounds: int,
    limit: int | None,
    save_every_s: float = 10.0,
    min_gap_s: float = 5.0,
) -> tuple[int, bool]:
    """Measure what ``table`` lacks; return (measurements made, finished). Saves as it goes and on Ctrl-C.

    Layers go pass after pass, so a layer's passes are a whole pass apart (at
    least ``min_gap_s``, as in the profiler) and fall in different
    interference regimes; sessions are made again for each pass, which
    without quantization costs little and keeps memory small on a device.
    """
    entries: dict[str, dict[str, Any]] = table["entries"]
    networks: list[dict[str, Any]] = table["networks"]
    index = {n["arch"]: i for i, n in enumerate(networks)}
    layer_work = [
        (k, key, file, shape)
        for k in range(1, passes + 1)
        for key, file, shape in kit.layers
        if (e := entries.get(key)) is None or int(e.get("passes", 1)) < k
    ]
    net_work = [
        (r, arch, space, file, shape)
        for r in range(1, rounds + 1)
        for arch, space, file, shape in kit.networks
        if arch not in index or int(networks[index[arch]].get("rounds", 1)) < r
    ]
    total = len(layer_work) + len(net_work)
    if limit is not None:
        total = min(total, limit)
    done = 0
    last_save = time.monotonic()
    pass_started: dict[int, float] = {}

    def checkpoint() -> None:
        nonlocal last_save
        if time.monotonic() - last_save > save_every_s:
            save_table(table, out)
            last_save = time.monotonic()

    with measurement_lock(prog=PROG):
        progress = ProgressLine(total)  # after the wait for the lock, so the ETA counts measuring only
        try:
            if kit.overhead is not None and (total or not table.get("call_overhead_ms")):
                file, shape = kit.overhead
                run = _runner(ort, kit, file, shape, profile, "the call-overhead graph")
                table["call_overhead_ms"] = time_calls(run, warmup=50, min_runs=200, min_seconds=0.2).median_ms
            for k, key, file, shape in layer_work:
                if done >= total:
                    break
                if k not in pass_started:
                    wait = min_gap_s - (time.monotonic() - pass_started.get(k - 1, float("-inf")))
                    if wait > 0:
                        progress(done, f"pass {k}/{passes}: {wait:.0f}s apart from pass {k - 1}", force=True)
                        time.sleep(wait)
                    pass_started[k] = time.monotonic()
                progress(done, f"pass {k}/{passes} {key}")
                run = _runner(ort, kit, file, shape, profile, f"layer {key}")
                t = time_calls(run).as_dict()
                del run
                old = entries.get(key)
                if old is None:
                    entries[key] = {**t, "passes": 1}
                else:
                    best = old if float(old["median_ms"]) <= t["median_ms"] else {**t}
                    entries[key] = {**best, "passes": int(old.get("passes", 1)) + 1}
                done += 1
                checkpoint()
            for r, arch, space, file, shape in net_work:
                if done >= total:
                    break
                progress(done, f"round {r}/{rounds} net {index.get(arch, len(index)) + 1}/{len(kit.networks)}")
                run = _runner(ort, kit, file, shape, profile, f"calibration net {file}")
                t = time_calls(run, warmup=5, min_runs=20, min_seconds=0.3, max_seconds=10.0).as_dict()
                del run
                got = {"arch": arch, "space": space, **t, "rounds": 1}
                if arch not in index:
                    index[arch] = len(networks)
                    networks.append(got)
                else:
                    old = networks[index[arch]]
                    best = old if float(old["median_ms"]) <= t["median_ms"] else got
                    networks[index[arch]] = {**best, "rounds": int(old.get("rounds", 1)) + 1}
                done += 1
                checkpoint()
            progress(done, "", force=True)
        finally:
            progress.close()
            save_table(table, out)
    finished = done == len(layer_work) + len(net_work)
    return done, finished


# ---------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m latency_tables.agent",
        description="Measure an hwnas latency kit on this device and write a latency table "
        "(resumable: run the same command again after an interruption).",
    )
    p.add_argument("kit", help="the kit zip made by: hwnas lut export-kit")
    p.add_argument(
        "--profile",
        help="profile id to measure, e.g. ort-cpu-fp32-t4 (default: the kit's); "
        "its precision and batch must be the kit's",
    )
    p.add_argument("-o", "--output", help="table file (default: <profile>@<host>.json.gz here); resumed if it exists")
    p.add_argument("--threads", type=int, help="intra-op threads (overrides the profile's)")
    p.add_argument("--passes", type=int, default=2, help="measurements per layer at different times (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per calibration net (default 3)")
    p.add_argument("--limit", type=int, help="stop after this many measurements (run again to continue)")
    return p


def _run(args: argparse.Namespace) -> int:
    for name in ("passes", "rounds", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise AgentError(f"--{name} must be >= 1, got {value}")
    kit = Kit(args.kit)
    try:
        return _measure_kit(args, kit)
    finally:
        kit.zip.close()


def _measure_kit(args: argparse.Namespace, kit: Kit) -> int:
    profile = resolve_profile(kit.profile, args.profile, args.threads)
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise AgentError(f"onnxruntime is not importable here ({exc}); install it: pip install onnxruntime") from None
    if _version(ort.__version__) < _version(kit.min_onnxruntime):
        raise AgentError(
            f"the kit's graphs need onnxruntime >= {kit.min_onnxruntime}, this is {ort.__version__}; "
            "upgrade it: pip install -U onnxruntime"
        )
    wanted = PROVIDERS[profile["provider"]]
    if wanted not in ort.get_available_providers():
        raise AgentError(f"onnxruntime here has no {wanted} (available: {', '.join(ort.get_available_providers())})")
    host = host_info(ort.__version__)
    if profile["provider"] == "cuda":  # a CUDA table's latencies are the GPU's: record which (HostInfo.gpus)
        host["gpus"] = gpu_names()
    out = Path(args.output or f"{profile_id(profile)}@{host_slug(host)}.json.gz")
    table = load_table(out, profile, host)
    resumed = table is not None
    if table is None:
        table = new_table(profile, host, kit)
    print(
        f"{PROG}: {profile_id(profile)} on {host['cpu']} ({host['cores']} cores): {len(kit.layers)} layers, "
        f"{len(kit.networks)} calibration nets" + (f"; resuming {out}" if resumed else f" -> {out}"),
        file=sys.stderr,
    )
    try:
        done, finished = measure(kit, table, out, profile, ort, args.passes, args.rounds, args.limit)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; progress saved to {out}; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not finished:
        print(
            f"{PROG}: stopped after {done} measurements (--limit); saved to {out}; run again to continue",
            file=sys.stderr,
        )
        return 0
    print(
        f"{PROG}: done: {len(table['entries'])} layers, {len(table['networks'])} nets in {out}; "
        f"bring it home and run: hwnas lut import {out.name}",
        file=sys.stderr,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except AgentError as exc:
        message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"{PROG}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
