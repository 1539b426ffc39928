"""What the device agent shares with the host side: standard library, numpy and onnxruntime only.

The kit ships this file to devices next to ``agent.py`` and ``timing.py``;
the profiler and the onnxruntime runtime use it too, so a layer is bound,
timed, locked and its host described the same way on both sides.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import IO

import numpy as np

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
#: a device profile id: ``ort-cpu-fp32-t1``, ``-b8`` appended for batch 8
PROFILE_ID = re.compile(
    r"^(?P<runtime>[a-z0-9]+)-(?P<provider>cpu|cuda)-(?P<precision>fp32|int8)-t(?P<threads>\d+)(?:-b(?P<batch>\d+))?$"
)
#: how to write one, for error messages
PROFILE_ID_FORM = "<runtime>-<cpu|cuda>-<fp32|int8>-t<threads>[-b<batch>], e.g. ort-cpu-fp32-t1"


def format_profile_id(runtime: str, provider: str, precision: str, threads: int, batch: int) -> str:
    """The id :data:`PROFILE_ID` reads back."""
    suffix = f"-b{batch}" if batch != 1 else ""
    return f"{runtime}-{provider}-{precision}-t{threads}{suffix}"


def cpuinfo_fields() -> dict[str, str]:
    """The first value of each field of /proc/cpuinfo (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                name, sep, value = line.partition(":")
                if sep and value.strip():
                    fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The CPU's name: x86 'model name', else the board (Jetson, Raspberry Pi), else what platform says."""
    fields = cpuinfo_fields()
    if "model name" in fields:
        return fields["model name"]
    try:
        with open("/proc/device-tree/model", encoding="utf-8", errors="replace") as fh:
            board = fh.read().strip("\x00 \n")
        if board:
            return board
    except OSError:
        pass
    for name in ("Model", "Hardware", "cpu model", "Processor"):
        if name in fields:
            return fields[name]
    return platform.processor() or platform.machine() or "unknown"


#: instruction-set flags that change how fast inference kernels run (x86 and Arm names as /proc/cpuinfo has them)
SPEED_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimddp", "asimdhp", "i8mm", "bf16", "sve", "sve2",
)  # fmt: skip


