"""The baselines every proxy must beat: parameter and MAC counts, counted analytically."""

from __future__ import annotations

from nas.proxies.base import Candidate, register_proxy


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
