"""ONNX exporter: Architecture -> a BN-folded, static-shape, single-file opset-17 model, verified in onnxruntime.

The files are what the latency benchmarks and deployment runtimes consume, so
they are made to look like a deployed net: eval mode, every BatchNorm folded
into its conv, static shapes, one self-contained file. Each export is checked
(onnx checker, onnxruntime against torch, block by block) before it appears
under its final name.

torch, onnx and onnxruntime are imported inside the functions.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from searchspace.architecture import Architecture
from searchspace.errors import ExportError
from searchspace.export_files import atomic_write

if TYPE_CHECKING:
    import onnx
    import torch
    from torch import nn

    from searchspace.model import Net

#: Version of the hwnas metadata stored in exported ONNX files.
ONNX_FORMAT_VERSION = "1"
META_ARCH_ID = "hwnas.arch_id"
META_ARCHITECTURE = "hwnas.architecture"
META_FORMAT_VERSION = "hwnas.format_version"

_VERIFY_SEED = 0


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of eval-mode ``model`` with every BatchNorm2d folded into the Conv2d before it.

    The folded BN becomes ``nn.Identity`` so module (and so ONNX node) names
    stay those of the unfolded net. A BN not directly preceded by a conv is
    left as it is (still correct, only not folded).
    """
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for parent in list(folded.modules()):
            prev_name: str | None = None
            prev: nn.Module | None = None
            for name, child in list(parent.named_children()):
                if (
                    isinstance(child, nn.BatchNorm2d)
                    and isinstance(prev, nn.Conv2d)
                    and prev_name is not None
                    and prev.out_channels == child.num_features
                    and child.track_running_stats
                ):
                    setattr(parent, prev_name, fuse_conv_bn_eval(prev, child))
                    setattr(parent, name, nn.Identity())
                prev_name, prev = name, child
    return folded


def _drop_initializer_identities(graph: onnx.GraphProto) -> None:
    """Remove the ``Identity`` nodes torch adds when it deduplicates equal initializers.

    Folding makes many conv biases equal (all zero at init); the exporter then
    shares one tensor and inserts ``Identity_N`` nodes, which are noise in a
    graph meant for benchmarking. Consumers are pointed at the shared tensor.
    """
    initializers = {t.name for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias: dict[str, str] = {}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in initializers and node.output[0] not in outputs:
            alias[node.output[0]] = node.input[0]
        else:
            keep.append(node)
    if not alias:
        return
    for node in keep:
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
    del graph.node[:]
    graph.node.extend(keep)


def _trace_onnx(
    model: nn.Module, example: torch.Tensor, opset: int, arch: Architecture, scratch: Path
) -> onnx.ModelProto:
    """Trace ``model`` with the TorchScript exporter; the ModelProto, cleaned and with hwnas metadata."""
    import onnx
    import torch

    raw = scratch.with_name(scratch.name + ".raw")
    try:
        with warnings.catch_warnings():
            # torch 2.13 deprecates the TorchScript exporter; it is the one that writes a real
            # opset-17 single file (the dynamo exporter bumps to 18 and splits out the weights).
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (example,),
                str(raw),
                dynamo=False,
                opset_version=opset,
                do_constant_folding=True,
                input_names=["input"],
                output_names=["logits"],
            )
        proto = onnx.load(str(raw))
    except Exception as exc:  # anything the tracer raises is an export failure
        raise ExportError(f"ONNX export of architecture {arch.arch_id} failed: {exc}") from exc
    _drop_initializer_identities(proto.graph)
    proto.graph.name = f"hwnas_{arch.arch_id}"
    onnx.helper.set_model_props(
        proto,
        {
            META_ARCH_ID: arch.arch_id,
            META_ARCHITECTURE: arch.to_json(),
            META_FORMAT_VERSION: ONNX_FORMAT_VERSION,
        },
    )
    return proto


_SCOPE = re.compile(r"/(?:(stem)|blocks/blocks\.(\d+))/")


def block_outputs(proto: onnx.ModelProto) -> dict[str, str]:
    """Module path (``stem``, ``blocks.3``) -> name of the ONNX value the block produces.

    The TorchScript exporter names nodes after the module scope
    (``/blocks/blocks.3/conv_dw/Conv``) in execution order, so a block's output
    is the first output of the last node in its scope. Blocks that export to no
    node (identity skip) are absent.
    """
    last: dict[str, str] = {}
    for node in proto.graph.node:
        match = _SCOPE.match(node.name)
        if match:
            last[match.group(1) or f"blocks.{match.group(2)}"] = node.output[0]
    return last


