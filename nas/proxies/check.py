"""A ground truth for judging proxies: sampled nets of a space, each trained with two seeds or more, resumably.

Used by ``benchmarks/proxies.py`` (hwnas's own evidence) and by
``hwnas proxies check`` (a user's evidence on their own space and data):

- :class:`Protocol`: how every net is trained and tested (one budget for all).
- :func:`sample_nets`: nets spread over the space's range of MACs, in small
  groups of similar cost, so both "is the bigger net better" and "which of
  these equal-cost nets is better" can be asked of the proxies.
- :class:`RunStore`: one JSON line per finished (net, seed) run, appended
  as it finishes; a killed check resumes where it stopped, and a truth can
  grow more seeds later (:func:`seed_matrix` reads any number of them).
- :func:`train_runs`: the missing runs, in ``workers`` processes of one
  torch thread each (two processes with torch's default threads on a
  2-core machine oversubscribe it many times over).

Scoring the nets and judging the scorers is :mod:`nas.proxies.judging`;
its names are importable from here too.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nas.datasets import DataSpec
from nas.errors import ProxyError
from nas.proxies.judging import (
    BASELINES,
    COMBOS,
    PREDICTOR_PROXIES,
    ScoreCache,
    all_scores,
    budget_axis,
    choice_stability,
    combined,
    judge,
    predictor_label,
    score_nets,
    simplicity_order,
)
from searchspace.architecture import Architecture

__all__ = [
    "BASELINES",
    "COMBOS",
    "PREDICTOR_PROXIES",
    "Protocol",
    "RunStore",
    "ScoreCache",
    "all_scores",
    "budget_axis",
    "choice_stability",
    "combined",
    "judge",
    "paired",
    "predictor_label",
    "sample_nets",
    "score_nets",
    "seed_matrix",
    "simplicity_order",
    "train_one",
    "train_runs",
]


class Protocol(BaseModel):
    """How each net of a ground truth is trained (SGD, Nesterov, warm-up then cosine to 0) and tested."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(300, ge=1, le=1_000_000)
    batch_size: int = Field(128, ge=2, le=8192)
    lr: float = Field(0.1, gt=0, le=10)
    warmup: float = Field(0.1, ge=0, lt=1)
    clip_grad_norm: float | None = Field(5.0, gt=0)
    weight_decay: float = Field(5e-5, ge=0, le=1)
    seeds: tuple[int, ...] = Field((0, 1), min_length=1, max_length=10)
    split: Literal["val", "test", "both"] = Field(
        "both",
        description="where accuracy is measured: choices are made on val, final numbers are test's; both measures both",
    )
    test_samples: int | None = Field(None, ge=1, description="images of the split (None: all)")
    train_images: int | None = Field(
        None,
        ge=1,
        description="train on a fixed random subset of this many images "
        "(several epochs of a subset get nearer convergence than a fraction of one "
        "epoch of everything, at the same cost); the validation split is unchanged",
    )
    ema_decay: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="score the run's exponential moving average of weights (this decay) instead of its last "
        "weights; the last weights' accuracies are kept too, as raw_<split>_accuracy, so one set of runs "
        "compares the two",
    )

    def train_settings(self) -> Any:
        from nas.training import TrainSettings

        return TrainSettings(
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            warmup=self.warmup,
            clip_grad_norm=self.clip_grad_norm,
            weight_decay=self.weight_decay,
            evals=1,
            val_samples=500,
            threads=1,
            ema_decay=self.ema_decay,
        )

    def images(self) -> int:
        return self.steps * self.batch_size


