"""The training proxy: train a candidate briefly on real data and report held-out accuracy.

A budget is epochs, steps or seconds. The schedule (linear warm-up, cosine
decay) spans the whole budget, so a short run still ends at a small learning
rate. Validation accuracy is measured ``evals`` times along the way: each
point goes to ``report(step, accuracy)``, which is how an Optuna pruner sees
the learning curve (return True from it to stop early, e.g. when
``trial.should_prune()``).

CPU: the net runs channels-last (the faster layout for depthwise-heavy
nets) on ``threads`` threads. CUDA, when present and asked
for: the same loop on the GPU with cudnn autotuning and optional mixed
precision. Given a seed and a steps or epochs budget, a run is
deterministic on CPU.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nas.errors import TrainingError
from searchspace.architecture import Architecture

if TYPE_CHECKING:
    from nas.datasets import DataView

Report = Callable[[int, float], bool | None]


class TrainSettings(BaseModel):
    """How to train a candidate (the ``training`` section of a search config). Exactly one budget is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: float | None = Field(default=None, gt=0, le=1000)
    steps: int | None = Field(default=None, ge=1, le=10_000_000)
    seconds: float | None = Field(default=None, gt=0, le=7 * 86400)
    batch_size: int = Field(default=64, ge=1, le=8192)
    lr: float = Field(default=0.1, gt=0, le=10)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=5e-5, ge=0, le=1)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    warmup: float = Field(default=0.05, ge=0, lt=1, description="fraction of the budget spent warming up")
    clip_grad_norm: float | None = Field(
        default=None, gt=0, le=1e6, description="clip the gradients' global L2 norm to this (None: no clipping)"
    )
    evals: int = Field(default=4, ge=1, le=1000, description="validation points along the run (the last at the end)")
    val_samples: int | None = Field(default=2000, ge=1, description="validation images per point (None: all)")
    threads: int | None = Field(default=None, ge=1, le=1024, description="CPU threads (default: torch's)")
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    amp: bool = Field(default=False, description="mixed precision on CUDA")
    ema_decay: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="also keep an exponential moving average of the weights (and BN statistics) with this decay, "
        "warmed up as min(decay, (1+step)/(10+step)) (so a 400-step run weighs mostly its last ~50 steps "
        "whatever the decay above 0.98); the run's val_accuracy is then the average's",
    )

    #: fields added after settings were first hashed into evaluation caches: left out of digest_dump() at their
    #: defaults, so caches made before them stay valid
    _LATER_FIELDS: ClassVar[tuple[str, ...]] = ("ema_decay",)

    def digest_dump(self) -> dict[str, Any]:
        """The settings as evaluation caches hash them (model_dump, less later fields at their defaults)."""
        data = self.model_dump(mode="json")
        for name in self._LATER_FIELDS:
            if getattr(self, name) == type(self).model_fields[name].default:
                data.pop(name)
        return data

    @model_validator(mode="after")
    def _one_budget(self) -> TrainSettings:
        given = [k for k in ("epochs", "steps", "seconds") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"budget: give exactly one of epochs, steps, seconds (got {', '.join(given) or 'none'})")
        return self


@dataclass
class CurvePoint:
    step: int
    epoch: float
    seconds: float
    train_loss: float
    val_accuracy: float


@dataclass
class TrainResult:
    val_accuracy: float
    steps: int
    epochs: float
    seconds: float
    images_per_second: float
    pruned: bool
    device: str
    curve: list[CurvePoint] = field(default_factory=list)
    #: the weight average (settings.ema_decay), in eval mode on the run's device; not part of as_dict
    average: Any = field(default=None, repr=False, compare=False)
    #: the step a run resumed from its checkpoint at (0: it ran from the start), and the CPU seconds the
    #: process(es) that made the checkpoint had spent on it
    resumed_at: int = 0
    earlier_cpu_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        # the average left out before asdict, which would deep-copy the model only to drop it
        return {k: v for k, v in asdict(replace(self, average=None)).items() if k != "average"}


