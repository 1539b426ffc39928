"""The ``onnx-int8`` download: static QDQ int8 of the fp32 graph, calibrated on real images of the job's dataset.

onnx, onnxruntime and torch are imported inside the functions (the API process imports this module).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from searchspace.architecture import Architecture
from service.export_common import ExportError, default_dataset

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from nas.datasets import DataSpec

__all__ = [
    "CALIBRATION_IMAGES",
    "CALIBRATION_SEED",
    "META_CALIBRATION",
    "META_PRECISION",
    "calibration_images",
    "calibration_summary",
    "quantize_int8",
]

#: Images of the job's dataset the int8 graph is calibrated on (part of the cache key).
CALIBRATION_IMAGES = 32
#: Seed that picks the calibration images (part of the cache key).
CALIBRATION_SEED = 0

META_CALIBRATION = "hwnas.calibration"
META_PRECISION = "hwnas.precision"


def calibration_images(arch: Architecture, dataset: DataSpec) -> tuple[np.ndarray, dict[str, Any]]:
    """The calibration batch (N, C, R, R float32, as the search fed the net) and a record of where it came from."""
    import numpy as np

    from nas.errors import DatasetError

    try:
        view = dataset.view(arch.resolution, arch.in_channels)
        x, _ = view.sample(CALIBRATION_IMAGES, seed=CALIBRATION_SEED, split="train")
    except DatasetError as exc:
        raise ExportError(f"dataset: cannot calibrate int8 on {dataset.name!r}: {exc}") from exc
    record = {
        "dataset": dataset.model_dump(mode="json"),
        "images": CALIBRATION_IMAGES,
        "split": "train",
        "seed": CALIBRATION_SEED,
        "input": [arch.in_channels, arch.resolution, arch.resolution],
        "fit": view.mode,
        "mean": [float(v) for v in view.mean],
        "std": [float(v) for v in view.std],
    }
    return np.ascontiguousarray(x.numpy(), dtype=np.float32), record


def quantize_int8(arch: Architecture, fp32: bytes, dataset: DataSpec) -> bytes:
    """Static QDQ int8 of the fp32 ONNX graph, calibrated on real images of ``dataset``.

    Made by :func:`latency_tables.runtimes.ort_runtime.qdq_static`, the recipe
    the int8 latency profiles' graphs are made with (``quant_pre_process``, then
    ``quantize_static``, QDQ, per-channel int8 weights, uint8 activations), so
    the measured int8 latency is this file's; only the calibration differs:
    real images instead of random ones, since the scales decide accuracy. The
    result must load in onnxruntime and run one calibration image.
    """
    import onnx

    from latency_tables.runtimes.ort_runtime import qdq_static

    x, record = calibration_images(arch, dataset)
    try:
        proto = qdq_static(onnx.load_from_string(fp32), [x[i : i + 1] for i in range(len(x))])
    except Exception as exc:  # onnxruntime's tooling raises whatever it raises
        raise ExportError(f"int8 quantization of architecture {arch.arch_id} failed: {exc}") from exc
    _set_metadata(proto, fp32, record)
    content = proto.SerializeToString()
    _check_runs(arch, content, x[:1])
    return content


def _set_metadata(proto: onnx.ModelProto, fp32: bytes, calibration: dict[str, Any]) -> None:
    """Carry the fp32 file's hwnas metadata over (the quantizer drops it) and add how it was calibrated."""
    import onnx

    source = onnx.load_from_string(fp32)
    props = {p.key: p.value for p in source.metadata_props}
    props[META_PRECISION] = "int8"
    props[META_CALIBRATION] = json.dumps(calibration, sort_keys=True)
    onnx.helper.set_model_props(proto, props)


def _check_runs(arch: Architecture, content: bytes, x: np.ndarray) -> None:
    """Raise ExportError unless onnxruntime loads the int8 graph and returns finite logits of the right shape."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        (logits,) = session.run(["logits"], {"input": x})
    except Exception as exc:  # ort raises its own exception types
        raise ExportError(f"onnxruntime cannot run the int8 model of architecture {arch.arch_id}: {exc}") from exc
    want = (x.shape[0], arch.head.classes)
    if logits.shape != want or not np.all(np.isfinite(logits)):
        raise ExportError(
            f"the int8 model of architecture {arch.arch_id} returns logits of shape {logits.shape} "
            f"(expected {want}){'' if np.all(np.isfinite(logits)) else ' with NaN or inf'}"
        )


def calibration_summary(arch: Architecture, dataset: DataSpec | None) -> str:
    """One sentence on what the int8 file is calibrated on (no dataset is loaded to say it)."""
    spec = dataset or default_dataset()
    where = f" at {spec.path}" if spec.path else ""
    options = ", ".join(f"{k}={v}" for k, v in sorted(spec.options.items()))
    return (
        f"{CALIBRATION_IMAGES} images of the train split of `{spec.name}`{where}"
        f"{f' ({options})' if options else ''}, drawn with seed {CALIBRATION_SEED}, "
        f"presented at {arch.in_channels}x{arch.resolution}x{arch.resolution} (fit {spec.fit}) "
        "and normalised with the training set's per-channel mean and std, as during the search"
    )
