"""Exporters: Architecture -> ONNX file, standalone PyTorch source, JSON.

ONNX files are what the latency benchmarks and deployment runtimes consume,
so they are made to look like a deployed net: eval mode, every BatchNorm
folded into its conv, static shapes, one self-contained opset-17 file. Each
export is checked (onnx checker, onnxruntime against torch) before it appears
under its final name, so a file on disk is always a complete, verified one.

One module per job, all importable from here: :mod:`searchspace.onnx_export`
(ONNX), :mod:`searchspace.pytorch_export` (PyTorch source) and
:mod:`searchspace.export_files` (atomic writes, JSON).

torch, onnx and onnxruntime are imported inside the functions: ``export_json``
(and importing this module) stays cheap for the CLI.
"""

from __future__ import annotations

from searchspace.export_files import export_json
from searchspace.onnx_export import (
    META_ARCH_ID,
    META_ARCHITECTURE,
    META_FORMAT_VERSION,
    ONNX_FORMAT_VERSION,
    block_outputs,
    export_onnx,
    fold_batchnorm,
)
from searchspace.pytorch_export import export_pytorch, pytorch_source

__all__ = [
    "META_ARCHITECTURE",
    "META_ARCH_ID",
    "META_FORMAT_VERSION",
    "ONNX_FORMAT_VERSION",
    "block_outputs",
    "export_json",
    "export_onnx",
    "export_pytorch",
    "fold_batchnorm",
    "pytorch_source",
]
