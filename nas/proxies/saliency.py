"""Saliency proxies from pruning at initialisation: gradient norm, SNIP, GraSP, Fisher and (data-free) SynFlow.

Each sums a per-weight (or per-channel) saliency over the net's conv and
linear layers, from one loss gradient (SynFlow: from the gradient of the
summed output of the linearised net on an all-ones input).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nas.errors import ProxyError
from nas.proxies.base import Candidate, finite, register_proxy
from nas.proxies.layers import ACTIVATIONS, hooked, loss_backward, weight_grads, weight_layers


def _gradient_sum(c: Candidate, name: str, per_layer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """One loss gradient on the candidate's batch; the sum over conv / linear layers of ``per_layer(w, grad)``."""
    model = c.model()
    x, y = c.batch(name)
    loss_backward(model, x, y)
    return finite(name, sum(float(per_layer(w, g)) for w, g in weight_grads(model)))


@register_proxy(
    "grad_norm",
    paper="Abdelfattah et al., ICLR 2021",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="sum over layers of the L2 norm of the loss gradient",
)
def grad_norm(c: Candidate) -> float:
    return _gradient_sum(c, "grad_norm", lambda _w, g: g.norm())


@register_proxy(
    "snip",
    paper="Lee et al., SNIP, ICLR 2019 (as a NAS proxy: Abdelfattah et al. 2021)",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="sum of |weight * gradient| (connection sensitivity)",
)
def snip(c: Candidate) -> float:
    return _gradient_sum(c, "snip", lambda w, g: (w * g).abs().sum())


class _HardSigmoid(nn.Module):
    """relu6(x + 3) / 6 from clamp, whose second derivative autograd knows (hardsigmoid's it does not)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + 3, 0, 6) / 6


class _HardSwish(_HardSigmoid):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * super().forward(x)


def _twice_differentiable(model: nn.Module) -> nn.Module:
    """The same function, with every module autograd can differentiate twice (for Hessian-vector products)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Hardsigmoid):
            setattr(model, name, _HardSigmoid())
        elif isinstance(child, nn.Hardswish):
            setattr(model, name, _HardSwish())
        else:
            _twice_differentiable(child)
    return model


@register_proxy(
    "grasp",
    paper="Wang et al., GraSP, ICLR 2020 (as a NAS proxy: Abdelfattah et al. 2021)",
    sign="sum of -weight * (Hessian @ gradient), as Abdelfattah et al. score it (higher = better)",
    needs_data=True,
    bn="train",
    summary="gradient-signal preservation: -theta . Hg",
)
def grasp(c: Candidate) -> float:
    model = _twice_differentiable(c.model())
    model.train()
    x, y = c.batch("grasp")
    layers = weight_layers(model)
    weights: list[torch.Tensor] = [m.weight for m in layers]
    loss = F.cross_entropy(model(x), y)
    g = [t.detach() for t in torch.autograd.grad(loss, weights)]
    loss = F.cross_entropy(model(x), y)
    g2 = torch.autograd.grad(loss, weights, create_graph=True)
    z = torch.stack([(a * b).sum() for a, b in zip(g2, g, strict=True)]).sum()
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    total = sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg, strict=True) if h is not None)
    return finite("grasp", total)


@register_proxy(
    "fisher",
    paper="Theis et al. 2018; Turner et al., BlockSwap, ICLR 2020 (as a NAS proxy: Abdelfattah et al. 2021)",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="sum over output channels of conv/linear layers of 0.5 * mean over the batch of "
    "(sum_hw act * grad)^2, act being the layer's raw output",
)
def fisher(c: Candidate) -> float:
    """Channel saliency: the Fisher information of a per-channel mask on each conv / linear output.

    As Abdelfattah et al. compute it, the activation is the layer's output
    before BN and nonlinearity. Their code then copies each channel's value to
    every weight of the channel before summing; this sums over channels, as
    the papers define it (the two differ by a per-layer fan-in factor).
    """
    model = c.model()
    x, y = c.batch("fisher")
    kept: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        if out.requires_grad:
            out.retain_grad()
            kept.append(out)

    with hooked(weight_layers(model), keep):
        loss_backward(model, x, y)
    total = 0.0
    for a in kept:
        if a.grad is None:
            continue
        per_channel = (a.detach() * a.grad).sum(dim=(2, 3)) if a.dim() == 4 else a.detach() * a.grad
        total += float(0.5 * per_channel.pow(2).mean(dim=0).sum())
    return finite("fisher", total)


# --------------------------------------------------------------------- data-free
def _linearised(model: nn.Module) -> nn.Module:
    """BN and nonlinearities out: with |weights| and an all-ones input every path is positive.

    The paper's net has ReLUs only, which are the identity on positive
    inputs; ReLU6 and h-swish are not (ReLU6 saturates, so only the classifier
    would score), hence every activation, SE's included, becomes the identity.
    SE gates stay: they saturate at 1 and pass the signal through.
    """
    for name, child in list(model.named_children()):
        if isinstance(child, (nn.BatchNorm2d, nn.Dropout, *ACTIVATIONS)):
            setattr(model, name, nn.Identity())
        else:
            _linearised(child)
    return model


@register_proxy(
    "synflow",
    paper="Tanaka et al., SynFlow, NeurIPS 2020 (as a NAS proxy: Abdelfattah et al. 2021)",
    sign="log of the published score (higher = better)",
    needs_data=False,
    bn="removed",
    summary="log sum of |theta * d(sum of outputs)/d theta| with |theta|, no BN, all-ones input, float64",
)
def synflow(c: Candidate) -> float:
    model = _linearised(c.model()).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones(1, c.arch.in_channels, c.arch.resolution, c.arch.resolution, dtype=torch.float64, device=c.device)
    model.zero_grad(set_to_none=True)
    model(ones).sum().backward()
    total = sum(float((w * g).abs().sum()) for w, g in weight_grads(model))
    if not math.isfinite(total):
        raise ProxyError("proxy 'synflow': the synaptic flow overflowed float64 (the net is too deep or wide)")
    if total <= 0:
        raise ProxyError("proxy 'synflow': no weight carries synaptic flow (score 0)")
    return math.log(total)
