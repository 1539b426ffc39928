"""Activation-pattern and Jacobian proxies of "NAS without training": NASWOT and the Jacobian covariance."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from nas.errors import ProxyError
from nas.proxies.base import Candidate, finite, register_proxy
from nas.proxies.layers import activations, forward_seen_by, in_train_mode


@register_proxy(
    "naswot",
    paper="Mellor et al., NAS without training, ICML 2021 (v2)",
    sign="as published (higher = better)",
    needs_data=True,
    bn="train",
    summary="log-determinant of the kernel of binary activation patterns over the batch",
)
def naswot(c: Candidate) -> float:
    model, x = in_train_mode(c, "naswot")
    n = x.shape[0]
    if n < 2:
        raise ProxyError("proxy 'naswot': needs a batch of at least 2 inputs")
    kernel = torch.zeros(n, n, dtype=torch.float64)

    def code(_m: nn.Module, inputs: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        # c c^T + (1-c)(1-c)^T = 2 c c^T - |c_i| - |c_j| + N: one matmul, exact in float32 (integers < 2^24)
        bits = (inputs[0].detach().reshape(n, -1) > 0).float()
        ones = bits.sum(dim=1, dtype=torch.float64)
        kernel.add_(2 * (bits @ bits.t()).double() - ones[:, None] - ones[None, :] + bits.shape[1])

    if not forward_seen_by(model, activations(model), code, x):
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
    model, x = in_train_mode(c, "jacob_cov")
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
