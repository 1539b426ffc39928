"""Predicting a net's latency from a table: sum its layers, then calibrate.

``predict_many`` scores many nets at once: each distinct (block, input size)
is looked up once and cached as an index; after that a batch becomes index
arrays with no Python step per block (input sizes follow from the strides,
in numpy), and the sums and the calibration are numpy operations.

A layer the table lacks is, depending on ``missing``:
``measure``: measured now and added to the table (only where the table's host
is this host); ``estimate``: estimated from a per-kind regression on the
table's entries (MACs and memory traffic), and every result that used one is
flagged ``estimated``; ``error``: a MissingEntryError naming the layers and
the command that measures them. ``auto`` measures on the table's host and
raises elsewhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import repeat
from pathlib import Path
from typing import Literal

import numpy as np

from latency_tables import calibration
from latency_tables.errors import MissingEntryError
from latency_tables.estimator import LayerEstimator
from latency_tables.host import HostCheck, build_command, check_table
from latency_tables.prediction import LayerLatency, Prediction
from latency_tables.profiles import HostInfo
from latency_tables.signatures import Layer, block_key, head_key, parse_key
from latency_tables.table import Calibration, LatencyTable
from searchspace.architecture import Architecture, Block, Head
from searchspace.blocks import get_block_type
from searchspace.cost import block_cost, head_cost

Missing = Literal["auto", "measure", "estimate", "error"]

__all__ = ["LatencyPredictor", "LayerLatency", "Missing", "Prediction"]


def layer_params(layer: Layer) -> int:
    """A layer's parameter count (its weights, which an isolated timing has hot in the caches)."""
    if layer.block is not None:
        return block_cost(layer.block, layer.size)[0]
    if layer.head is not None:
        return head_cost(layer.head, layer.cin, layer.size)[0]
    return 0


