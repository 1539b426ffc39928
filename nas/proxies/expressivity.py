"""Expressivity proxies and gradient statistics: Zen-score, ZiCo, SWAP and MeCo."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from nas.errors import ProxyError
from nas.proxies.base import Candidate, finite, register_proxy
from nas.proxies.layers import activations, forward_seen_by, hooked, in_train_mode, loss_backward, weight_layers


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
        with hooked(bns, record), torch.no_grad():
            out = feats(x)  # the BN term: each BN's batch std on the unperturbed input, as the paper defines it
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
        loss_backward(model, xs, ys)
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
    model, x = in_train_mode(c, "swap")
    n = min(samples, x.shape[0], 64)
    if n < 8:
        raise ProxyError(f"proxy 'swap': needs a batch of at least 8 inputs, got {x.shape[0]}")
    x = x[:n]
    words: list[torch.Tensor] = []
    zero = torch.zeros((), dtype=torch.int64)

    def pack(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        on = inputs[0].detach().reshape(n, -1) > 0  # one byte per sample and unit
        # sample i sets bit i of each unit's word (bit 63 is the sign bit: still one word per pattern); one
        # int64 per unit at a time, not samples x units of them (hundreds of MB for a 224x224 stem)
        word = torch.zeros(on.shape[1], dtype=torch.int64)
        for i in range(n):
            word.bitwise_or_(torch.where(on[i], torch.tensor(1 << i if i < 63 else -(1 << 63)), zero))
        words.append(word)

    forward_seen_by(model, activations(model), pack, x)
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
    model, x = in_train_mode(c, name)
    maps: list[torch.Tensor] = []

    def keep(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
        if out.dim() == 4:
            maps.append(out.detach()[0])

    # every distinct feature map: conv outputs (BN's only rescale channels, which leaves correlations as they
    # are) and activation outputs; the official code hooks every module, counting a map once per wrapper
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)] + activations(model)
    # the paper's maps are one input's; BN in train mode needs a few inputs for its statistics (a single input
    # at 1x1 has none), so 8 go through and the first one's maps are scored
    forward_seen_by(model, layers, keep, x[:8])
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