def cpu_fingerprint() -> dict[str, object]:
    """What tells two CPUs of one label apart: vendor, family / model / stepping, microcode, the speed-relevant
    instruction-set flags and the cache sizes (Linux: /proc/cpuinfo and sysfs; elsewhere empty fields)."""
    fields = cpuinfo_fields()
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    caches: dict[str, str] = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")) if base.is_dir() else []:
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        name = f"L{level}" + {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches[name] = size
    return {
        "vendor": fields.get("vendor_id") or fields.get("CPU implementer", ""),
        "family": fields.get("cpu family") or fields.get("CPU architecture", ""),
        "model_number": fields.get("model") or fields.get("CPU part", ""),
        "stepping": fields.get("stepping") or fields.get("CPU revision", ""),
        "microcode": fields.get("microcode", ""),
        "flags": sorted(f for f in SPEED_FLAGS if f in flags),
        "caches": caches,
    }


def gpu_names(timeout: float = 5.0) -> list[str]:
    """Each NVIDIA GPU as "name, driver version, memory" (``nvidia-smi``), in index order; empty where there is
    no driver, no GPU, or the query fails. Only what a CUDA table's latencies depend on is asked for."""
    import shutil
    import subprocess

    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [", ".join(part.strip() for part in line.split(",")) for line in out.splitlines() if line.strip()]


def boot_id() -> str:
    """This boot of this machine (Linux; empty elsewhere): a VM moved to another host comes back with a new one."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def host_slug(cpu: str, cores: int) -> str:
    """A file-name-safe name for a host kind, e.g. ``amd-epyc-2c``."""
    words = re.sub(r"\(.*?\)|@.*$|\bcpu\b|\bprocessor\b", " ", cpu.lower())
    base = "-".join(re.findall(r"[a-z0-9]+", words))[:40].strip("-") or "host"
    return f"{base}-{cores}c"


def bound_runner(data: bytes, input_shape: tuple[int, ...], provider: str, threads: int) -> Callable[[], object]:
    """One inference of an ONNX model on a fixed input, with input and a preallocated output bound once.

    So a timed call is the inference alone: session.run's per-call output
    allocation and copy would add a fixed cost to every layer measured,
    which no layer pays inside a whole net.
    """
    import onnxruntime as ort

    ort.disable_telemetry_events()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(data, opts, providers=[PROVIDERS[provider]])
    x = np.random.default_rng(0).random(input_shape, dtype=np.float32)
    device = "cuda" if provider == "cuda" else "cpu"
    binding = session.io_binding()
    binding.bind_ortvalue_input("input", ort.OrtValue.ortvalue_from_numpy(x, device, 0))
    name = session.get_outputs()[0].name
    binding.bind_output(name, device)
    session.run_with_iobinding(binding)
    binding.bind_ortvalue_output(name, binding.get_outputs()[0])
    if device == "cuda":
        binding.synchronize_inputs()
    return lambda: session.run_with_iobinding(binding)


def write_atomic(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` through a temp file renamed into place: never a half-written table."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a table is data to share, not a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def lock_path() -> Path:
    return Path(os.environ.get("HWNAS_MEASURE_LOCK", "/tmp/hwnas-measure.lock"))


def _open_lock(path: Path) -> IO[str] | None:
    """The lock file, created if missing and left writable by everyone (a table folder may be shared); read-only
    where it cannot be written (flock works on that too); None where it cannot be opened at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            return open(path)  # noqa: SIM115 - closed by file_lock
        except OSError:
            return None
    with suppress(OSError):  # the umask took write access from other users; only the owner may give it back
        os.fchmod(fd, 0o666)
    return os.fdopen(fd, "r+")


#: seconds between two tries of a lock held elsewhere, where the wait may be given up (:func:`abandonable_waits`)
LOCK_POLL_SECONDS = 0.2
_GIVE_UP: ContextVar[Callable[[], None] | None] = ContextVar("hwnas_lock_give_up", default=None)


@contextmanager
def abandonable_waits(check: Callable[[], None]) -> Iterator[None]:
    """Inside this (in this thread), a wait for the host's long locks (:func:`measurement_lock`,
    :func:`compute_slot`, a :func:`file_lock` taken with ``abandonable=True`` such as first use's) tries again
    every :data:`LOCK_POLL_SECONDS` and calls ``check()`` in between: what it raises ends the wait, the lock not
    taken, and goes up to the caller.

    Such a wait can last as long as another job's table build or training run: a search asked to stop (its
    worker told to shut down) must not sit in it until then, unable to give its job back. The short locks
    that guard a file being written (a table's save) still wait: giving up there would lose what was measured.
    """
    token = _GIVE_UP.set(check)
    try:
        yield
    finally:
        _GIVE_UP.reset(token)


def _flock(fh: IO[str], mode: int) -> None:
    """``fcntl.flock(fh, mode)``, waiting as long as it takes; polled where :func:`abandonable_waits` is in
    force, so that its check can end the wait."""
    import fcntl

    check = _GIVE_UP.get()
    if check is None:
        fcntl.flock(fh, mode)
        return
    while True:
        try:
            fcntl.flock(fh, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            check()
            time.sleep(LOCK_POLL_SECONDS)


@contextmanager
def file_lock(
    path: Path, on_wait: Callable[[], None] | None = None, abandonable: bool = False
) -> Iterator[IO[str] | None]:
    """Hold an exclusive lock on ``path`` (created if missing), calling ``on_wait()`` once if another process
    (or another open of it in this one) holds it, then waiting (``abandonable``: a wait that
    :func:`abandonable_waits` may end). Yields the open lock file (read-only where it
    could not be opened for writing), or None where it could not be opened at all (a read-only folder without
    it: nothing can be written beside it either, so there is nothing to guard). Where fcntl does not exist
    (Windows) it only opens the file: nothing else of hwnas runs beside it there."""
    fh = _open_lock(path)
    if fh is None:
        yield None
        return
    with fh:
        try:
            import fcntl
        except ImportError:
            yield fh
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            if abandonable:
                _flock(fh, fcntl.LOCK_EX)
            else:
                fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _gate_path() -> Path:
    """Where measurements queue, and where computations wait while one is queued or measuring."""
    path = lock_path()
    return path.with_name(path.name + ".gate")


class _Slot(threading.local):
    """This thread's compute slot: the open lock file holding its shared lock, and the nesting depth."""

    fh: IO[str] | None = None
    depth: int = 0


_SLOT = _Slot()


@contextmanager
def compute_slot() -> Iterator[None]:
    """Compute (a proxy, a training run) without disturbing a measurement on this host.

    A computation holds a shared lock on the measurement lock file while it
    runs; a measurement holds it exclusively. So a measurement waits for the
    computations under way to end, and no new one starts until it is done:
    on a 2-core host a worker training beside a table being built makes
    every layer it measures slower, and the table wrong for that host. A
    measurement first takes the gate (a second lock file) so that a stream of
    computations cannot keep it waiting forever: a computation passes the gate
    before it takes its share. Nested calls (in one thread) hold one share; where fcntl does not
    exist (Windows) it does nothing.
    """
    if _SLOT.depth:
        _SLOT.depth += 1
        try:
            yield
        finally:
            _SLOT.depth -= 1
        return
    try:
        import fcntl
    except ImportError:
        yield
        return
    fh = _open_lock(lock_path())
    if fh is None:  # nowhere to lock: nothing measures here either
        yield
        return
    with fh:
        gate = _open_lock(_gate_path())
        if gate is not None:
            with gate:  # wait while a measurement is queued or measuring
                _flock(gate, fcntl.LOCK_SH)
                fcntl.flock(gate, fcntl.LOCK_UN)
        _flock(fh, fcntl.LOCK_SH)
        _SLOT.fh, _SLOT.depth = fh, 1
        try:
            yield
        finally:
            _SLOT.fh, _SLOT.depth = None, 0
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _own_slot_released() -> Iterator[None]:
    """This thread's own compute slot given up while it measures (its shared lock would block its own
    exclusive one), and taken back after."""
    fh = _SLOT.fh
    if fh is None:
        yield
        return
    import fcntl

    fcntl.flock(fh, fcntl.LOCK_UN)
    try:
        yield
    finally:
        # given up (a stop), the slot is simply not held again: compute_slot's own release stays harmless
        _flock(fh, fcntl.LOCK_SH)


@contextmanager
def measurement_lock(
    quiet: bool = False, prog: str = "hwnas", on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the host-wide measurement lock, waiting while another process has it or computes
    (:func:`compute_slot`): saying so on stderr, or to ``on_wait(message)`` where given (a progress display),
    or not at all when ``quiet``.

    Two measurements at once on one machine distort each other, and so does a computation beside one.
    """
    path = lock_path()

    def say(message: str) -> Callable[[], None]:
        def tell() -> None:
            if on_wait is not None:
                on_wait(message)
            elif not quiet:
                print(f"{prog}: {message}", file=sys.stderr)

        return tell

    # this thread's own slot goes first: held while it queued at the gate, it would keep a measurement queued
    # ahead of it waiting forever
    with (
        _own_slot_released(),
        file_lock(
            _gate_path(), say(f"another measurement is running on this host ({path}); waiting for it"), abandonable=True
        ),
        file_lock(
            path, say(f"waiting for the computations under way on this host to finish ({path})"), abandonable=True
        ) as fh,
    ):
        # who holds it, for a person looking at the file; a lock file opened read-only (another user's) holds
        # all the same
        with suppress(OSError):
            if fh is not None:
                fh.seek(0)
                fh.truncate()
                fh.write(str(os.getpid()))
                fh.flush()
        yield
