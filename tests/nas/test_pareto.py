"""Pareto fronts and hypervolume against brute force on random points."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas.pareto import dominates, hypervolume, non_dominated, to_minimize


def brute_front(pts: np.ndarray) -> np.ndarray:
    return np.array([not any(dominates(q, p) for q in pts) for p in pts])


def brute_hv(pts: np.ndarray, ref: np.ndarray) -> int:
    """Count unit cells of the integer grid below ``ref`` that some point weakly dominates."""
    lo = pts.min(axis=0).astype(int) if len(pts) else ref.astype(int)
    count = 0
    for cell in itertools.product(*(range(int(lo[d]), int(ref[d])) for d in range(len(ref)))):
        c = np.asarray(cell)
        if any(np.all(p <= c) for p in pts):
            count += 1
    return count


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_front_and_hypervolume_match_brute_force(dims: int) -> None:
    rng = np.random.default_rng(dims)
    for trial in range(40 if dims < 4 else 15):
        n = int(rng.integers(1, 14))
        pts = rng.integers(0, 7, size=(n, dims)).astype(float)
        ref = np.full(dims, 7.0) if trial % 3 else rng.integers(3, 8, size=dims).astype(float)
        assert np.array_equal(non_dominated(pts), brute_front(pts))
        assert hypervolume(pts, ref) == pytest.approx(brute_hv(pts[np.all(pts < ref, axis=1)], ref))


def test_hypervolume_edge_cases() -> None:
    assert hypervolume(np.zeros((0, 2)), [1, 1]) == 0.0
    assert hypervolume([[2.0, 2.0]], [1, 1]) == 0.0  # beyond the reference
    assert hypervolume([[0.0, 0.0], [0.0, 0.0]], [1, 1]) == 1.0  # duplicates count once
    assert hypervolume([[0.5, np.nan], [0.0, 0.5]], [1, 1]) == 0.5  # NaN rows ignored
    with pytest.raises(ValueError, match="points must be N x 3"):
        hypervolume([[1.0, 2.0]], [3, 3, 3])


def test_to_minimize_negates_maximised_columns() -> None:
    got = to_minimize([[1.0, 2.0], [3.0, 4.0]], ["maximize", "minimize"])
    assert got.tolist() == [[-1.0, 2.0], [-3.0, 4.0]]
    with pytest.raises(ValueError, match="N x 3"):
        to_minimize([[1.0, 2.0]], ["minimize"] * 3)


def test_two_objective_front_matches_brute_force_with_ties() -> None:
    """The O(n log n) two-objective path agrees with the pairwise definition, duplicates and ties included."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        pts = rng.integers(0, 5, size=(int(rng.integers(1, 25)), 2)).astype(float)
        expected = np.array([not any(np.all(q <= p) and np.any(q < p) for q in pts) for p in pts])
        assert np.array_equal(non_dominated(pts), expected), pts
