"""Ensembles: several proxies' opinions of a net combined into one score.

Two ways to combine, for two situations:

- Over a population that is scored together (a benchmark, a batch of a
  search), :func:`rank_vote` is plain rank aggregation: each member ranks
  the nets, the ensemble's score is the mean rank.
- For one net at a time (a search worker scores one candidate), there is no
  population to rank within, so each member's score is placed against a
  fixed *reference sample* of the same space: standardised with the median
  and interquartile spread of the member's scores over that sample, then
  averaged over members. Standardising against a fixed sample keeps a net's
  score the same whenever it is scored (an Optuna objective must be stable)
  and, unlike a percentile, keeps order among nets beyond the sample's range.

An ensemble is named ``ensemble:<member>+<member>+...`` (members' standardised
scores averaged) or ``rank:<member>+<member>+...`` wherever a proxy name is
accepted. ``rank:`` is AZ-NAS's aggregation, the sum over members of
log(rank / n), so a net must be good by every member, with the rank taken
within the reference sample as a search must (one net at a time): the
member's percentile among the sample's n scores, interpolated between them
and held within [1/(n+1), n/(n+1)], so no member can outweigh the others by
more than AZ-NAS's own log(1/n) (a normal-CDF standing, used before, gave a
net far below the sample -z^2/2 and let one member decide). Being rank-based,
it reads MACs and log-MACs alike (but for the interpolation between sample
points). Beyond the sample's range the percentiles tie, and the standardised
scores, at a weight too small to matter anywhere else (:data:`TIE_BREAK`),
keep their order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from latency_tables.stats import rankdata
from nas.errors import ProxyError

PREFIX = "ensemble:"
RANK_PREFIX = "rank:"
PREFIXES = (PREFIX, RANK_PREFIX)
Mode = Literal["mean", "rank"]
#: weight of the members' summed standardised scores in ``rank:``, where it only breaks ties beyond the
#: reference sample's range (a percentile step inside it moves the log-sum by ~log((k+1)/k) >= 0.03 at n=32)
TIE_BREAK = 1e-4
#: names the rank: formula, recorded with a study so a resumed one says when its earlier trials used another
RANK_FORMULA = "log percentile in the reference sample"


def is_ensemble(name: str) -> bool:
    return name.startswith(PREFIXES)


def mode_of(name: str) -> Mode:
    return "rank" if name.startswith(RANK_PREFIX) else "mean"


def parse_members(name: str) -> tuple[str, ...]:
    """``ensemble:a+b+c`` or ``rank:a+b+c`` -> ("a", "b", "c"), each a registered proxy (checked by the caller)."""
    prefix = next((p for p in PREFIXES if name.startswith(p)), None)
    if prefix is None:
        raise ProxyError(
            f"proxy {name!r}: an ensemble is named {PREFIX}<proxy>+<proxy>+... or {RANK_PREFIX}<proxy>+<proxy>+..."
        )
    members = tuple(m.strip() for m in name[len(prefix) :].split("+"))
    if len(members) < 2 or any(not m for m in members):
        raise ProxyError(f"proxy {name!r}: an ensemble needs at least two members, e.g. {prefix}synflow+naswot")
    if len(set(members)) != len(members):
        raise ProxyError(f"proxy {name!r}: a member appears twice")
    if any(is_ensemble(m) for m in members):
        raise ProxyError(f"proxy {name!r}: ensembles do not nest")
    return members


def rank_vote(scores: Mapping[str, Sequence[float]]) -> np.ndarray:
    """Mean rank of each net over the member proxies (higher = better)."""
    if not scores:
        raise ProxyError("rank_vote: no member scores")
    lengths = {len(v) for v in scores.values()}
    if len(lengths) != 1:
        raise ProxyError(f"rank_vote: members scored different numbers of nets: {sorted(lengths)}")
    return np.mean([rankdata(v) for v in scores.values()], axis=0)


@dataclass(frozen=True)
class Reference:
    """Per member: median and robust spread of its scores over a reference sample."""

    members: tuple[str, ...]
    center: tuple[float, ...]
    spread: tuple[float, ...]
    size: int
    source: str
    mode: Mode = "mean"
    #: per member, its reference scores sorted (``rank`` mode's percentiles)
    sample: tuple[tuple[float, ...], ...] = ()

    @classmethod
    def fit(cls, scores: Mapping[str, Sequence[float]], source: str, mode: Mode = "mean") -> Reference:
        members = tuple(scores)
        center, spread = [], []
        for m in members:
            v = np.asarray(scores[m], dtype=float)
            if len(v) < 4:
                raise ProxyError(f"ensemble reference: member {m!r} scored only {len(v)} nets; at least 4 needed")
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            s = (q3 - q1) / 1.349  # the IQR of a normal distribution is 1.349 sigma
            if not s > 0:
                s = float(np.std(v)) or 1.0
            center.append(float(med))
            spread.append(float(s))
        sample = tuple(tuple(sorted(float(x) for x in scores[m])) for m in members)
        return cls(members, tuple(center), tuple(spread), len(next(iter(scores.values()))), source, mode, sample)

    def percentile(self, member: int, value: float) -> float:
        """``value``'s standing among the member's reference scores: k/(n+1) at the k-th smallest, linear
        between them, held at 1/(n+1) below the smallest and n/(n+1) above the largest."""
        ref = np.asarray(self.sample[member])
        n = len(ref)
        return float(np.interp(value, ref, np.arange(1, n + 1) / (n + 1)))

    def combine(self, member_scores: dict[str, float]) -> float:
        z = [(member_scores[m] - c) / s for m, c, s in zip(self.members, self.center, self.spread, strict=True)]
        if self.mode == "rank":
            logs = [math.log(self.percentile(i, member_scores[m])) for i, m in enumerate(self.members)]
            return float(sum(logs) + TIE_BREAK * sum(z))
        return float(np.mean(z))
