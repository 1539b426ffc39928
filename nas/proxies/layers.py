"""What the proxies read of a net: its weight layers and their gradients, its activations, hooked passes.

"Weights" are the weights of Conv2d and Linear layers; "activations" are the
nets' nonlinearities (ReLU, ReLU6, h-swish, swish) outside squeeze-excite
modules, whose gates are not feature maps (the conventions of
:mod:`nas.proxies.zero_cost`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nas.proxies.base import Candidate
from searchspace.torch_modules import SEModule

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU)


def weight_layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def weight_grads(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, its gradient) of every conv / linear layer the last backward pass reached."""
    return [(m.weight.detach(), m.weight.grad) for m in weight_layers(model) if m.weight.grad is not None]


def activations(model: nn.Module) -> list[nn.Module]:
    inside_se = {id(m) for se in model.modules() if isinstance(se, SEModule) for m in se.modules()}
    return [m for m in model.modules() if isinstance(m, ACTIVATIONS) and id(m) not in inside_se]


@contextmanager
def hooked(modules: Sequence[nn.Module], hook: Any) -> Iterator[int]:
    """``hook`` as a forward hook on every module of ``modules`` while the block runs (it yields how many)."""
    hooks = [m.register_forward_hook(hook) for m in modules]
    try:
        yield len(hooks)
    finally:
        for h in hooks:
            h.remove()


def forward_seen_by(model: nn.Module, modules: Sequence[nn.Module], hook: Any, x: torch.Tensor) -> int:
    """One no-grad forward pass of ``x`` with ``hook`` on every module of ``modules``; how many were hooked."""
    with hooked(modules, hook) as n, torch.no_grad():
        model(x)
    return n


def loss_backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.train()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss


def in_train_mode(c: Candidate, proxy: str) -> tuple[nn.Module, torch.Tensor]:
    """A fresh model of the candidate in train mode (BN normalises with batch statistics) and the batch's inputs."""
    model = c.model()
    model.train()
    x, _ = c.batch(proxy)
    return model, x
