"""Zero-cost proxies, each written from its paper, and the params / MACs baselines.

Conventions shared by all (as in Abdelfattah et al., "Zero-Cost Proxies for
Lightweight NAS", ICLR 2021, which evaluated most of them side by side):

- "weights" are the weights of Conv2d and Linear layers; biases and BN
  affine parameters are not scored;
- data-dependent proxies use the candidate's batch with the net in train
  mode (BN normalises with batch statistics) and cross-entropy loss;
- every score is oriented so that higher predicts higher accuracy, and is
  returned as a finite float. Scores that span many orders of magnitude
  (synflow) are returned as natural logarithms, which keeps rankings and
  makes them safe to store as JSON;
- "activations" are the nets' nonlinearities (ReLU, ReLU6, h-swish, swish)
  outside squeeze-excite modules, whose gates are not feature maps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nas.errors import ProxyError
from nas.proxies.base import Candidate, finite, register_proxy
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


def _forward_seen_by(model: nn.Module, modules: list[nn.Module], hook: Any, x: torch.Tensor) -> int:
    """One no-grad forward pass of ``x`` with ``hook`` on every module of ``modules``; how many were hooked."""
    hooks = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return len(hooks)


def _loss_backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.train()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    return loss


# --------------------------------------------------------------------- baselines
@register_proxy(
    "params",
    paper="baseline",
    sign="parameter count (more = better)",
    needs_data=False,
    bn="not used",
    summary="number of parameters, counted analytically",
)
def params(c: Candidate) -> float:
    return float(c.cost.params)


@register_proxy(
    "macs",
    paper="baseline",
    sign="multiply-accumulates (more = better)",
    needs_data=False,
    bn="not used",
    summary="multiply-accumulates of one inference, counted analytically",
)
def macs(c: Candidate) -> float:
    return float(c.cost.macs)


# --------------------------------------------------------------------- gradient-based (pruning at init)
@register_proxy(
    "grad_norm",
    paper="Abdelfattah et al., ICLR 2021",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="sum over layers of the L2 norm of the loss gradient",
)
def grad_norm(c: Candidate) -> float:
    model = c.model()
    x, y = c.batch("grad_norm")
    _loss_backward(model, x, y)
    total = sum(float(g.norm()) for _, g in weight_grads(model))
    return finite("grad_norm", total)


@register_proxy(
    "snip",
    paper="Lee et al., SNIP, ICLR 2019 (as a NAS proxy: Abdelfattah et al. 2021)",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="sum of |weight * gradient| (connection sensitivity)",
)
def snip(c: Candidate) -> float:
    model = c.model()
    x, y = c.batch("snip")
    _loss_backward(model, x, y)
    total = sum(float((w * g).abs().sum()) for w, g in weight_grads(model))
    return finite("snip", total)


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

    hooks = [m.register_forward_hook(keep) for m in weight_layers(model)]
    try:
        _loss_backward(model, x, y)
    finally:
        for h in hooks:
            h.remove()
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


# --------------------------------------------------------------------- activation patterns and Jacobians
@register_proxy(
    "naswot",
    paper="Mellor et al., NAS without training, ICML 2021 (v2)",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="log-determinant of the kernel of binary activation patterns over the batch",
)
def naswot(c: Candidate) -> float:
    model = c.model()
    model.train()
    x, _ = c.batch("naswot")
    n = x.shape[0]
    if n < 2:
        raise ProxyError("proxy 'naswot': needs a batch of at least 2 inputs")
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def code(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        # c c^T + (1-c)(1-c)^T = 2 c c^T - |c_i| - |c_j| + N: one matmul, exact in float32 (integers < 2^24)
        bits = (inputs[0].detach().reshape(n, -1) > 0).float()
        ones = bits.sum(dim=1, dtype=torch.float64)
        kernel.add_(2 * (bits @ bits.t()).double() - ones[:, None] - ones[None, :] + bits.shape[1])

    if not _forward_seen_by(model, activations(model), code, x):
        raise ProxyError("proxy 'naswot': the net has no activations outside squeeze-excite")
    sign, logdet = torch.linalg.slogdet(kernel)
    if float(sign) <= 0:
        raise ProxyError(
            "proxy 'naswot': the activation-pattern kernel is singular "
            "(two inputs of the batch share every activation pattern)"
        )
    return finite("naswot", float(logdet))


@register_proxy(
    "jacob_cov",
    paper="Mellor et al., NAS without training, arXiv v1 2020 (as in Abdelfattah et al.)",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="-sum(log(v + k) + 1/(v + k)) over eigenvalues v of the input-Jacobian correlation",
)
def jacob_cov(c: Candidate) -> float:
    model = c.model()
    model.train()
    x, _ = c.batch("jacob_cov")
    x = x.clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()
    # mypy: x.grad is set by the backward pass above
    jac = x.grad.reshape(x.shape[0], -1).double().cpu().numpy()  # type: ignore[union-attr]
    if jac.shape[0] < 2:
        raise ProxyError("proxy 'jacob_cov': needs a batch of at least 2 inputs")
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jac)
    if not np.isfinite(corr).all():
        raise ProxyError(
            "proxy 'jacob_cov': an input's Jacobian is constant (zero variance), so correlation is undefined"
        )
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return finite("jacob_cov", float(-np.sum(np.log(np.maximum(v, 0) + k) + 1.0 / (np.maximum(v, 0) + k))))


# --------------------------------------------------------------------- expressivity and gradient statistics
def _features(model: nn.Module) -> nn.Module:
    """Everything before global pooling: stem, blocks and the head's conv / BN / act, if it has them."""
    parts: list[nn.Module] = [model.get_submodule("stem"), model.get_submodule("blocks")]
    head = model.get_submodule("head")
    for name in ("conv", "bn", "act"):
        if hasattr(head, name):
            parts.append(head.get_submodule(name))
    return nn.Sequential(*parts)