def sample_nets(
    space: Any, n: int, *, seed: int = 0, group: int = 3, max_macs: float | None = None, pool: int = 3000
) -> list[Architecture]:
    """``n`` distinct nets of ``space`` spread over its range of MACs, in groups of ``group`` of similar cost.

    A pool of random nets (optionally capped in MACs, which bounds the cost of
    training them) is sorted by log-MACs; ``ceil(n / group)`` evenly spaced
    cost levels each take the ``group`` nets nearest to them.
    """
    from searchspace.cost import count_cost
    from searchspace.spec import load_space

    space = load_space(space) if isinstance(space, str) else space
    rng = random.Random(f"hwnas-check:{space.name}:{seed}")
    found: dict[str, tuple[float, Architecture]] = {}
    for _ in range(pool * 5):
        if len(found) >= pool:
            break
        a = space.sample(rng)
        macs = count_cost(a).macs
        if max_macs is not None and macs > max_macs:
            continue
        found.setdefault(a.arch_id, (math.log(macs), a))
    ordered = sorted(found.values(), key=lambda t: t[0])
    if len(ordered) < n:
        raise ProxyError(
            f"nets: the space {space.name} gave only {len(ordered)} distinct nets under the limits "
            f"(max_macs={max_macs}); ask for fewer than {n}"
        )
    levels = math.ceil(n / group)
    chosen: list[Architecture] = []
    taken: set[str] = set()
    for i in range(levels):
        target = ordered[0][0] + (ordered[-1][0] - ordered[0][0]) * (i + 0.5) / levels
        near = sorted((t for t in ordered if t[1].arch_id not in taken), key=lambda t: abs(t[0] - target))
        for _, a in near[: min(group, n - len(chosen))]:
            chosen.append(a)
            taken.add(a.arch_id)
    return chosen


