"""What a proxy is, and the net it scores.

A proxy is one function of a :class:`Candidate` (the architecture, a fresh
model on demand, and a batch of data) returning a float where higher means
better expected accuracy. Registered with :func:`register_proxy` together
with its paper, the sign convention of the original and what it needs, so
adding one touches one file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from nas.errors import ProxyError
from searchspace.architecture import Architecture
from searchspace.registry import Registry

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(eq=False)
class Candidate:
    """One architecture to score: the model is rebuilt (same seed, same weights) each time a proxy asks.

    Proxies change weights (synflow takes absolute values, zen re-draws
    them), so each gets its own copy; rebuilding from the seed costs about
    as much as a deepcopy and leaves nothing shared.
    """

    arch: Architecture
    inputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None
    seed: int = 0
    device: str = "cpu"
    _cost: object = field(default=None, init=False, repr=False)

    def model(self) -> nn.Module:
        import torch

        from searchspace.model import build_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = build_model(self.arch)
        # channels-last: the faster layout for depthwise-heavy nets on CPU
        net = net.to(self.device)
        # mypy: torch's stubs lack Module.to(memory_format=...), which torch documents
        return net.to(memory_format=torch.channels_last) if self.device == "cpu" else net  # type: ignore[call-overload]

    def batch(self, proxy: str) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        if self.inputs is None or self.targets is None:
            raise ProxyError(f"proxy {proxy!r} needs a batch of data (inputs and labels); none was given")
        x = self.inputs.to(self.device)
        if self.device == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.targets.to(self.device)

    @property
    def cost(self):
        if self._cost is None:
            from searchspace.cost import count_cost

            self._cost = count_cost(self.arch)
        return self._cost


@dataclass(frozen=True)
class Proxy:
    """A registered proxy. ``fn`` returns a finite float, higher = better (after any sign flip noted in ``sign``)."""

    name: str
    fn: Callable[[Candidate], float]
    paper: str
    sign: str
    needs_data: bool
    bn: Literal["train", "removed", "not used"]
    summary: str

    def score(self, cand: Candidate) -> float:
        """``fn(cand)`` with torch's random state seeded by the candidate's seed: dropout masks (the heads have
        dropout, and most proxies run the net in train mode) and any random draw are the same every time the
        same net is scored, in any process. The caller's random state is left as it was."""
        import torch

        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(cand.seed)
            return self.fn(cand)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "paper": self.paper,
            "sign": self.sign,
            "needs_data": self.needs_data,
            "bn": self.bn,
            "summary": self.summary,
        }


PROXIES: Registry[Proxy] = Registry("proxy", ProxyError)


def register_proxy(
    name: str, *, paper: str, sign: str, needs_data: bool, bn: Literal["train", "removed", "not used"], summary: str
) -> Callable[[Callable[[Candidate], float]], Callable[[Candidate], float]]:
    def deco(fn: Callable[[Candidate], float]) -> Callable[[Candidate], float]:
        PROXIES.register(name, Proxy(name, fn, paper, sign, needs_data, bn, summary))
        return fn

    return deco


def finite(name: str, value: float, why: str = "") -> float:
    """``value`` if finite, else a ProxyError saying which proxy and why."""
    if not math.isfinite(value):
        raise ProxyError(f"proxy {name!r}: the score is {value}{' (' + why + ')' if why else ''}")
    return float(value)
