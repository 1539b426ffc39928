"""Estimating a layer a table lacks: per-kind least squares of latency on [1, MACs, memory traffic].

The predictor's ``missing="estimate"`` mode: fitted once, on the table's
measured entries, the first time a layer needs it.
"""

from __future__ import annotations

import numpy as np

from latency_tables.errors import MissingEntryError
from latency_tables.signatures import Layer, parse_key
from latency_tables.table import LatencyTable
from searchspace.cost import block_cost, head_cost


def layer_features(layer: Layer) -> tuple[float, float]:
    """(MACs, activation elements in + out) of a layer, for the estimator."""
    if layer.block is not None:
        _, macs, _, out = block_cost(layer.block, layer.size)
        traffic = layer.cin * layer.size**2 + layer.block.cout * out**2
    else:
        assert layer.head is not None
        _, macs, traffic = head_cost(layer.head, layer.cin, layer.size)
    return float(macs), float(traffic)


class LayerEstimator:
    """Latency of layers ``table`` lacks, from a regression per layer kind (all kinds together: ``"*"``)."""

    def __init__(self, table: LatencyTable, command: str) -> None:
        self.table = table
        #: what measures the missing layers instead, named when there is too little to fit
        self.command = command
        self._beta: dict[str, np.ndarray] | None = None

    def estimate(self, layer: Layer) -> float:
        """Per-kind least squares of latency on [1, MACs, traffic] over the table's measured entries."""
        if self._beta is None:
            rows: dict[str, list[tuple[float, float, float]]] = {}
            for key, entry in self.table.entries.items():
                lyr = parse_key(key)
                macs, traffic = layer_features(lyr)
                rows.setdefault(lyr.kind, []).append((macs, traffic, entry.median_ms))
            every = [r for v in rows.values() for r in v]
            self._beta = {}
            for kind, data in list(rows.items()) + [("*", every)]:
                arr = np.asarray(data)
                if len(arr) < 3:
                    continue
                x = np.column_stack([np.ones(len(arr)), arr[:, 0], arr[:, 1]])
                beta, *_ = np.linalg.lstsq(x, arr[:, 2], rcond=None)
                self._beta[kind] = beta
            if "*" not in self._beta:
                raise MissingEntryError([layer.key], self.table.profile.id, self.command)
        beta = self._beta.get(layer.kind, self._beta["*"])
        macs, traffic = layer_features(layer)
        return float(max(beta[0] + beta[1] * macs + beta[2] * traffic, 0.0))
