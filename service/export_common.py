"""What the download modules share: their error, the default calibration dataset, the ONNX weights' seed.

Kept apart so :mod:`service.exports` (formats and cache), :mod:`service.export_int8`
and :mod:`service.model_card` can all use it without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from searchspace.architecture import Architecture
from searchspace.errors import ExportError as _SearchspaceExportError

if TYPE_CHECKING:
    from nas.datasets import DataSpec

__all__ = ["ExportError", "default_dataset", "weights_seed"]


class ExportError(_SearchspaceExportError):
    """A download cannot be made: bad format (the message names ``format``), bad dataset, or a failed export.

    A subclass of searchspace's ExportError (so a ValueError), so one ``except`` catches both layers.
    """


def default_dataset() -> DataSpec:
    """The dataset the int8 download is calibrated on when the job names none (fashion-mnist)."""
    from nas.datasets import DataSpec

    return DataSpec()


def weights_seed(arch: Architecture) -> int:
    """The torch seed the ONNX downloads' reference-init weights are drawn with (from the arch_id)."""
    return int(arch.arch_id[:8], 16)