class LatencyPredictor:
    """Latency of architectures on one device profile, from one table."""

    def __init__(
        self,
        table: LatencyTable,
        path: str | Path | None = None,
        *,
        missing: Missing = "auto",
        space: str | None = None,
        host_check: HostCheck | None = None,
    ) -> None:
        self.table = table
        #: the space the nets come from: selects its calibration when the table has one
        self.space = space
        self.path = Path(path) if path else None
        self.missing = missing
        #: whether the table describes this host; without one given, the fingerprint's (or cached) verdict
        self.host_check = host_check or check_table(table, measure=False)
        #: layers may be measured into the table here: same fingerprint, and no measured speed difference
        self.same_host = not table.host.differences(HostInfo.current()) and not self.host_check.foreign
        self.host_warning = (
            f"{self.host_check.summary()}; its latencies describe that host, not this one. "
            f"Build this host's table: {build_command(table.profile.id, space)}"
            if self.host_check.foreign
            else None
        )
        if self.host_warning:
            warnings.warn(self.host_warning, stacklevel=2)
        # per-kind columns, fixed for this predictor's life (a type registered later is not looked up here)
        self._kinds = calibration.kinds()
        self._kind_index = {k: i for i, k in enumerate(self._kinds)}
        # index 0 is the free identity layer
        self._keys: dict[str, int] = {"": 0}
        self._layers: list[Layer | None] = [None]
        self._latency: list[float] = [0.0]
        self._kind: list[int] = [0]  # the identity row adds 0 ms to whichever column
        self._estimated: list[bool] = [False]
        self._params: list[int] = [0]  # each layer's parameter count (the ``weights`` calibration sums them)
        self._param_array: np.ndarray | None = None
        self._blocks: dict[tuple[Block, int, bool], tuple[int, int]] = {}
        self._by_id: dict[tuple[int, int], tuple[int, int]] = {}
        # for the batch path (see _gather): id(block) -> log2 of its stride, and
        # id(block) * 1024 + input size -> index << 20 | output size
        self._shift: dict[int, int] = {}
        self._packed: dict[int, int] = {}
        self._alive: list[Block | Head] = []
        self._heads: dict[tuple[Head, int, int], int] = {}
        self._heads_by_id: dict[tuple[int, int, int], int] = {}
        self._stems_by_id: dict[tuple[int, int], tuple[int, int]] = {}
        self._estimator: LayerEstimator | None = None  # made when a layer first needs an estimate
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None  # (net latency, kind) per index, built lazily
        for key in table.entries:
            self._add(parse_key(key))

    # ------------------------------------------------------------ indexing
    def _add(self, layer: Layer, kind: str | None = None) -> int:
        idx = self._keys.get(layer.key)
        if idx is not None:
            return idx
        idx = len(self._latency)
        self._keys[layer.key] = idx
        self._layers.append(layer)
        entry = self.table.entries.get(layer.key)
        self._latency.append(entry.median_ms if entry else float("nan"))
        self._kind.append(self._kind_index[kind or layer.kind])
        self._estimated.append(False)
        self._params.append(layer_params(layer))
        self._arrays = None
        return idx

    def _block_index(self, block: Block, size: int, stem: bool) -> tuple[int, int]:
        cached = self._blocks.get((block, size, stem))
        if cached is None:
            _, _, _, out = block_cost(block, size)
            if block.is_identity:
                cached = (0, out)
            else:
                key = block_key(block, size)
                cached = (self._add(Layer(key, size, block.cin, block=block), "stem" if stem else None), out)
            self._blocks[(block, size, stem)] = cached
        if not stem:
            # Nets sampled from one space share Block objects: later lookups go by identity
            # (an int hash) instead of by value (a far slower pydantic hash). Holding the block
            # keeps it alive, so its id cannot be reused by another object.
            self._by_id[(id(block), size)] = cached
            self._alive.append(block)
            self._pack(block, size, cached)
        return cached

    def _pack(self, block: Block, size: int, hit: tuple[int, int]) -> None:
        """Remember a block at an input size for the batch path (sizes and ids it cannot pack are left out)."""
        key = id(block)
        if size >= 1024 or hit[1] >= 1024 or key >= 1 << 52 or block.stride & (block.stride - 1):
            return
        self._shift[key] = block.stride.bit_length() - 1
        self._packed[key * 1024 + size] = hit[0] << 20 | hit[1]

    def _head_index(self, head: Head, channels: int, size: int) -> int:
        hit = self._heads_by_id.get((id(head), channels, size))
        if hit is not None:
            return hit
        cached = self._heads.get((head, channels, size))
        if cached is None:
            key = head_key(head, channels, size)
            cached = self._add(Layer(key, size, channels, head=head.model_copy(update={"dropout": 0.0})))
            self._heads[(head, channels, size)] = cached
        self._heads_by_id[(id(head), channels, size)] = cached
        self._alive.append(head)  # keeps the id from being reused (see _block_index)
        return cached

    def indices(self, arch: Architecture) -> list[int]:
        """Table indices of the net's layers, in order (0 = identity)."""
        stem = self._stems_by_id.get((id(arch.stem), arch.resolution))
        if stem is None:
            stem = self._block_index(arch.stem, arch.resolution, True)
            self._stems_by_id[(id(arch.stem), arch.resolution)] = stem
            self._alive.append(arch.stem)
        idx, size = stem
        out = [idx]
        fast = self._by_id.get
        for block in arch.blocks:
            hit = fast((id(block), size))
            idx, size = hit if hit is not None else self._block_index(block, size, False)
            out.append(idx)
        channels = arch.blocks[-1].cout if arch.blocks else arch.stem.cout
        out.append(self._head_index(arch.head, channels, size))
        return out

    # ------------------------------------------------------------ missing
    def _resolve_missing(self, idx: np.ndarray) -> None:
        lat = self._tables()[0]
        todo = [int(i) for i in np.unique(idx[np.isnan(lat[idx])])]
        if not todo:
            return
        self._arrays = None
        layers = [self._layers[i] for i in todo]
        mode = self.missing
        if mode == "auto":
            mode = "measure" if self.same_host else "error"
        if mode == "measure" and not self.same_host:
            raise MissingEntryError([lyr.key for lyr in layers if lyr], self.table.profile.id, self._command())
        if mode == "error":
            raise MissingEntryError([lyr.key for lyr in layers if lyr], self.table.profile.id, self._command())
        if mode == "measure":
            from latency_tables.host import measure_in_table_terms

            # in the table's terms: scaled by how the machine's speed moved since the table was measured
            measure_in_table_terms(self.table, [lyr for lyr in layers if lyr], self.path)
            for i in todo:
                layer = self._layers[i]
                assert layer is not None
                self._latency[i] = self.table.entries[layer.key].median_ms
            return
        for i in todo:
            layer = self._layers[i]
            assert layer is not None
            self._latency[i] = self._estimate(layer)
            self._estimated[i] = True

    def _command(self) -> str:
        return f"hwnas lut build --profile {self.table.profile.id} --space SPACE (or hwnas lut export-kit)"

    def _estimate(self, layer: Layer) -> float:
        """Per-kind least squares of latency on [1, MACs, traffic] over the table's measured entries."""
        if self._estimator is None:
            self._estimator = LayerEstimator(self.table, self._command())
        return self._estimator.estimate(layer)

    # ------------------------------------------------------------ predicting
    def _gather(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(layers per net, all nets' layer indices in one array, nets the batch path could not index).

        The same indices as :meth:`indices`, without a Python step per block.
        A block's input size is the stem's output size divided (rounding up)
        by the strides of the blocks before it, computed for the whole batch in
        numpy; each (block identity, input size) is then looked up in one pass,
        and numpy checks that every block's input size is what the layer
        before it puts out. A net with a block not seen before is reported and
        left to :meth:`indices`.
        """
        n = len(archs)
        block_lists = [a.blocks for a in archs]
        nb = np.fromiter(map(len, block_lists), dtype=np.int64, count=n)
        ids = [id(b) for blocks in block_lists for b in blocks]
        m = len(ids)
        shift = np.fromiter(map(self._shift.get, ids, repeat(-1)), dtype=np.int64, count=m)
        stem_get = self._stems_by_id.get
        stems = [stem_get((id(a.stem), a.resolution)) for a in archs]
        bad = np.fromiter((s is None for s in stems), dtype=bool, count=n)
        stem_idx = np.fromiter((s[0] if s else 0 for s in stems), dtype=np.int64, count=n)
        stem_out = np.fromiter((s[1] if s else 1 for s in stems), dtype=np.int64, count=n)
        owner = np.repeat(np.arange(n), nb)
        first = np.cumsum(nb) - nb
        has_blocks = nb > 0
        known_shift = np.maximum(shift, 0)
        before = np.cumsum(known_shift) - known_shift  # strides' log2 summed over the blocks before, batch-wide
        before -= np.repeat(before[first[has_blocks]], nb[has_blocks])
        size_in = (np.repeat(stem_out, nb) + (1 << before) - 1) >> before
        keys = np.asarray(ids, dtype=np.int64) * 1024 + size_in if m else np.zeros(0, dtype=np.int64)
        packed = np.fromiter(map(self._packed.get, keys.tolist(), repeat(-1)), dtype=np.int64, count=m)
        size_out = packed & 1023
        expected = np.empty_like(size_out)
        expected[1:] = size_out[:-1]
        expected[first[has_blocks]] = stem_out[has_blocks]
        wrong = (shift < 0) | (packed < 0) | (size_in != expected)
        bad |= np.bincount(owner[wrong], minlength=n) > 0
        final = stem_out.copy()
        final[has_blocks] = size_out[(first + nb - 1)[has_blocks]]
        head_get = self._heads_by_id.get
        heads = np.zeros(n, dtype=np.int64)
        for i in np.flatnonzero(~bad).tolist():
            a = archs[i]
            channels = a.blocks[-1].cout if a.blocks else a.stem.cout
            size = int(final[i])
            hit = head_get((id(a.head), channels, size))
            heads[i] = hit if hit is not None else self._head_index(a.head, channels, size)
        counts = nb + 2
        start = np.cumsum(counts) - counts
        flat = np.empty(int(counts.sum()), dtype=np.int64)
        flat[start] = stem_idx
        flat[np.arange(m) + 2 * owner + 1] = packed >> 20
        flat[start + counts - 1] = heads
        return counts, flat, bad

    def _flat_indices(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """(layers per net, all nets' layer indices in one array), as :meth:`indices` gives them."""
        # nothing learnt yet: every net needs indices() anyway; a few nets: numpy's fixed cost outweighs the loop's
        if self._packed and len(archs) >= 16:
            counts, flat, bad = self._gather(archs)
            if not bad.any():
                return counts, flat
            if bad.mean() < 0.5:
                slow = {i: self.indices(archs[i]) for i in np.flatnonzero(bad).tolist()}  # teaches the batch path
                counts, flat, bad = self._gather(archs)
                if not bad.any():
                    return counts, flat
                segments = np.split(flat, np.cumsum(counts)[:-1])
                for i in np.flatnonzero(bad).tolist():
                    segments[i] = np.asarray(slow[i], dtype=np.int64)
                counts = np.fromiter(map(len, segments), dtype=np.int64, count=len(segments))
                return counts, np.concatenate(segments)
        per_arch = [self.indices(a) for a in archs]
        counts = np.fromiter(map(len, per_arch), dtype=np.int64, count=len(per_arch))
        flat = np.fromiter((i for idx in per_arch for i in idx), dtype=np.int64, count=int(counts.sum()))
        return counts, flat

    def predict_many(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Calibrated latency (ms) of every net, as one array."""
        if not archs:
            return np.zeros(0)
        counts, flat = self._flat_indices(archs)
        self._resolve_missing(flat)
        net_latency, kind = self._tables()
        lat = net_latency[flat]
        kinds = kind[flat]
        owner = np.repeat(np.arange(len(archs)), counts)
        n_kinds = len(self._kinds)
        kind_sums = np.bincount(owner * n_kinds + kinds, weights=lat, minlength=len(archs) * n_kinds)
        kind_sums = kind_sums.reshape(len(archs), n_kinds)
        raw = kind_sums.sum(axis=1) + self.table.call_overhead_ms
        layers = np.bincount(owner, weights=(flat != 0).astype(float), minlength=len(archs))
        cal = self.calibration
        params = None
        if cal.model == "weights":
            params = np.bincount(owner, weights=self._param_table()[flat], minlength=len(archs))
        return calibration.apply(cal, raw, layers, kind_sums, self._kinds, params)

    def _param_table(self) -> np.ndarray:
        """Parameter count per index, rebuilt only after the index grows."""
        if self._param_array is None or len(self._param_array) != len(self._params):
            self._param_array = np.asarray(self._params, dtype=float)
        return self._param_array

    def params(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Each net's parameter count, from its layers' (what the ``weights`` calibration reads)."""
        per_arch = [self.indices(a) for a in archs]  # first: indexing may add layers
        table = self._param_table()
        return np.asarray([table[idx].sum() for idx in per_arch], dtype=float)

    @property
    def calibration(self) -> Calibration:
        return self.table.calibration_for(self.space)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The layer kinds, in the order of :meth:`features`' per-kind columns."""
        return self._kinds

    def _net_latency(self) -> np.ndarray:
        """Entries with the per-call fixed cost taken out (it is added once per net)."""
        return self._tables()[0]

    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(latency without the per-call cost, kind) per index, rebuilt only after the index grows.

        Built per call, these would cost O(table) in every predict_many (whose speed per table is in
        benchmarks/results/latency.json).
        Missing entries stay NaN, which is how _resolve_missing finds them.
        """
        if self._arrays is None or len(self._arrays[0]) != len(self._latency):
            lat = np.asarray(self._latency, dtype=float) - self.table.call_overhead_ms
            lat[0] = 0.0
            self._arrays = (np.where(np.isnan(lat), lat, np.maximum(lat, 0.0)), np.asarray(self._kind))
        return self._arrays

    def estimated_mask(self, archs: Sequence[Architecture]) -> np.ndarray:
        est = np.asarray(self._estimated)
        return np.array([bool(est[self.indices(a)].any()) for a in archs])

    def predict(self, arch: Architecture) -> Prediction:
        """Calibrated total and the per-layer breakdown next to each layer's MACs."""
        from searchspace.cost import count_cost

        idx = self.indices(arch)
        total = float(self.predict_many([arch])[0])
        costs = count_cost(arch).layers
        layers = []
        for i, lc in zip(idx, costs, strict=True):
            layer = self._layers[i]
            if i == 0 and lc.block is not None:  # an identity layer has no entry: its type's kind
                kind = get_block_type(lc.block.type).calibration_kind
            else:
                kind = self._kinds[self._kind[i]]
            layers.append(
                LayerLatency(
                    lc.name,
                    layer.key if layer else "identity",
                    kind,
                    float(self._latency[i]),
                    lc.macs,
                    bool(self._estimated[i]),
                )
            )
        return Prediction(
            total_ms=total,
            raw_sum_ms=float(sum(lyr.latency_ms for lyr in layers)),
            profile=self.table.profile.id,
            table=self.table.name,
            estimated=any(lyr.estimated for lyr in layers),
            layers=tuple(layers),
            foreign=self.host_check.foreign,
        )

    # ------------------------------------------------------------ calibration
    def features(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw sums, layer counts, per-kind sums) as calibration reads them."""
        per_arch = [self.indices(a) for a in archs]
        flat = np.asarray([i for idx in per_arch for i in idx], dtype=np.int64)
        self._resolve_missing(flat)
        lat = self._net_latency()
        kind = np.asarray(self._kind)
        sums = np.zeros((len(archs), len(self._kinds)))
        layers = np.zeros(len(archs))
        for n, idx in enumerate(per_arch):
            arr = np.asarray(idx)
            np.add.at(sums[n], kind[arr], lat[arr])
            layers[n] = np.count_nonzero(arr)
        return sums.sum(axis=1) + self.table.call_overhead_ms, layers, sums

    def calibrate(self, min_space_nets: int = 10) -> None:
        """Fit the table's calibrations on its end-to-end measured nets (:func:`calibration.fit_table`)."""
        calibration.fit_table(self, min_space_nets)
