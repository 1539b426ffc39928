"""Pareto fronts and hypervolume, for any number of objectives (numpy only).

Everything here works in *minimisation* form: a maximised objective is
negated by :func:`to_minimize` first. The hypervolume is exact: a sweep for
two objectives and the WFG algorithm (While, Bradstreet and Barone, IEEE TEC
2012) beyond, which is fast for the front sizes a search produces (hundreds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def to_minimize(values: np.ndarray | Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """Rows of objective values -> rows to minimise (maximised columns negated)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != len(directions):
        raise ValueError(f"values must be N x {len(directions)}, got shape {arr.shape}")
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return arr * signs


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    """a is no worse than b everywhere and better somewhere (minimisation)."""
    return bool(np.all(a <= b) and np.any(a < b))


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows no other row dominates (duplicates of a front point all stay)."""
    pts = np.asarray(points, dtype=float)
    n = len(pts)
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep
    if pts.shape[1] == 2:
        return _non_dominated_2d(pts)
    order = np.lexsort(pts.T[::-1])  # sort by the first objective, then the next...
    front: list[int] = []
    for i in order:
        p = pts[i]
        dominated = False
        for j in front:
            q = pts[j]
            if np.all(q <= p) and np.any(q < p):
                dominated = True
                break
        if dominated:
            keep[i] = False
        else:
            front.append(i)
    return keep


def _non_dominated_2d(pts: np.ndarray) -> np.ndarray:
    """Two objectives in O(n log n): sort by x then y; a point is on the front unless an earlier one has a
    lower y, or the same y at a lower x (an exact duplicate of a front point stays, as in the general case)."""
    keep = np.zeros(len(pts), dtype=bool)
    best_x, best_y = np.inf, np.inf
    for i in np.lexsort((pts[:, 1], pts[:, 0])).tolist():
        x, y = pts[i]
        if y < best_y:
            best_x, best_y = x, y
            keep[i] = True
        elif y == best_y and x == best_x:
            keep[i] = True
    return keep


def _hv2(pts: np.ndarray, ref: np.ndarray) -> float:
    pts = pts[np.argsort(pts[:, 0], kind="mergesort")]
    volume, best_y = 0.0, ref[1]
    for x, y in pts:
        if y < best_y:
            volume += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(volume)


def _wfg(pts: np.ndarray, ref: np.ndarray) -> float:
    if len(pts) == 0:
        return 0.0
    if pts.shape[1] == 1:
        return float(ref[0] - pts[:, 0].min())
    if pts.shape[1] == 2:
        return _hv2(pts, ref)
    pts = pts[np.argsort(pts[:, 0], kind="mergesort")[::-1]]  # worst first: small limit sets early
    total = 0.0
    for k in range(len(pts)):
        p = pts[k]
        inclusive = float(np.prod(ref - p))
        rest = pts[k + 1 :]
        if len(rest):
            limited = np.maximum(rest, p)
            limited = limited[non_dominated(limited)]
            limited = np.unique(limited, axis=0)
            total += inclusive - _wfg(limited, ref)
        else:
            total += inclusive
    return total


def hypervolume(points: np.ndarray | Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (minimisation; points beyond it count 0)."""
    pts = np.asarray(points, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if pts.size == 0:
        return 0.0
    if pts.ndim != 2 or pts.shape[1] != len(ref):
        raise ValueError(f"points must be N x {len(ref)}, got shape {pts.shape}")
    if not np.all(np.isfinite(ref)):
        raise ValueError("reference point must be finite")
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = np.unique(pts[non_dominated(pts)], axis=0)
    return _wfg(pts, ref)
