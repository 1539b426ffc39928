"""``ort``: onnxruntime, CPU or CUDA execution provider, fp32 or static int8 (QDQ).

Graphs come from :mod:`latency_tables.graph`; int8 graphs are made the way a
user deploys int8 with onnxruntime: ``quant_pre_process`` then
``quantize_static`` in QDQ format with per-channel weights, calibrated on a
few seeded random inputs.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from latency_tables.errors import RuntimeUnavailableError
from latency_tables.runtimes.base import Runtime

if TYPE_CHECKING:
    import onnx

    from latency_tables.profiles import DeviceProfile
    from latency_tables.signatures import Layer
    from searchspace.architecture import Architecture

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def session_options(threads: int) -> Any:
    import onnxruntime as ort

    ort.disable_telemetry_events()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


def quantize_int8(model: onnx.ModelProto, input_shape: tuple[int, ...], calibration_inputs: int = 4) -> bytes:
    """Static QDQ int8 (per-channel weights, uint8 activations), as onnxruntime's tooling makes it."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self._it = iter([{"input": rng.random(input_shape, dtype=np.float32)} for _ in range(calibration_inputs)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    logging.getLogger().setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="hwnas-q-") as tmp:
        src, pre, out = Path(tmp, "m.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "q.onnx")
        onnx.save(model, src)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        )
        return out.read_bytes()


class OnnxRuntime(Runtime):
    name = "ort"
    providers = ("cpu", "cuda")
    precisions = ("fp32", "int8")

    def unavailable(self, profile: DeviceProfile) -> str | None:
        reason = super().unavailable(profile)
        if reason:
            return reason
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed"
        wanted = _PROVIDERS[profile.provider]
        if wanted not in ort.get_available_providers():
            return f"onnxruntime here has no {wanted} (available: {', '.join(ort.get_available_providers())})"
        return None

    def model_bytes(self, model: onnx.ModelProto, input_shape: tuple[int, ...], profile: DeviceProfile) -> bytes:
        if profile.precision == "int8":
            return quantize_int8(model, input_shape)
        return model.SerializeToString()

    def session_runner(self, data: bytes, input_shape: tuple[int, ...], profile: DeviceProfile) -> Callable[[], object]:
        import onnxruntime as ort

        reason = self.unavailable(profile)
        if reason:
            raise RuntimeUnavailableError(f"cannot measure {profile.id} here: {reason}")
        session = ort.InferenceSession(data, session_options(profile.threads), providers=[_PROVIDERS[profile.provider]])
        x = np.random.default_rng(0).random(input_shape, dtype=np.float32)
        # Bind input and a preallocated output once, so a timed call is the inference alone:
        # session.run's per-call output allocation and copy cost ~20 us a layer here, and
        # inside a whole net no layer pays them.
        device = "cuda" if profile.provider == "cuda" else "cpu"
        binding = session.io_binding()
        binding.bind_ortvalue_input("input", ort.OrtValue.ortvalue_from_numpy(x, device, 0))
        name = session.get_outputs()[0].name
        binding.bind_output(name, device)
        session.run_with_iobinding(binding)
        binding.bind_ortvalue_output(name, binding.get_outputs()[0])
        if device == "cuda":
            binding.synchronize_inputs()
        return lambda: session.run_with_iobinding(binding)

    def prepare_overhead(self, profile: DeviceProfile) -> Callable[[], object] | None:
        from onnx import TensorProto, helper

        from latency_tables.graph import IR_VERSION, OPSET

        graph = helper.make_graph(
            [helper.make_node("Relu", ["input"], ["y"])], "call-overhead",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = IR_VERSION
        return self.session_runner(model.SerializeToString(), (1,), profile)

    def prepare_layer(self, layer: Layer, profile: DeviceProfile) -> Callable[[], object]:
        from latency_tables.graph import block_graph, head_graph

        if layer.block is not None:
            model = block_graph(layer.block, layer.size, profile.batch)
        else:
            assert layer.head is not None
            model = head_graph(layer.head, layer.cin, layer.size, profile.batch)
        shape = (profile.batch, layer.cin, layer.size, layer.size)
        return self.session_runner(self.model_bytes(model, shape, profile), shape, profile)

    def prepare_network(self, arch: Architecture, profile: DeviceProfile) -> Callable[[], object]:
        from latency_tables.graph import network_graph

        shape = (profile.batch, arch.in_channels, arch.resolution, arch.resolution)
        return self.session_runner(self.model_bytes(network_graph(arch, profile.batch), shape, profile), shape, profile)
