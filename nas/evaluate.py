"""Expensive metrics of one net, as a worker computes them (imports torch, never the service).

A request names a net (its string form), the single proxies and/or the
training run wanted, and the settings they depend on. Ensembles are not
computed here: a worker returns each member's score, which is cached on its
own, and the controller combines them (:mod:`nas.proxies.ensemble`).
Per-process caches keep the dataset view and the scoring batch, so a worker
loads Fashion-MNIST once, not once per net.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nas.store import Evaluation, settings_hash


@dataclass(frozen=True)
class EvalSettings:
    """What expensive metrics depend on, besides the net (JSON-able; its digest keys the cache)."""

    dataset: dict[str, Any]
    proxy_batch: int = 64
    proxy_seed: int = 0
    training: dict[str, Any] | None = None
    train_seed: int = 0
    threads: int = 1

    def for_metric(self, metric: str) -> str:
        """The settings digest of one metric (a proxy's value does not depend on the training settings)."""
        from nas.proxies import get_proxy

        if metric.startswith("proxy:"):
            name = metric.split(":", 1)[1]
            needs_data = get_proxy(name).needs_data
            data = {"dataset": self.dataset, "batch": self.proxy_batch} if needs_data else {}
            return settings_hash({"seed": self.proxy_seed, **data})
        if metric.startswith("train:"):
            return settings_hash({"dataset": self.dataset, "training": self.training, "seed": self.train_seed})
        raise ValueError(f"{metric} is not an expensive metric")


@lru_cache(maxsize=8)
def _view(dataset_json: str, resolution: int, channels: int) -> Any:
    from nas.datasets import DataSpec

    return DataSpec.model_validate_json(dataset_json).view(resolution, channels)


@lru_cache(maxsize=8)
def _batch(dataset_json: str, resolution: int, channels: int, size: int, seed: int) -> tuple[Any, Any]:
    return _view(dataset_json, resolution, channels).sample(size, seed=seed)


def evaluate(arch_code: str, metrics: list[str], settings: EvalSettings) -> dict[str, Evaluation]:
    """Each metric's value, or its error (one failing metric does not lose the others)."""
    import json

    import torch

    from latency_tables.portable import compute_slot
    from nas.errors import NasError
    from searchspace.architecture import Architecture

    torch.set_num_threads(settings.threads)  # Ray starts workers with 1 thread whatever num_cpus says
    arch = Architecture.decode(arch_code)
    dataset_json = json.dumps(settings.dataset, sort_keys=True)
    out: dict[str, Evaluation] = {}
    for metric in metrics:
        start = time.perf_counter()
        try:
            # never beside a latency measurement on this host (another job's table being built): a measurement
            # waits for this metric to end, and no metric starts while one measures
            with compute_slot():
                value = _value(metric, arch, dataset_json, settings)
            out[metric] = Evaluation(float(value), None, time.perf_counter() - start)
        except NasError as exc:
            out[metric] = Evaluation(None, str(exc), time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - a worker reports, it does not crash the search
            last = traceback.format_exception(exc)[-1].strip()
            out[metric] = Evaluation(None, f"{type(exc).__name__}: {exc} ({last})", time.perf_counter() - start)
    return out


def _value(metric: str, arch: Any, dataset_json: str, settings: EvalSettings) -> float:
    """One expensive metric of ``arch``: a proxy's score or a short training's validation accuracy."""
    from nas import proxies
    from nas.training import TrainSettings, train

    kind, name = metric.split(":", 1)
    if kind == "proxy":
        x = y = None
        classes = None
        if proxies.get_proxy(name).needs_data:
            x, y = _batch(dataset_json, arch.resolution, arch.in_channels, settings.proxy_batch, settings.proxy_seed)
            classes = _view(dataset_json, arch.resolution, arch.in_channels).num_classes
        a = proxies.for_classes(arch, classes) if classes else arch
        batch = (x, y) if x is not None and y is not None else None
        return float(proxies.score(name, a, batch, seed=settings.proxy_seed))
    if kind == "train":
        view = _view(dataset_json, arch.resolution, arch.in_channels)
        ts = TrainSettings.model_validate({**(settings.training or {}), "threads": settings.threads})
        return float(train(arch, view, ts, seed=settings.train_seed).val_accuracy)
    raise ValueError(f"{metric} is not an expensive metric")