@register_proxy(
    "zen",
    paper="Lin et al., Zen-NAS, ICCV 2021",
    sign="as published (higher = better)",
    needs_data=False,
    bn="train",
    summary="log E|f(x) - f(x + 0.01 eps)| of the pre-pooling features under N(0,1) weights and "
    "inputs, residual links removed, plus the sum of log BN scales (batch std)",
)
def zen(c: Candidate, repeats: int = 3, batch: int = 16, alpha: float = 0.01) -> float:
    model = c.model()
    for block in model.modules():  # the paper scores plain nets: residual links removed
        if hasattr(block, "residual"):
            setattr(block, "residual", False)  # noqa: B010 - a plain attribute of searchspace's Block
    feats = _features(model).train()
    gen = torch.Generator(device="cpu").manual_seed(c.seed)
    with torch.no_grad():
        for m in feats.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                if m.bias is not None:
                    m.bias.zero_()
    bns = [m for m in feats.modules() if isinstance(m, nn.BatchNorm2d)]
    scores = []
    shape = (batch, c.arch.in_channels, c.arch.resolution, c.arch.resolution)
    variances: list[torch.Tensor] = []

    def record(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        variances.append(inputs[0].detach().var(dim=(0, 2, 3), unbiased=False))

    for _ in range(repeats):
        x = torch.randn(shape, generator=gen).to(c.device)
        eps = torch.randn(shape, generator=gen).to(c.device)
        variances.clear()
        hooks = [m.register_forward_hook(record) for m in bns]
        try:
            with torch.no_grad():
                out = feats(x)  # the BN term: each BN's batch std on the unperturbed input, as the paper defines it
        finally:
            for h in hooks:
                h.remove()
        with torch.no_grad():
            out2 = feats(x + alpha * eps)
        delta = float((out - out2).abs().sum(dim=(1, 2, 3)).mean()) / alpha
        if delta <= 0 or not math.isfinite(delta):
            raise ProxyError(f"proxy 'zen': the features do not respond to a perturbation of the input ({delta})")
        log_bn = sum(0.5 * math.log(max(float(v.mean()), 1e-30)) for v in variances)
        scores.append(math.log(delta) + log_bn)
    return finite("zen", float(np.mean(scores)))


@register_proxy(
    "zico",
    paper="Li et al., ZiCo, ICLR 2023",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="sum over layers of log(sum over weights of mean|g| / std(g)) across mini-batches",
)
def zico(c: Candidate, splits: int = 2) -> float:
    """The batch is cut into ``splits`` mini-batches, each with its own gradient (zeroed in between).

    The official code never zeroes, so its second "sample" is g1 + g2; this
    follows the paper, whose statistics are over independent mini-batches.
    """
    model = c.model()
    x, y = c.batch("zico")
    if x.shape[0] < 2 * splits:
        raise ProxyError(f"proxy 'zico': needs a batch of at least {2 * splits} inputs, got {x.shape[0]}")
    layers = weight_layers(model)
    grads: list[list[torch.Tensor]] = [[] for _ in layers]
    for xs, ys in zip(torch.chunk(x, splits), torch.chunk(y, splits), strict=True):
        _loss_backward(model, xs, ys)
        for i, m in enumerate(layers):
            grad = m.weight.grad
            if grad is not None:
                grads[i].append(grad.detach().reshape(-1).clone())
    total = 0.0
    scored = 0
    for g in grads:
        if len(g) < 2:
            continue
        stack = torch.stack(g).double()
        std = stack.std(dim=0, unbiased=False)
        mean_abs = stack.abs().mean(dim=0)
        mask = std > 0
        s = float((mean_abs[mask] / std[mask]).sum())
        if s > 0:
            total += math.log(s)
            scored += 1
    if not scored:
        raise ProxyError("proxy 'zico': no layer's gradient varies across mini-batches")
    return finite("zico", total)


# --------------------------------------------------------------------- newer expressivity proxies
@register_proxy(
    "swap",
    paper="Peng et al., SWAP-NAS, ICLR 2024 (the SWAP-Score, without the size regulariser)",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="number of distinct sample-wise activation patterns: for every activation unit, its "
    "on/off pattern over the batch; 64 samples, so the count is far from its 2^64 ceiling",
)
def swap(c: Candidate, samples: int = 64) -> float:
    """Each unit (channel x position) of every activation gives one ``samples``-bit word, packed into an int64;
    the score is how many distinct words the net produces.

    The paper's regularised score multiplies by a Gaussian of the parameter
    count centred on a size chosen per space; hwnas leaves size to its own
    objectives (``params``, ``macs``, latency), so the plain count is used.
    With fewer samples the count saturates at 2^samples for any wide net.
    """
    model = c.model()
    model.train()
    x, _ = c.batch("swap")
    n = min(samples, x.shape[0], 64)
    if n < 8:
        raise ProxyError(f"proxy 'swap': needs a batch of at least 8 inputs, got {x.shape[0]}")
    x = x[:n]
    weights = torch.ones(n, dtype=torch.int64).bitwise_left_shift(torch.arange(n, dtype=torch.int64))
    words: list[torch.Tensor] = []

    def pack(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        bits = (inputs[0].detach().reshape(n, -1) > 0).to(torch.int64)
        # distinct powers of two: the sum is a bitwise or, one word per unit (bit 63 wraps to the sign: still 1:1)
        words.append((bits * weights[:, None]).sum(dim=0))

    _forward_seen_by(model, activations(model), pack, x)
    if not words:
        raise ProxyError("proxy 'swap': the net has no activations outside squeeze-excite")
    return finite("swap", float(torch.unique(torch.cat(words)).numel()))


def _min_correlation_eigenvalue(features: torch.Tensor, channels: int | None, gen: torch.Generator) -> float | None:
    """λ_min of the Pearson correlation between the channels of one sample's feature map (C x H x W)."""
    f = features.reshape(features.shape[0], -1).double()
    c = f.shape[0]
    if c < 2 or f.shape[1] < 2:
        return None
    if channels is not None and c > channels:
        f = f[torch.randperm(c, generator=gen)[:channels]]
    corr = torch.corrcoef(f)
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)  # a constant channel correlates with nothing
    value = float(torch.linalg.eigvalsh(corr)[0])
    return value * c / channels if channels is not None and c > channels else value


def _meco(c: Candidate, name: str, channels: int | None) -> float:
    model = c.model()
    model.train()
    x, _ = c.batch(name)
    maps: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        if out.dim() == 4:
            maps.append(out.detach()[0])

    # every distinct feature map: conv outputs (BN's only rescale channels, which leaves correlations as they
    # are) and activation outputs; the official code hooks every module, counting a map once per wrapper
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)] + activations(model)
    # the paper's maps are one input's; BN in train mode needs a few inputs for its statistics (a single input
    # at 1x1 has none), so 8 go through and the first one's maps are scored
    _forward_seen_by(model, layers, keep, x[:8])
    gen = torch.Generator().manual_seed(c.seed)
    values = [v for m in maps if (v := _min_correlation_eigenvalue(m, channels, gen)) is not None]
    if not values:
        raise ProxyError(f"proxy {name!r}: no feature map with two channels and two positions")
    return finite(name, sum(values))


@register_proxy(
    "meco",
    paper="Jiang et al., MeCo, NeurIPS 2023",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="sum over feature maps (conv and activation outputs) of the smallest eigenvalue of the "
    "channels' Pearson correlation, on one input (BN statistics from 8)",
)
def meco(c: Candidate) -> float:
    return _meco(c, "meco", None)


@register_proxy(
    "meco_opt",
    paper="Jiang et al., MeCo, NeurIPS 2023 (MeCo_opt: 8 sampled channels per map)",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="MeCo on 8 channels per map drawn with the candidate's seed, scaled by channels / 8",
)
def meco_opt(c: Candidate) -> float:
    return _meco(c, "meco_opt", 8)
