"""Device profiles (how latency is measured) and host descriptions (where)."""

from __future__ import annotations

import functools
import os
import platform
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from latency_tables.errors import LatencyTableError
from latency_tables.portable import (
    PROFILE_ID,
    PROFILE_ID_FORM,
    cpu_fingerprint,
    cpu_model,
    format_profile_id,
    gpu_names,
    host_slug,
)


class DeviceProfile(BaseModel):
    """How a latency is measured: runtime, execution provider, precision, threads, batch size.

    Its id reads ``ort-cpu-fp32-t1`` (``-b8`` appended for batch 8).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: str = Field(pattern=r"^[a-z0-9]+$")
    provider: Literal["cpu", "cuda"] = "cpu"
    precision: Literal["fp32", "int8"] = "fp32"
    threads: int = Field(default=1, ge=1, le=256)
    batch: int = Field(default=1, ge=1, le=1024)

    @property
    def id(self) -> str:
        return format_profile_id(self.runtime, self.provider, self.precision, self.threads, self.batch)

    @classmethod
    def parse(cls, profile_id: str) -> DeviceProfile:
        m = PROFILE_ID.match(profile_id.strip())
        if not m:
            raise LatencyTableError(f"profile: {profile_id!r} is not a profile id; expected {PROFILE_ID_FORM}")
        from latency_tables.runtimes import runtime_names

        if m["runtime"] not in runtime_names():
            raise LatencyTableError(
                f"profile: unknown runtime {m['runtime']!r} in {profile_id!r}; "
                f"known runtimes: {', '.join(runtime_names())}"
            )
        return cls(
            runtime=m["runtime"],
            provider=m["provider"],
            precision=m["precision"],
            threads=int(m["threads"]),
            batch=int(m["batch"] or 1),
        )

    def __str__(self) -> str:
        return self.id


@functools.lru_cache(maxsize=1)
def _gpus() -> tuple[str, ...]:
    """The GPUs, asked once per process (nvidia-smi takes a moment; they do not change under a process)."""
    return tuple(gpu_names())


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("onnxruntime", "onnx", "torch", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


class HostInfo(BaseModel):
    """The machine a table was measured on. Latency belongs to a host, not to a profile alone.

    Beyond the CPU's label, the fingerprint (vendor, family / model /
    stepping, microcode, speed-relevant instruction sets, caches) tells apart
    two machines sold under one name, e.g. two generations of "AMD EPYC" VMs.
    Fields a table written before they existed lacks are empty and not
    compared. What the fingerprint cannot see (a busier host, another
    hypervisor) the speed signature measures (:mod:`latency_tables.host`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: str
    cores: int
    machine: str
    system: str
    versions: dict[str, str] = Field(default_factory=dict)
    date: str = ""
    vendor: str = ""
    family: str = ""
    model_number: str = ""
    stepping: str = ""
    microcode: str = ""
    flags: tuple[str, ...] = ()
    caches: dict[str, str] = Field(default_factory=dict)
    #: the GPUs (name, driver, memory) where the latencies depend on them: a CUDA table's host; empty otherwise
    gpus: tuple[str, ...] = ()

    @classmethod
    def current(cls) -> HostInfo:
        """This machine, GPUs included (a table keeps them only for a CUDA profile: :meth:`for_profile`)."""
        return cls(
            cpu=cpu_model(),
            cores=os.cpu_count() or 1,
            machine=platform.machine(),
            system=platform.system(),
            versions=_versions(),
            date=time.strftime("%Y-%m-%d", time.gmtime()),
            gpus=_gpus(),
            **cpu_fingerprint(),
        )

    def for_profile(self, profile: DeviceProfile) -> HostInfo:
        """This host as a table of ``profile`` records it: the GPUs only where the profile runs on one, so a CPU
        table is not told apart by a GPU its latencies never touched."""
        return self if profile.provider == "cuda" else self.model_copy(update={"gpus": ()})

    def differences(self, other: HostInfo) -> list[str]:
        """What makes latencies measured on ``self`` not transferable to ``other`` (empty = same kind).

        Microcode is not compared: an update may or may not change speed, and
        the speed signature measures whether it did.
        """
        diffs = [
            f"{name}: {mine!r} vs {theirs!r}"
            for name, mine, theirs in (
                ("cpu", self.cpu, other.cpu),
                ("cores", self.cores, other.cores),
                ("machine", self.machine, other.machine),
            )
            if mine != theirs
        ]
        for name in ("vendor", "family", "model_number", "stepping"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine and theirs and mine != theirs:
                diffs.append(f"cpu {name.replace('_', ' ')}: {mine} vs {theirs}")
        if self.flags and other.flags and set(self.flags) != set(other.flags):
            only_a, only_b = sorted(set(self.flags) - set(other.flags)), sorted(set(other.flags) - set(self.flags))
            diffs.append(
                "instruction sets: "
                + "; ".join(
                    part
                    for part in (
                        f"only the table's host has {', '.join(only_a)}" if only_a else "",
                        f"only this host has {', '.join(only_b)}" if only_b else "",
                    )
                    if part
                )
            )
        shared = sorted(set(self.caches) & set(other.caches))
        changed = [f"{c} {self.caches[c]} vs {other.caches[c]}" for c in shared if self.caches[c] != other.caches[c]]
        if changed:
            diffs.append("caches: " + ", ".join(changed))
        if self.gpus and other.gpus and self.gpus != other.gpus:
            diffs.append(f"gpus: {'; '.join(self.gpus)} vs {'; '.join(other.gpus)}")
        for runtime in ("onnxruntime", "torch"):
            a, b = self.versions.get(runtime), other.versions.get(runtime)
            if a and b and a.split(".")[:2] != b.split(".")[:2]:
                diffs.append(f"{runtime}: {a} vs {b}")
        return diffs

    @property
    def fingerprinted(self) -> bool:
        """Whether the table recorded more than the CPU's label: tables measured before the fingerprint existed
        (the shipped ones, and copies of them) did not, and cannot be told from another VM sold under that label."""
        return bool(self.vendor or self.family or self.flags)

    def fingerprint(self) -> str:
        """A short digest of what :meth:`differences` compares, plus microcode (for caching a host check)."""
        import hashlib
        import json

        data = self.model_dump(exclude={"date", "versions"}) | {
            "runtimes": {k: v for k, v in self.versions.items() if k in ("onnxruntime", "torch")}
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def slug(self) -> str:
        """A file-name-safe name for the host kind, e.g. ``amd-epyc-2c``."""
        return host_slug(self.cpu, self.cores)