def _device(settings: TrainSettings) -> str:
    import torch

    if settings.device == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if settings.device == "cuda":
        raise TrainingError("training.device: 'cuda' was asked for but torch sees no CUDA device here")
    return "cpu"


def evaluate(
    model: Any,
    view: DataView,
    split: str = "val",
    samples: int | None = None,
    batch_size: int = 256,
    device: str = "cpu",
) -> float:
    """Top-1 accuracy on the first ``samples`` images of ``split`` (all if None)."""
    import numpy as np
    import torch

    # mypy: split is one of the view's Literal split names (evaluate's callers pass val/test)
    total = view.size(split)  # type: ignore[arg-type]
    n = total if samples is None else min(samples, total)
    if n == 0:
        raise TrainingError(f"split {split!r} is empty: nothing to evaluate on (set dataset.val_fraction > 0)")
    was_training = model.training
    model.eval()
    correct = 0
    channels_last = device == "cpu"
    with torch.no_grad():
        for start in range(0, n, batch_size):
            # mypy: split is one of the view's Literal split names (evaluate's callers pass val/test)
            x, y = view.batch(split, np.arange(start, min(start + batch_size, n)))  # type: ignore[arg-type]
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            correct += int((model(x.to(device, non_blocking=True)).argmax(1).cpu() == y).sum())
    model.train(was_training)
    return correct / n


def train(
    arch: Architecture, view: DataView, settings: TrainSettings, *, seed: int = 0, report: Report | None = None
) -> TrainResult:
    """Train a freshly initialised ``arch`` on ``view`` for the settings' budget."""
    return train_model(arch, view, settings, seed=seed, report=report)[1]


class WeightAverage:
    """An exponential moving average of a model's weights and buffers (BN statistics): averaging the last
    part of a run smooths what the last steps' batches did to the weights, which differs from seed to seed."""

    def __init__(self, model: Any, decay: float) -> None:
        import copy

        self.decay = decay
        self.model = copy.deepcopy(model)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    def update(self, model: Any) -> None:
        import torch

        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        with torch.no_grad():
            mine, theirs = self.model.state_dict(), model.state_dict()
            for k, v in mine.items():
                if v.dtype.is_floating_point:
                    v.mul_(d).add_(theirs[k].detach(), alpha=1 - d)
                else:  # counters (num_batches_tracked): the model's own
                    v.copy_(theirs[k])


@dataclass
class Checkpointing:
    """Where a long run keeps its state, and how often: a run killed midway (a session cut off, a worker
    stopped) and started again with the same arguments goes on from its last checkpoint and ends exactly as
    it would have without the kill (CPU). A checkpoint of another run (net, seed, settings) is never used."""

    path: Path
    every_seconds: float = 120.0

    def _key(self, arch: Architecture, settings: TrainSettings, seed: int) -> str:
        return json.dumps([arch.encode(), seed, settings.model_dump(mode="json")], sort_keys=True)

    def load(self, arch: Architecture, settings: TrainSettings, seed: int) -> dict[str, Any] | None:
        import torch

        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - a checkpoint cut short by the kill itself: start afresh
            return None
        return state if isinstance(state, dict) and state.get("key") == self._key(arch, settings, seed) else None

    def save(self, state: dict[str, Any], arch: Architecture, settings: TrainSettings, seed: int) -> None:
        import torch

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        torch.save({**state, "key": self._key(arch, settings, seed)}, tmp)
        os.replace(tmp, self.path)  # a kill mid-save leaves the previous checkpoint whole


