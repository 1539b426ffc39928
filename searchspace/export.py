"""Exporters: Architecture -> ONNX file, standalone PyTorch source, JSON.

ONNX files are what the latency benchmarks and deployment runtimes consume,
so they are made to look like a deployed net: eval mode, every BatchNorm
folded into its conv, static shapes, one self-contained opset-17 file. Each
export is checked (onnx checker, onnxruntime against torch) before it appears
under its final name, so a file on disk is always a complete, verified one.

torch, onnx and onnxruntime are imported inside the functions: ``export_json``
(and importing this module) stays cheap for the CLI.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import re
import shutil
import tempfile
import typing
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from searchspace.architecture import Architecture
from searchspace.blocks import get_block_type
from searchspace.errors import ExportError
from searchspace.ops import Op

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


# --------------------------------------------------------------------- files
def _atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], what: str) -> Path:
    """Run ``write(tmp_file)`` in a scratch directory next to ``path``, then rename into place.

    A scratch directory (not just a scratch file) also catches sidecar files an
    exporter might create; it is always removed, so a failure leaves nothing.
    """
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        problem = "is not a directory" if parent.exists() else "does not exist"
        raise ExportError(f"cannot write {what} to {target}: directory {parent} {problem}")
    if target.is_dir():
        raise ExportError(f"cannot write {what} to {target}: it is a directory")
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise ExportError(f"cannot write {what} to {target}: {exc.strerror} ({parent})") from None
    try:
        tmp = scratch / target.name
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise ExportError(f"cannot write {what} to {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def export_json(arch: Architecture, path: str | os.PathLike[str]) -> Path:
    """Write the architecture as indented JSON (the format ``Architecture.load`` reads)."""
    text = arch.to_json(indent=2) + "\n"
    return _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), "architecture JSON")


# ---------------------------------------------------------------------- ONNX
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

    return _atomic_write(path, write, "ONNX model")


# ------------------------------------------------------------------- PyTorch
_PYTORCH_HEADER = '''\
"""{title}

Generated by hwnas from architecture {arch_id}; needs only PyTorch.
Module names, and so ``state_dict()`` keys, are the ones hwnas uses, so
weights trained there load directly::

    model = build_model()
    model.load_state_dict(torch.load("weights.pt"))