def _torch_outputs(model: Net, x: torch.Tensor) -> dict[str, Any]:
    """Logits and every block's output (numpy) of ``model``, via forward hooks."""
    import torch

    seen: dict[str, Any] = {}
    handles = [
        module.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out.numpy()))
        for name, module in [("stem", model.stem), *((f"blocks.{i}", b) for i, b in enumerate(model.blocks))]
    ]
    try:
        with torch.no_grad():
            seen["logits"] = model(x).numpy()
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _onnxruntime_outputs(path: Path, x: Any) -> dict[str, Any]:
    """Logits and every block's output of the ONNX file at ``path`` for input ``x`` (numpy), onnxruntime CPU.

    The file is read back (so what is checked is what was written) and the
    block outputs are added as extra graph outputs in memory.
    """
    import onnx
    import onnxruntime as ort

    probe = onnx.load(str(path))
    values = block_outputs(probe)
    if "stem" not in values:
        raise ExportError("cannot find the stem's nodes in the ONNX graph (did torch change its node naming?)")
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(value, onnx.TensorProto.FLOAT, None) for value in values.values()
    )
    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only; ort warns about harmless graph details
    options.intra_op_num_threads = 1  # one small input: a thread pool only adds spinning on a busy machine
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = ["logits", *values]
    return dict(zip(names, session.run(["logits", *values.values()], {"input": x}), strict=True))


def _compare(expected: dict[str, Any], got: dict[str, Any], atol: float, arch_id: str) -> None:
    """Raise ExportError unless logits agree within ``atol`` and every block output within ``atol`` x its scale.

    Block outputs are checked too because logits alone hide export bugs: the
    reference init's small classifier damps a wrong layer deep in the net to
    a logit change far below any useful tolerance.
    """
    import numpy as np

    for name, want in expected.items():
        if name not in got:
            continue  # a block that exported to no node (identity)
        have = got[name]
        if have.shape != want.shape:
            raise ExportError(f"ONNX {name} of {arch_id} has shape {have.shape}, torch's has {want.shape}")
        tol = atol if name == "logits" else atol * max(1.0, float(np.max(np.abs(want), initial=0.0)))
        diff = float(np.max(np.abs(have - want), initial=0.0))
        if not diff < tol:  # also catches NaN
            raise ExportError(
                f"ONNX output of {arch_id} differs from torch at {name}: max abs diff {diff:.3g} >= {tol:.3g}"
            )


def export_onnx(
    arch: Architecture,
    path: str | os.PathLike[str],
    *,
    opset: int = 17,
    batch_size: int = 1,
    verify: bool = True,
    atol: float = 1e-4,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Export ``arch`` as a BN-folded, static-shape, single-file ONNX model at ``path``.

    ``state_dict`` (e.g. trained weights) is loaded into the freshly built
    model when given; otherwise the export carries the reference init, which
    is all latency measurement needs. With ``verify`` the graph is run in
    onnxruntime on a seeded random input and compared with the *unfolded*
    torch model (logits: max abs diff < ``atol``; each block's output: <
    ``atol`` times its magnitude), so a wrong fold or a mis-exported op fails
    here instead of producing a plausible file. Raises :class:`ExportError`;
    on failure no file (final or temporary) is left.
    """
    if batch_size < 1:
        raise ExportError(f"batch_size must be >= 1, got {batch_size}")
    if not atol > 0:
        raise ExportError(f"atol must be > 0, got {atol}")

    import onnx
    import torch

    from searchspace.model import build_model

    model = build_model(arch).eval()
    if state_dict is not None:
        try:
            model.load_state_dict(state_dict)
        except RuntimeError as exc:
            raise ExportError(f"state_dict does not fit architecture {arch.arch_id}: {exc}") from None
    folded = fold_batchnorm(model)
    shape = (batch_size, arch.in_channels, arch.resolution, arch.resolution)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(_VERIFY_SEED))

    def write(tmp: Path) -> None:
        proto = _trace_onnx(folded, x, opset, arch, tmp)
        try:
            onnx.checker.check_model(proto, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"exported ONNX model for {arch.arch_id} is invalid: {exc}") from None
        onnx.save(proto, str(tmp))
        if not verify:
            return
        expected = _torch_outputs(model, x)
        try:
            got = _onnxruntime_outputs(tmp, x.numpy())
        except ExportError:
            raise
        except Exception as exc:  # ort raises its own exception types
            raise ExportError(f"onnxruntime cannot run the exported model for {arch.arch_id}: {exc}") from exc
        _compare(expected, got, atol, arch.arch_id)

    return atomic_write(path, write, "ONNX model")