class RunStore:
    """Finished runs of one ground truth, one JSON line each, under a header naming protocol and data."""

    def __init__(self, path: Path, protocol: Protocol, data: DataSpec, label: str = "") -> None:
        self.path = Path(path)
        self.header = {
            "kind": "hwnas-ground-truth",
            "protocol": protocol.model_dump(mode="json"),
            "data": data.model_dump(mode="json"),
            "label": label,
        }
        self._runs: dict[tuple[str, int], dict[str, Any]] = {}
        if self.path.exists():
            text = self.path.read_text()
            if text and not text.endswith("\n"):  # a line cut by a kill: the next run starts on a line of its own
                with self.path.open("a") as f:
                    f.write("\n")
            lines = text.splitlines()
            head = json.loads(lines[0]) if lines else None
            # compared as models, so a field added later with a default does not orphan old files; the seeds say
            # which runs to do, not how one is trained, so a truth may grow more of them (the header keeps the
            # seeds it was made for: rewriting it under a process appending runs could lose one; the runs say
            # which seeds there are)
            if head is not None and (
                Protocol.model_validate(head.get("protocol", {})).model_copy(update={"seeds": protocol.seeds})
                != protocol
                or DataSpec.model_validate(head.get("data", {})) != data
            ):
                raise ProxyError(
                    f"{self.path}: holds runs of another protocol or dataset "
                    f"({json.dumps(head.get('protocol'))}); resume it with those settings (hwnas proxies check: "
                    "--steps, --batch-size, --lr, --warmup), or write to another file (--out)"
                )
            for line in lines[1:]:
                if not line.strip():
                    continue
                try:
                    run = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a kill: that run is simply done again
                    continue
                self._runs[(run["arch"], run["seed"])] = run
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.header) + "\n")

    def add(self, run: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(run) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._runs[(run["arch"], run["seed"])] = run

    def get(self, arch: str, seed: int) -> dict[str, Any] | None:
        return self._runs.get((arch, seed))

    def __len__(self) -> int:
        return len(self._runs)

    def runs(self) -> list[dict[str, Any]]:
        return list(self._runs.values())


#: seconds between two checkpoints of a training run (a run killed midway goes on from its last one)
CHECKPOINT_SECONDS = 120.0


def checkpoint_dir(store: RunStore) -> Path:
    """Where the runs of ``store`` keep their checkpoints while they train: beside it, ``<name>.partial/``."""
    return store.path.with_name(store.path.stem + ".partial")


def checkpoint_file(folder: Path, arch_id: str, seed: int) -> Path:
    """The checkpoint of one run (the net as trained, with the data's classes) in ``folder``."""
    return folder / f"{arch_id}-seed{seed}.pt"


def train_one(
    code: str, seed: int, protocol_json: str, data_json: str, checkpoints: str | None = None
) -> dict[str, Any]:
    """One run in a worker process: train on one thread, then accuracy on the protocol's split. With
    ``checkpoints`` (a folder) the run checkpoints there and a run killed midway goes on from its checkpoint."""
    import torch

    from nas.training import Checkpointing, evaluate, train_model

    torch.set_num_threads(1)
    protocol = Protocol.model_validate_json(protocol_json)
    data = DataSpec.model_validate_json(data_json)
    if protocol.train_images is not None:
        data = data.model_copy(update={"limit": protocol.train_images})
    arch = Architecture.decode(code)
    view = data.view(arch.resolution, arch.in_channels)
    if arch.head.classes != view.num_classes:
        arch = arch.model_copy(update={"head": arch.head.model_copy(update={"classes": view.num_classes})})
    start = time.process_time()
    ckpt = (
        Checkpointing(checkpoint_file(Path(checkpoints), arch.arch_id, seed), CHECKPOINT_SECONDS)
        if checkpoints
        else None
    )
    model, result = train_model(arch, view, protocol.train_settings(), seed=seed, checkpoint=ckpt)
    splits = ("val", "test") if protocol.split == "both" else (protocol.split,)
    scored = result.average if result.average is not None else model
    measured = {f"{split}_accuracy": evaluate(scored, view, split, protocol.test_samples) for split in splits}
    if result.average is not None:
        measured |= {f"raw_{split}_accuracy": evaluate(model, view, split, protocol.test_samples) for split in splits}
    accuracy = measured.get("test_accuracy", measured.get("val_accuracy"))
    curve = result.curve
    return {
        "arch": code,
        "arch_id": arch.arch_id,
        "seed": seed,
        "accuracy": accuracy,
        **measured,
        "split": protocol.split,
        "train_seconds": result.seconds,
        "cpu_seconds": result.earlier_cpu_seconds + time.process_time() - start,
        "images_per_second": result.images_per_second,
        "final_train_loss": curve[-1].train_loss if curve else None,
    }


def _train_job(job: tuple[str, int, str, str, str | None]) -> dict[str, Any]:
    from latency_tables.portable import compute_slot

    with compute_slot():  # never beside a latency measurement on this host (see nas.evaluate)
        return train_one(*job)


def train_runs(
    archs: Iterable[Architecture],
    protocol: Protocol,
    data: DataSpec,
    store: RunStore,
    *,
    workers: int = 1,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> int:
    """Train every (net, seed) not yet in ``store``, storing each as it finishes; returns how many ran. Each
    run checkpoints beside the store (:func:`checkpoint_dir`) every :data:`CHECKPOINT_SECONDS`, so a run
    killed midway loses at most that much when this is called again; its checkpoint goes once it is stored."""
    pjson, djson = protocol.model_dump_json(), data.model_dump_json()
    folder = checkpoint_dir(store)
    todo = [
        (a.encode(), s, pjson, djson, str(folder))
        for a in archs
        for s in protocol.seeds
        if store.get(a.encode(), s) is None
    ]
    if not todo:
        return 0

    def stored(i: int, run: dict[str, Any]) -> None:
        store.add(run)
        checkpoint_file(folder, run["arch_id"], run["seed"]).unlink(missing_ok=True)
        if progress:
            progress(i, len(todo), run)

    if workers <= 1:
        for i, job in enumerate(todo, 1):
            stored(i, _train_job(job))
    else:
        with mp.get_context("spawn").Pool(workers, maxtasksperchild=8) as pool:
            for i, run in enumerate(pool.imap_unordered(_train_job, todo), 1):
                stored(i, run)
    with contextlib.suppress(OSError):  # empty once every run is stored
        folder.rmdir()
    return len(todo)


def seed_matrix(
    store: RunStore,
    archs: Sequence[Architecture],
    seeds: Sequence[int],
    key: str = "accuracy",
    min_seeds: int = 2,
) -> tuple[list[Architecture], list[list[float]]]:
    """The nets trained with at least ``min_seeds`` of ``seeds``, and their accuracies (``key``: accuracy,
    val_accuracy or test_accuracy), one row per net and a column per seed, NaN where a run is missing: what
    :func:`nas.proxies.evidence.reliability` and :func:`~nas.proxies.evidence.net_means` take."""
    kept, rows = [], []
    for a in archs:
        code = a.encode()
        row = [
            float(r[key]) if (r := store.get(code, s)) is not None and r.get(key) is not None else math.nan
            for s in seeds
        ]
        if sum(not math.isnan(v) for v in row) >= min_seeds:
            kept.append(a)
            rows.append(row)
    return kept, rows


def paired(
    store: RunStore, archs: Sequence[Architecture], seeds: tuple[int, int] = (0, 1), key: str = "accuracy"
) -> tuple[list[Architecture], list[float], list[float]]:
    """The nets trained with both seeds, and their two accuracies (``key``: accuracy, val_accuracy or
    test_accuracy)."""
    kept, rows = seed_matrix(store, archs, seeds, key=key, min_seeds=2)
    return kept, [row[0] for row in rows], [row[1] for row in rows]