"""

from __future__ import annotations

import torch
from torch import nn

ARCH_ID = {arch_id!r}
'''


def _torch_modules_source() -> str:
    """The body of :mod:`searchspace.torch_modules` (after its imports), pasted into every export."""
    from searchspace import torch_modules

    text = inspect.getsource(torch_modules)
    marker = "from torch import nn\n"
    if marker not in text:
        raise ExportError("searchspace/torch_modules.py must import 'from torch import nn' before its code")
    return text.split(marker, 1)[1]


_PYTORCH_FOOTER = '''

def build_model() -> Net:
    """A freshly initialised model (train mode, like any nn.Module)."""
    return Net()


ARCHITECTURE = {architecture}
'''


def _template_ops() -> frozenset[str]:
    """Op classes :mod:`searchspace.torch_modules` has a factory for (same name, same arguments)."""
    from searchspace import torch_modules

    return frozenset(t.__name__ for t in typing.get_args(Op) if callable(getattr(torch_modules, t.__name__, None)))


def _op_call(op: Op) -> str:
    """``Conv('conv_dw', 96, 96, k=5, stride=2, groups=96)``: required fields positional, others by keyword."""
    kind = type(op).__name__
    if kind not in _template_ops() or not dataclasses.is_dataclass(op):
        raise ExportError(
            f"the PyTorch exporter has no code template for op {op!r}; add a factory to searchspace/torch_modules.py"
        )
    args = []
    positional = True
    for field in dataclasses.fields(op):
        value = getattr(op, field.name)
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        positional = positional and required
        if positional:
            args.append(repr(value))
        elif required or value != field.default:
            args.append(f"{field.name}={value!r}")
    return f"{kind}({', '.join(args)})"


def _block_call(ops: list[Op], residual: bool) -> str:
    layers = ", ".join(_op_call(op) for op in ops)
    return f"Block([{layers}]{', residual=True' if residual else ''})"


def pytorch_source(arch: Architecture) -> str:
    """The text of a standalone PyTorch module defining ``arch`` (see :func:`export_pytorch`)."""
    lines = [
        "class Net(nn.Module):",
        f'    """{_title(arch)}"""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        f"        self.stem = {_block_call(get_block_type(arch.stem.type).ops(arch.stem), arch.stem.residual)}",
        "        self.blocks = nn.Sequential(",
    ]
    for i, block in enumerate(arch.blocks):
        call = _block_call(get_block_type(block.type).ops(block), block.residual)
        lines.append(f"            {call},  # {i}: {block.type}")
    lines.append("        )")
    chans = arch.blocks[-1].cout if arch.blocks else arch.stem.cout
    head_args = ", ".join(f"{k}={v!r}" for k, v in arch.head.model_dump().items())
    lines += [
        f"        self.head = Head({chans}, {head_args})",
        "        init_weights(self)",
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        "        return self.head(self.blocks(self.stem(x)))",
    ]
    return (
        _PYTORCH_HEADER.format(title=_title(arch), arch_id=arch.arch_id)
        + _torch_modules_source()
        + "\n"
        + "\n".join(lines)
        + "\n"
        + _PYTORCH_FOOTER.format(architecture=_architecture_literal(arch))
    )


def _architecture_literal(arch: Architecture) -> str:
    """``arch.to_dict()`` as a Python literal, one line per block."""

    def flat(value: Any) -> str:
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {flat(v)}" for k, v in sorted(value.items())) + "}"
        return repr(value)

    lines = ["{"]
    for key, value in sorted(arch.to_dict().items()):
        if isinstance(value, list):
            lines += [f"    {key!r}: ["] + [f"        {flat(item)}," for item in value] + ["    ],"]
        else:
            lines.append(f"    {key!r}: {flat(value)},")
    return "\n".join(lines + ["}"])


def _title(arch: Architecture) -> str:
    return (
        f"hwnas architecture {arch.arch_id}: {arch.in_channels}x{arch.resolution}x{arch.resolution} input, "
        f"{len(arch.blocks)} blocks, {arch.head.classes} classes."
    )


def _compile_pytorch_source(source: str, arch: Architecture, filename: str) -> Any:
    try:
        return compile(source, filename, "exec")
    except SyntaxError as exc:
        raise ExportError(f"generated PyTorch code for {arch.arch_id} does not compile: {exc}") from None


def _check_state_dict_layout(code: Any, arch: Architecture) -> None:
    """Build the generated model once: its state_dict keys and shapes must be exactly hwnas' (weights must load)."""
    from searchspace.model import build_model

    namespace: dict[str, Any] = {"__name__": "hwnas_generated"}
    try:
        exec(code, namespace)  # our own generated code
        generated = namespace["build_model"]().state_dict()
    except Exception as exc:  # whatever the generated code raises
        raise ExportError(f"generated PyTorch code for {arch.arch_id} fails to build: {exc}") from exc
    got = {k: tuple(v.shape) for k, v in generated.items()}
    want = {k: tuple(v.shape) for k, v in build_model(arch).state_dict().items()}
    if list(got.items()) != list(want.items()):
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        shapes = [k for k in want if k in got and got[k] != want[k]][:5]
        raise ExportError(
            f"generated PyTorch model for {arch.arch_id} does not match hwnas' state_dict layout "
            f"(missing {missing}, unexpected {extra}, wrong shape {shapes})"
        )


def export_pytorch(arch: Architecture, path: str | os.PathLike[str], *, verify: bool = True) -> Path:
    """Write a self-contained PyTorch file (needs torch, not hwnas) defining ``arch``.

    The code is generated from the block types' op lists, so a new block type
    made of existing ops exports without changes here. It is compiled before
    writing and, with ``verify``, built once and its ``state_dict`` layout
    compared with :func:`searchspace.model.build_model`'s.
    """
    source = pytorch_source(arch)
    code = _compile_pytorch_source(source, arch, str(path))
    if verify:
        _check_state_dict_layout(code, arch)
    return _atomic_write(path, lambda tmp: tmp.write_text(source, encoding="utf-8"), "PyTorch code")


def _missing_op_templates() -> list[str]:
    """Op classes of :mod:`searchspace.ops` the PyTorch template lacks (tests keep this empty)."""
    return sorted(t.__name__ for t in typing.get_args(Op) if t.__name__ not in _template_ops())
