"""The training proxy: learns, is deterministic, reports a learning curve a pruner can stop."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import searchspace as ss
from nas.datasets import Dataset
from nas.errors import TrainingError
from nas.training import TrainSettings, evaluate, train


@pytest.fixture(scope="module")
def arch(all_blocks: ss.SearchSpace) -> ss.Architecture:
    return all_blocks.sample(3)


def test_learns_the_synthetic_task(arch: ss.Architecture, synthetic: Dataset) -> None:
    view = synthetic.view(16, 3, val_fraction=0.25)
    result = train(arch, view, TrainSettings(steps=150, batch_size=32, lr=0.2, evals=3, val_samples=None), seed=0)
    assert result.steps == 150 and not result.pruned
    assert [p.step for p in result.curve] == [50, 100, 150]
    assert result.val_accuracy == result.curve[-1].val_accuracy
    assert result.val_accuracy > 0.6  # 5 classes: chance is 0.2
    assert result.curve[-1].train_loss < result.curve[0].train_loss


def test_same_seed_same_run(arch: ss.Architecture, synthetic: Dataset) -> None:
    view = synthetic.view(16, 3)
    s = TrainSettings(steps=12, batch_size=16, evals=2)
    a, b, c = train(arch, view, s, seed=1), train(arch, view, s, seed=1), train(arch, view, s, seed=2)
    assert [(p.train_loss, p.val_accuracy) for p in a.curve] == [(p.train_loss, p.val_accuracy) for p in b.curve]
    assert [p.train_loss for p in a.curve] != [p.train_loss for p in c.curve]


def test_the_seed_decides_dropout_too_whatever_ran_before(arch: ss.Architecture, synthetic: Dataset) -> None:
    """A head with dropout: the same seed gives the same run after the process's random state moved on,
    and training leaves that state as it found it."""
    import torch

    dropped = arch.model_copy(update={"head": arch.head.model_copy(update={"dropout": 0.5})})
    view = synthetic.view(16, 3)
    s = TrainSettings(steps=8, batch_size=16, evals=1)
    torch.manual_seed(123)
    a = train(dropped, view, s, seed=1)
    after = torch.rand(1)
    torch.rand(1000)  # the global generator moves on
    b = train(dropped, view, s, seed=1)
    assert a.curve[-1].train_loss == b.curve[-1].train_loss
    torch.manual_seed(123)
    assert torch.rand(1) == after  # untouched by the run


def test_report_sees_the_curve_and_can_stop_it(arch: ss.Architecture, synthetic: Dataset) -> None:
    seen: list[tuple[int, float]] = []

    def report(step: int, acc: float) -> bool:
        seen.append((step, acc))
        return step >= 10  # a pruner deciding at the second point

    result = train(arch, synthetic.view(16, 3), TrainSettings(steps=25, batch_size=16, evals=5), report=report)
    assert result.pruned and result.steps == 10
    assert [s for s, _ in seen] == [5, 10]
    assert [p.val_accuracy for p in result.curve] == [a for _, a in seen]


def test_epoch_and_seconds_budgets(arch: ss.Architecture, synthetic: Dataset) -> None:
    view = synthetic.view(16, 3, limit=64)
    result = train(arch, view, TrainSettings(epochs=2, batch_size=16, evals=1))
    assert result.steps == 8 and result.epochs == 2
    timed = train(arch, view, TrainSettings(seconds=1.0, batch_size=16, evals=2))
    assert timed.steps >= 6 and timed.seconds < 10


def test_settings_errors_name_the_field(arch: ss.Architecture, synthetic: Dataset) -> None:
    with pytest.raises(ValidationError, match="budget: give exactly one of epochs, steps, seconds"):
        TrainSettings(steps=10, epochs=1)
    with pytest.raises(ValidationError, match="budget: give exactly one of epochs, steps, seconds \\(got none\\)"):
        TrainSettings()
    with pytest.raises(ValidationError, match="lr"):
        TrainSettings(steps=1, lr=-1)
    with pytest.raises(TrainingError, match="the net takes 3x16x16 inputs but the data view gives 3x32x32"):
        train(arch, synthetic.view(32, 3), TrainSettings(steps=1))
    with pytest.raises(TrainingError, match="nothing to evaluate on"):
        train(arch, synthetic.view(16, 3, val_fraction=0.0), TrainSettings(steps=2))


def test_cuda_asked_for_where_there_is_none(arch: ss.Architecture, synthetic: Dataset) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    with pytest.raises(TrainingError, match="'cuda' was asked for but torch sees no CUDA device"):
        train(arch, synthetic.view(16, 3), TrainSettings(steps=1, device="cuda"))
    result = train(arch, synthetic.view(16, 3), TrainSettings(steps=2, device="auto", evals=1))
    assert result.device == "cpu"


def test_classifier_follows_the_data_and_evaluate(all_blocks: ss.SearchSpace, synthetic: Dataset) -> None:
    arch = all_blocks.sample(0)
    wide = arch.model_copy(update={"head": arch.head.model_copy(update={"classes": 100})})
    result = train(wide, synthetic.view(16, 3), TrainSettings(steps=2, evals=1))
    assert 0.0 <= result.val_accuracy <= 1.0
    from searchspace.model import build_model

    assert evaluate(build_model(arch), synthetic.view(16, 3), "test", samples=10) in {i / 10 for i in range(11)}


def test_gradient_clipping_bounds_the_updates(arch: ss.Architecture, synthetic: Dataset) -> None:
    import torch

    from nas.training import train_model
    from searchspace.model import build_model

    view = synthetic.view(16, 3)
    net = arch.model_copy(update={"head": arch.head.model_copy(update={"classes": view.num_classes})})
    torch.manual_seed(0)
    start = {k: v.clone() for k, v in build_model(net).state_dict().items() if k.endswith("weight")}

    def moved(clip: float | None) -> float:
        settings = TrainSettings(steps=5, batch_size=16, evals=1, weight_decay=0, clip_grad_norm=clip)
        model, _ = train_model(net, view, settings, seed=0)
        now = model.state_dict()
        return max(float((now[k] - w).abs().max()) for k, w in start.items())

    assert moved(None) > 1e-3
    assert moved(1e-7) < 1e-5  # five steps of lr <= 0.1 on a gradient of norm 1e-7 (no weight decay)
    with pytest.raises(ValidationError, match="clip_grad_norm"):
        TrainSettings(steps=1, clip_grad_norm=0)


def test_weight_average_is_an_ema_of_weights_and_bn_statistics() -> None:
    import torch
    from torch import nn

    from nas.training import WeightAverage

    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    avg = WeightAverage(net, decay=0.5)
    assert avg.model is not net and not any(p.requires_grad for p in avg.model.parameters())
    with torch.no_grad():
        net[0].weight.fill_(3.0)
        net[1].running_mean.fill_(2.0)
        net[1].num_batches_tracked.fill_(7)
    avg.update(net)  # first update: decay min(0.5, 1/10) = 0.1
    assert torch.allclose(avg.model[0].weight, torch.full((2, 2), 0.1 * 1.0 + 0.9 * 3.0))
    assert torch.allclose(avg.model[1].running_mean, torch.full((2,), 0.9 * 2.0))
    assert int(avg.model[1].num_batches_tracked) == 7  # counters are copied, not averaged
    for _ in range(20):
        avg.update(net)  # the decay reaches 0.5: the average closes in on the weights
    assert torch.allclose(avg.model[0].weight, torch.full((2, 2), 3.0), atol=1e-4)


def test_a_run_with_ema_returns_the_average_and_a_check_scores_both(arch: ss.Architecture, synthetic: Dataset) -> None:
    import torch

    from nas.datasets import DataSpec
    from nas.proxies.check import Protocol, train_one
    from nas.training import evaluate, train_model

    view = synthetic.view(16, 3)
    net = arch.model_copy(update={"head": arch.head.model_copy(update={"classes": view.num_classes})})
    plain = TrainSettings(steps=6, batch_size=16, evals=1)
    model, result = train_model(net, view, plain, seed=0)
    assert result.average is None and "average" not in result.as_dict()
    model2, result2 = train_model(net, view, plain.model_copy(update={"ema_decay": 0.9}), seed=0)
    # the average does not change the run itself
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True)
    )
    average = result2.average
    assert average is not None and not average.training
    assert any(
        not torch.equal(a, b) for a, b in zip(average.state_dict().values(), model2.state_dict().values(), strict=True)
    )
    assert result2.val_accuracy == evaluate(average, view, "val", plain.val_samples)  # the run's result
    # settings hashed into evaluation caches before ema_decay existed hash the same
    assert "ema_decay" not in plain.digest_dump() and plain.digest_dump().items() <= plain.model_dump().items()
    assert plain.model_copy(update={"ema_decay": 0.9}).digest_dump()["ema_decay"] == 0.9
    protocol = Protocol(steps=4, batch_size=8, split="val", test_samples=16, ema_decay=0.9)
    run = train_one(
        arch.encode(), 0, protocol.model_dump_json(), DataSpec(name="synthetic", limit=128).model_dump_json()
    )
    assert {"val_accuracy", "raw_val_accuracy", "accuracy"} <= set(run) and run["accuracy"] == run["val_accuracy"]


class Killed(Exception):
    pass


def test_a_killed_checkpointed_run_resumes_to_the_same_end(
    arch: ss.Architecture, synthetic: Dataset, tmp_path: Path
) -> None:
    """Killed at its second validation point (after a checkpoint every step), started again: the same curve,
    weights, weight average and dropout as a run never killed; a checkpoint of another run is not used."""
    import torch

    from nas.training import Checkpointing, train_model

    view = synthetic.view(16, 3, limit=64)  # 4 steps an epoch: the data order is drawn again after the kill
    net = arch.model_copy(update={"head": arch.head.model_copy(update={"classes": view.num_classes, "dropout": 0.3})})
    s = TrainSettings(steps=20, batch_size=16, evals=4, ema_decay=0.9, threads=1)
    whole_model, whole = train_model(net, view, s, seed=3)

    ckpt = Checkpointing(tmp_path / "run.pt", every_seconds=0.0)

    def kill_at_ten(step: int, acc: float) -> None:
        if step == 10:
            raise Killed()

    with pytest.raises(Killed):
        train_model(net, view, s, seed=3, report=kill_at_ten, checkpoint=ckpt)
    assert ckpt.path.exists()
    other_seed_model, other_seed = train_model(net, view, s, seed=4, checkpoint=ckpt)
    assert other_seed.resumed_at == 0  # not this run's checkpoint
    ckpt2 = Checkpointing(tmp_path / "run2.pt", every_seconds=0.0)
    with pytest.raises(Killed):
        train_model(net, view, s, seed=3, report=kill_at_ten, checkpoint=ckpt2)
    model, resumed = train_model(net, view, s, seed=3, checkpoint=ckpt2)
    assert resumed.resumed_at == 9  # saved before step 10 began; step 10 is done again
    assert resumed.earlier_cpu_seconds > 0
    assert [asdict_point(p) for p in resumed.curve] == [asdict_point(p) for p in whole.curve]
    assert resumed.val_accuracy == whole.val_accuracy
    for a, b in zip(model.state_dict().values(), whole_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(resumed.average.state_dict().values(), whole.average.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(TrainingError, match="needs a steps or epochs budget"):
        train_model(net, view, TrainSettings(seconds=1.0), checkpoint=ckpt)


def asdict_point(p: object) -> tuple[object, ...]:
    return (p.step, p.epoch, p.train_loss, p.val_accuracy)  # type: ignore[attr-defined]
