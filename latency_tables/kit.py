"""Device kits: everything a device the service cannot reach needs to measure a latency table.

A kit is a zip: ``manifest.json`` (format :data:`KIT_FORMAT`, version
:data:`KIT_VERSION`), one ONNX file per layer signature of the chosen spaces,
a few whole calibration nets, a tiny ``overhead.onnx`` for the per-call
cost, and the agent's own source. int8 graphs are quantized here, so the
device needs only Python, numpy and onnxruntime:
``python -m latency_tables.agent kit.zip`` (or just ``python kit.zip``)
writes a table that ``hwnas lut import`` takes back.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from latency_tables.errors import LatencyTableError
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import Layer, parse_key, space_layers
from searchspace import load_space
from searchspace.architecture import Architecture
from searchspace.cost import count_cost
from searchspace.spec import SearchSpace

if TYPE_CHECKING:
    from latency_tables.profiler import ProgressCallback

KIT_FORMAT = "hwnas.latency-kit"
KIT_VERSION = 1
MANIFEST = "manifest.json"
OVERHEAD_FILE = "overhead.onnx"
#: shipped inside the kit so ``PYTHONPATH=kit.zip`` or ``python kit.zip`` runs the agent with nothing else of hwnas
AGENT_SOURCES = ("__init__.py", "agent.py", "portable.py", "timing.py")
_KIT_MAIN = '''"""Run the hwnas latency agent on this kit: python kit.zip [--profile ID] [-o table.json.gz]."""
import sys

from latency_tables.agent import main

sys.exit(main([sys.argv[0], *sys.argv[1:]]))
'''

#: the oldest onnxruntime that runs opset-17 graphs of IR version 8 (what latency_tables.graph writes)
MIN_ONNXRUNTIME = "1.13"


#: candidates drawn per calibration net by the ``spread`` strategy, to pick one from each stratum of MACs
SPREAD_CANDIDATES = 8


def calibration_archs(
    spaces: Sequence[str | SearchSpace],
    per_space: int,
    seed: int,
    resolution: int | None = None,
    strategy: str = "spread",
) -> list[tuple[str, Architecture]]:
    """Seeded nets for calibration (a seed stream of their own, apart from validation's).

    ``spaces`` are names (or files), labelled as given, or loaded spaces,
    labelled by their name. Nets are at ``resolution`` (default: each
    space's default), since the table covers only that resolution's layers.

    ``strategy``: ``spread`` (the default) draws :data:`SPREAD_CANDIDATES`
    times as many nets, sorts them by MACs and takes the middle net of each
    of ``per_space`` equal strata, so the calibration sees the space's whole
    cost range in its proportions; ``random`` takes the stream's first
    ``per_space`` nets, which can leave a cost range to one or two nets.
    On mobiledet-cifar (benchmarks/latency_calibration.py, 100 validation
    nets) 20 spread nets calibrated at least as well as 20 random ones in
    every run, and much better in one where large nets ran 20-35% slower
    than their layers.
    """
    if strategy not in ("random", "spread"):
        raise LatencyTableError(f"calibration strategy must be 'random' or 'spread', not {strategy!r}")
    out: list[tuple[str, Architecture]] = []
    for ref in spaces:
        space = ref if isinstance(ref, SearchSpace) else load_space(ref)
        name = ref if isinstance(ref, str) else space.name
        res = resolution or space.resolution
        if res not in space.resolutions:
            raise LatencyTableError(f"resolution {res} is not one of space {space.name}'s {list(space.resolutions)}")
        rng = random.Random(f"hwnas-calibrate:{name}:{seed}")
        want = per_space * (SPREAD_CANDIDATES if strategy == "spread" else 1)
        archs: list[Architecture] = []
        while len(archs) < want:
            arch = space.sample(rng)
            if arch.resolution == res:
                archs.append(arch)
        if strategy == "spread" and per_space:
            ranked = sorted(archs, key=lambda a: (count_cost(a).macs, a.encode()))
            archs = [ranked[(2 * i + 1) * len(ranked) // (2 * per_space)] for i in range(per_space)]
        out += [(name, a) for a in archs]
    return out


@dataclass(frozen=True)
class KitSummary:
    path: Path
    profile: str
    layers: int
    networks: int
    bytes: int


def _agent_sources() -> dict[str, bytes]:
    here = Path(__file__).resolve().parent
    return {f"latency_tables/{name}": (here / name).read_bytes() for name in AGENT_SOURCES}


def export_kit(
    spaces: Sequence[str | SearchSpace],
    output: str | Path,
    profile: DeviceProfile | str = "ort-cpu-fp32-t1",
    calibrate: int = 10,
    seed: int = 0,
    resolution: int | None = None,
    progress: ProgressCallback | None = None,
    reference_layers: bool = True,
) -> KitSummary:
    """Write a device kit for ``spaces`` to ``output`` atomically (a temp file renamed into place).

    ``reference_layers`` adds the speed signature's layers (:data:`latency_tables.host.REFERENCE_LAYERS`),
    so the device's table can be told from another device's of the same name when both are imported.
    """
    prof = DeviceProfile.parse(profile) if isinstance(profile, str) else profile
    if prof.runtime != "ort":
        raise LatencyTableError(
            f"export-kit: the device agent runs onnxruntime, so the profile's runtime must be 'ort', "
            f"not {prof.runtime!r}"
        )
    if not spaces:
        raise LatencyTableError("export-kit: name at least one space with --space SPACE")
    if calibrate < 0:
        raise LatencyTableError(f"export-kit: --calibrate must be >= 0, got {calibrate}")
    loaded = [s if isinstance(s, SearchSpace) else load_space(s) for s in spaces]
    layers: dict[str, Layer] = {}
    space_info = []
    for space in loaded:
        found = space_layers(space, resolution)
        space_info.append({"name": space.name, "resolution": resolution or space.resolution, "layers": len(found)})
        for key, layer in found.items():
            layers.setdefault(key, layer)
    if reference_layers:
        from latency_tables.host import REFERENCE_LAYERS

        for key in REFERENCE_LAYERS:
            layers.setdefault(key, parse_key(key))
    nets: dict[str, tuple[str, Architecture]] = {}
    for label, arch in calibration_archs(loaded, calibrate, seed, resolution):
        nets.setdefault(arch.encode(), (label, arch))

    from latency_tables.runtimes.ort_runtime import OnnxRuntime

    ort_runtime = OnnxRuntime()
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    total = len(layers) + len(nets)
    manifest_layers, manifest_nets = [], []
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(OVERHEAD_FILE, ort_runtime.overhead_model())
            for i, (key, layer) in enumerate(sorted(layers.items())):
                if progress:
                    progress(i, total, key)
                data, shape = ort_runtime.layer_model(layer, prof)
                name = f"layers/{i:05d}.onnx"
                zf.writestr(name, data)
                manifest_layers.append({"key": key, "file": name, "input_shape": list(shape)})
            for j, (code, (label, arch)) in enumerate(nets.items()):
                if progress:
                    progress(len(layers) + j, total, arch.arch_id)
                data, shape = ort_runtime.network_model(arch, prof)
                name = f"nets/{j:04d}.onnx"
                zf.writestr(name, data)
                manifest_nets.append({"arch": code, "space": label, "file": name, "input_shape": list(shape)})
            host = HostInfo.current()
            manifest = {
                "format": KIT_FORMAT,
                "version": KIT_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "built_with": {
                    "onnxruntime": host.versions.get("onnxruntime", ""),
                    "onnx": host.versions.get("onnx", ""),
                },
                "profile": prof.model_dump(mode="json"),
                "profile_id": prof.id,
                "min_onnxruntime": MIN_ONNXRUNTIME,
                "spaces": space_info,
                "seed": seed,
                "overhead": {"file": OVERHEAD_FILE, "input_shape": [1]},
                "layers": manifest_layers,
                "networks": manifest_nets,
            }
            zf.writestr(
                zipfile.ZipInfo(MANIFEST, time.gmtime()[:6]),
                json.dumps(manifest, indent=1),
                compress_type=zipfile.ZIP_DEFLATED,
            )
            for name, source in _agent_sources().items():
                zf.writestr(name, source, compress_type=zipfile.ZIP_DEFLATED)
            zf.writestr("__main__.py", _KIT_MAIN, compress_type=zipfile.ZIP_DEFLATED)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a kit is meant to be copied around
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if progress:
        progress(total, total, "")
    return KitSummary(out, prof.id, len(manifest_layers), len(manifest_nets), out.stat().st_size)
