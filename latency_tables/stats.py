"""Rank statistics shared by latency validation and proxy validation (numpy only, no scipy)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["kendall_tau_b", "rankdata", "spearman"]


def rankdata(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (what Spearman's rho needs)."""
    arr = np.asarray(x, dtype=float)
    order = np.argsort(arr, kind="mergesort")
    ranks = np.empty(len(arr))
    ranks[order] = np.arange(1, len(arr) + 1)
    # average the ranks of each group of equal values
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return np.asarray(sums[inverse] / counts[inverse])


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho: Pearson correlation of average ranks (nan when undefined)."""
    rx, ry = rankdata(x), rankdata(y)
    if len(rx) != len(ry):
        raise ValueError(f"spearman: {len(rx)} vs {len(ry)} values")
    if len(rx) < 2:
        return math.nan
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denom if denom > 0 else math.nan


#: up to this many values kendall_tau_b compares all pairs in one array operation (n^2 floats: 2 MB at 500)
KENDALL_MATRIX_MAX = 500


def kendall_tau_b(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b (ties in either variable corrected for); nan when undefined.

    O(n^2) time over all pairs: all at once up to :data:`KENDALL_MATRIX_MAX` values (bootstrap intervals call
    it thousands of times on tens of nets), else one row at a time (O(n) memory).
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) != len(b):
        raise ValueError(f"kendall_tau_b: {len(a)} vs {len(b)} values")
    if len(a) < 2:
        return math.nan
    if len(a) <= KENDALL_MATRIX_MAX:
        upper = np.triu_indices(len(a), 1)
        sx = np.sign(a[:, None] - a[None, :])[upper]
        sy = np.sign(b[:, None] - b[None, :])[upper]
        nx, ny = np.count_nonzero(sx), np.count_nonzero(sy)
        if nx == 0 or ny == 0:
            return math.nan
        return float((sx * sy).sum()) / math.sqrt(float(nx) * float(ny))
    score = untied_x = untied_y = 0
    for i in range(len(a) - 1):
        sx, sy = np.sign(a[i + 1 :] - a[i]), np.sign(b[i + 1 :] - b[i])
        score += int((sx * sy).sum())  # +1 concordant, -1 discordant, 0 tied in either
        untied_x += int(np.count_nonzero(sx))
        untied_y += int(np.count_nonzero(sy))
    if untied_x == 0 or untied_y == 0:
        return math.nan
    return score / math.sqrt(float(untied_x) * float(untied_y))
