"""``ort``: onnxruntime, CPU or CUDA execution provider, fp32 or static int8 (QDQ).

Graphs come from :mod:`latency_tables.graph`; int8 graphs are made the way a
user deploys int8 with onnxruntime: ``quant_pre_process`` then
``quantize_static`` in QDQ format with per-channel weights, calibrated on a
few seeded random inputs. Quantizing is the slow part of an int8 table build
(onnxruntime's tooling, in Python: ~0.07 s a layer, 1.5-3 s a net against
0.1-0.2 s to time it), so :meth:`OnnxRuntime.ahead` quantizes what a build is
about to time in worker processes on every core first, while nothing is timed
(:mod:`latency_tables.runtimes.ort_parallel`).
"""

from __future__ import annotations

import itertools
import logging
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from latency_tables.portable import PROVIDERS, bound_runner
from latency_tables.runtimes.base import Prepared, Runtime

if TYPE_CHECKING:
    import onnx

    from latency_tables.profiles import DeviceProfile
    from latency_tables.signatures import Layer
    from searchspace.architecture import Architecture


def qdq_static(model: onnx.ModelProto, inputs: Sequence[np.ndarray]) -> onnx.ModelProto:
    """The one int8 recipe, for the tables' int8 graphs and for int8 downloads alike (so a measured int8
    latency is the downloaded file's): ``quant_pre_process``, then ``quantize_static`` in QDQ format with
    per-channel int8 weights and uint8 activations, calibrated on ``inputs`` (each one batch for the graph's
    ``input``); opsets no node uses are dropped (the quantizer declares some, and an older device runtime may
    reject them). Raises whatever onnxruntime's tooling raises."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"input": x} for x in inputs])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    logging.getLogger().setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="hwnas-q-") as tmp:
        src, pre, out = Path(tmp, "m.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "q.onnx")
        onnx.save(model, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        q = onnx.load(str(out))
    used = {node.domain for node in q.graph.node} | {""}
    keep = [op for op in q.opset_import if op.domain in used]
    del q.opset_import[:]
    q.opset_import.extend(keep)
    return q


def quantize_int8(model: onnx.ModelProto, input_shape: tuple[int, ...], calibration_inputs: int = 4) -> bytes:
    """:func:`qdq_static` calibrated on a few seeded random inputs (a layer's latency does not depend on its
    scales)."""
    rng = np.random.default_rng(0)
    inputs = [rng.random(input_shape, dtype=np.float32) for _ in range(calibration_inputs)]
    return qdq_static(model, inputs).SerializeToString()


def quantize_serialized(data: bytes, input_shape: tuple[int, ...]) -> bytes:
    """:func:`quantize_int8` of a serialized fp32 graph (what a quantizing worker and a small job both hold)."""
    import onnx

    return quantize_int8(onnx.load_from_string(data), input_shape)


#: graphs with fewer nodes in all are quantized in this process: each worker's start (~2 s, onnxruntime's
#: import) costs more than quantizing ~500 nodes (~0.01 s a node) on one core saves
PARALLEL_MIN_NODES = 500


class PreparedOrt(Prepared):
    """Runners from the fp32 graphs built ahead, quantized ahead where workers did it and here (when asked for)
    where they did not; anything not built ahead as :class:`Prepared`. Each graph is handed out once (a build
    prepares each layer once)."""

    def __init__(
        self,
        runtime: OnnxRuntime,
        profile: DeviceProfile,
        graphs: dict[object, tuple[bytes, tuple[int, ...]]],
        quantized: dict[object, bytes],
    ) -> None:
        super().__init__(runtime, profile)
        self.ort = runtime
        self.graphs, self.quantized = graphs, quantized

    def _runner(self, key: object) -> Callable[[], object] | None:
        got = self.graphs.pop(key, None)
        if got is None:
            return None
        data, shape = got
        q = self.quantized.pop(key, None)
        if q is None:  # a small job, or a model a worker could not do: here, and any error is met here
            q = quantize_serialized(data, shape)
        return self.ort.session_runner(q, shape, self.profile)

    def layer(self, layer: Layer) -> Callable[[], object]:
        return self._runner(("layer", layer.key)) or super().layer(layer)

    def network(self, arch: Architecture) -> Callable[[], object]:
        return self._runner(("net", arch.encode())) or super().network(arch)


class OnnxRuntime(Runtime):
    name = "ort"
    providers = ("cpu", "cuda")
    precisions = ("fp32", "int8")
    package = "onnxruntime"

    def provider_unavailable(self, profile: DeviceProfile) -> str | None:
        import onnxruntime as ort

        wanted = PROVIDERS[profile.provider]
        if wanted not in ort.get_available_providers():
            return f"onnxruntime here has no {wanted} (available: {', '.join(ort.get_available_providers())})"
        return None

    def model_bytes(self, model: onnx.ModelProto, input_shape: tuple[int, ...], profile: DeviceProfile) -> bytes:
        if profile.precision == "int8":
            return quantize_int8(model, input_shape)
        return model.SerializeToString()

    def session_runner(self, data: bytes, input_shape: tuple[int, ...], profile: DeviceProfile) -> Callable[[], object]:
        self.require(profile)
        return bound_runner(data, input_shape, profile.provider, profile.threads)

    @staticmethod
    def overhead_model() -> bytes:
        """A one-element Relu: its time is the fixed cost of one onnxruntime call."""
        from onnx import TensorProto, helper

        from latency_tables.graph import IR_VERSION, OPSET

        graph = helper.make_graph(
            [helper.make_node("Relu", ["input"], ["y"])],
            "call-overhead",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hwnas")
        model.ir_version = IR_VERSION
        return model.SerializeToString()

    def prepare_overhead(self, profile: DeviceProfile) -> Callable[[], object] | None:
        return self.session_runner(self.overhead_model(), (1,), profile)

    @staticmethod
    def layer_graph(layer: Layer, profile: DeviceProfile) -> tuple[onnx.ModelProto, tuple[int, ...]]:
        """The layer's fp32 graph and its input shape."""
        from latency_tables.graph import block_graph, head_graph

        if layer.block is not None:
            model = block_graph(layer.block, layer.size, profile.batch)
        else:
            assert layer.head is not None
            model = head_graph(layer.head, layer.cin, layer.size, profile.batch)
        return model, (profile.batch, layer.cin, layer.size, layer.size)

    @staticmethod
    def net_graph(arch: Architecture, profile: DeviceProfile) -> tuple[onnx.ModelProto, tuple[int, ...]]:
        """The whole net's fp32 graph and its input shape."""
        from latency_tables.graph import network_graph

        return network_graph(arch, profile.batch), (profile.batch, arch.in_channels, arch.resolution, arch.resolution)

    def layer_model(self, layer: Layer, profile: DeviceProfile) -> tuple[bytes, tuple[int, ...]]:
        """The layer's graph as the profile runs it (int8: quantized here), and its input shape."""
        model, shape = self.layer_graph(layer, profile)
        return self.model_bytes(model, shape, profile), shape

    def network_model(self, arch: Architecture, profile: DeviceProfile) -> tuple[bytes, tuple[int, ...]]:
        model, shape = self.net_graph(arch, profile)
        return self.model_bytes(model, shape, profile), shape

    def prepare_layer(self, layer: Layer, profile: DeviceProfile) -> Callable[[], object]:
        return self.session_runner(*self.layer_model(layer, profile), profile)

    def ahead(
        self, profile: DeviceProfile, layers: Sequence[Layer] = (), archs: Sequence[Architecture] = ()
    ) -> Prepared:
        """int8: every layer's and net's graph built now and, if there is enough to gain, quantized in parallel
        (``ort_parallel.quantize_many``); fp32 has nothing slow to do ahead."""
        from latency_tables.runtimes.ort_parallel import quantize_many, quantize_workers

        if profile.precision != "int8" or quantize_workers() < 2 or self.unavailable(profile):
            return Prepared(self, profile)
        graphs: dict[object, tuple[bytes, tuple[int, ...]]] = {}
        nodes = 0
        for key, (model, shape) in itertools.chain(  # one fp32 graph held at a time: only its bytes are kept
            ((("layer", lyr.key), self.layer_graph(lyr, profile)) for lyr in layers if not lyr.is_identity),
            ((("net", a.encode()), self.net_graph(a, profile)) for a in archs),
        ):
            graphs[key] = model.SerializeToString(), shape
            nodes += len(model.graph.node)
        # a small job is quantized here, when asked for: starting the workers would cost more than they save
        done = quantize_many(list(graphs.values())) if nodes >= PARALLEL_MIN_NODES else [None] * len(graphs)
        return PreparedOrt(self, profile, graphs, {k: q for k, q in zip(graphs, done, strict=True) if q is not None})

    def prepare_network(self, arch: Architecture, profile: DeviceProfile) -> Callable[[], object]:
        return self.session_runner(*self.network_model(arch, profile), profile)