def train_model(
    arch: Architecture,
    view: DataView,
    settings: TrainSettings,
    *,
    seed: int = 0,
    report: Report | None = None,
    checkpoint: Checkpointing | None = None,
) -> tuple[Any, TrainResult]:
    """:func:`train`, also returning the trained model (in eval mode, on its device); with
    ``settings.ema_decay`` the result's ``average`` holds the weight average (:class:`WeightAverage`) too.

    ``checkpoint`` (a steps or epochs budget only): the run's state is saved there every
    ``every_seconds`` and, when a checkpoint of this very run is found, the run goes on from it. The
    checkpoint is left in place at the end (the caller removes it once the result is safe)."""
    import numpy as np
    import torch
    import torch.nn.functional as F  # noqa: N812

    from searchspace.model import build_model

    if arch.in_channels != view.channels or arch.resolution != view.resolution:
        raise TrainingError(
            f"data: the net takes {arch.in_channels}x{arch.resolution}x{arch.resolution} inputs but the data view "
            f"gives {view.channels}x{view.resolution}x{view.resolution}"
        )
    if arch.head.classes != view.num_classes:
        arch = arch.model_copy(update={"head": arch.head.model_copy(update={"classes": view.num_classes})})
    n_train = len(view)
    if n_train == 0:
        raise TrainingError("data: the training split is empty")
    device = _device(settings)
    old_threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    rng_scope = contextlib.ExitStack()
    try:
        # the seed decides the whole run (initial weights and dropout masks), whatever ran before in this
        # process; the caller's random state is left as it was
        # (manual_seed seeds every CUDA device too, so fork them all wherever CUDA exists, CPU runs included)
        rng_scope.enter_context(
            torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if torch.cuda.is_available() else [])
        )
        torch.manual_seed(seed)
        model = build_model(arch)
        channels_last = device == "cpu"
        model = model.to(device)
        if channels_last:
            # mypy: torch's stubs lack Module.to(memory_format=...), which torch documents
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if device == "cuda":
            torch.backends.cudnn.benchmark = True
        batch = min(settings.batch_size, n_train)
        steps_per_epoch = max(1, n_train // batch)
        planned = (
            settings.steps
            if settings.steps is not None
            else math.ceil(settings.epochs * steps_per_epoch)
            if settings.epochs is not None
            else None
        )
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for p in model.parameters():
            (decay if p.dim() > 1 else no_decay).append(p)
        opt = torch.optim.SGD(
            [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=settings.lr,
            momentum=settings.momentum,
            nesterov=settings.momentum > 0,
        )
        use_amp = settings.amp and device == "cuda"
        scaler = torch.amp.GradScaler("cuda") if use_amp else None
        rng = np.random.default_rng(seed)
        order = rng.permutation(n_train)
        cursor = 0
        start = time.perf_counter()
        step = 0
        curve: list[CurvePoint] = []
        loss_sum, loss_n = 0.0, 0
        pruned = False
        eval_at: set[int] = set()

        def plan_evals(total: int) -> set[int]:
            return {max(1, round(total * (i + 1) / settings.evals)) for i in range(settings.evals)}

        if planned is not None:
            eval_at = plan_evals(planned)
        average = WeightAverage(model, settings.ema_decay) if settings.ema_decay is not None else None
        if checkpoint is not None and planned is None:
            raise TrainingError("training: a checkpointed run needs a steps or epochs budget, not seconds")
        resumed_at, earlier_cpu, cpu_start = 0, 0.0, time.process_time()
        saved = checkpoint.load(arch, settings, seed) if checkpoint is not None else None
        if saved is not None:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["opt"])
            if scaler is not None and saved.get("scaler") is not None:
                scaler.load_state_dict(saved["scaler"])
            if average is not None:
                average.model.load_state_dict(saved["average"])
                average.updates = saved["average_updates"]
            rng.bit_generator.state = saved["rng"]
            order, cursor, step = saved["order"], saved["cursor"], saved["step"]
            loss_sum, loss_n = saved["loss_sum"], saved["loss_n"]
            curve = [CurvePoint(**c) for c in saved["curve"]]
            torch.set_rng_state(saved["torch_rng"])
            if device == "cuda" and saved.get("cuda_rng") is not None:
                torch.cuda.set_rng_state_all(saved["cuda_rng"])
            start -= saved["seconds"]  # the run's seconds count the earlier processes' too
            resumed_at, earlier_cpu = step, saved["cpu_seconds"]
        last_save = time.monotonic()

        def state_now() -> dict[str, Any]:
            return {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "average": average.model.state_dict() if average is not None else None,
                "average_updates": average.updates if average is not None else 0,
                "rng": rng.bit_generator.state,
                "order": order,
                "cursor": cursor,
                "step": step,
                "loss_sum": loss_sum,
                "loss_n": loss_n,
                "curve": [asdict(c) for c in curve],
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if device == "cuda" else None,
                "seconds": time.perf_counter() - start,
                "cpu_seconds": earlier_cpu + time.process_time() - cpu_start,
            }

        model.train()
        while True:
            if (
                checkpoint is not None
                and step > resumed_at
                and time.monotonic() - last_save >= checkpoint.every_seconds
            ):
                checkpoint.save(state_now(), arch, settings, seed)  # between two steps: the state is whole
                last_save = time.monotonic()
            if planned is not None and step >= planned:
                break
            if cursor + batch > n_train:
                order = rng.permutation(n_train)
                cursor = 0
            x, y = view.batch("train", order[cursor : cursor + batch])
            cursor += batch
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            total = planned if planned is not None else max(step + 1, 10)
            warm = settings.warmup * total
            if step < warm:
                frac = (step + 1) / warm
            else:
                frac = 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
            for g in opt.param_groups:
                g["lr"] = settings.lr * frac
            opt.zero_grad(set_to_none=True)
            if use_amp:
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = F.cross_entropy(model(x), y, label_smoothing=settings.label_smoothing)
                # mypy: scaler is set whenever use_amp is true (this branch)
                scaler.scale(loss).backward()  # type: ignore[union-attr]
                if settings.clip_grad_norm is not None:
                    scaler.unscale_(opt)  # type: ignore[union-attr]
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_grad_norm)
                scaler.step(opt)  # type: ignore[union-attr]
                scaler.update()  # type: ignore[union-attr]
            else:
                loss = F.cross_entropy(model(x), y, label_smoothing=settings.label_smoothing)
                loss.backward()
                if settings.clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), settings.clip_grad_norm)
                opt.step()
            if average is not None:
                average.update(model)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingError(f"training diverged at step {step + 1} (loss {value}); lower training.lr")
            loss_sum += value
            loss_n += 1
            step += 1
            if planned is None and step == 5:
                # seconds budget: fix the schedule's length from the speed of the first steps
                per_step = (time.perf_counter() - start) / step
                # mypy: planned is None only under a seconds budget, so settings.seconds is set
                planned = max(step + 1, int(settings.seconds / per_step))  # type: ignore[operator]
                eval_at = {s for s in plan_evals(planned) if s > step}
            if step in eval_at or (planned is not None and step >= planned):
                acc = evaluate(model, view, "val", settings.val_samples, device=device)
                curve.append(
                    CurvePoint(
                        step, step / steps_per_epoch, time.perf_counter() - start, loss_sum / max(1, loss_n), acc
                    )
                )
                loss_sum, loss_n = 0.0, 0
                if report is not None and report(step, acc):
                    pruned = True
                    break
        seconds = time.perf_counter() - start
        if not curve:
            acc = evaluate(model, view, "val", settings.val_samples, device=device)
            curve.append(CurvePoint(step, step / steps_per_epoch, seconds, loss_sum / max(1, loss_n), acc))
        model.eval()
        val_accuracy = curve[-1].val_accuracy
        if average is not None:  # the run's result is the average's (the curve keeps the last weights')
            val_accuracy = evaluate(average.model, view, "val", settings.val_samples, device=device)
        return model, TrainResult(
            val_accuracy=val_accuracy,
            steps=step,
            epochs=step / steps_per_epoch,
            seconds=seconds,
            images_per_second=step * batch / max(seconds, 1e-9),
            pruned=pruned,
            device=device,
            curve=curve,
            average=None if average is None else average.model,
            resumed_at=resumed_at,
            earlier_cpu_seconds=earlier_cpu,
        )
    finally:
        rng_scope.close()
        torch.set_num_threads(old_threads)
