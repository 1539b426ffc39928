"""``torch``: eager PyTorch in eval mode under ``torch.inference_mode`` (fp32; CPU or CUDA).

Modules come from :mod:`searchspace.torch_modules`, the same code hwnas trains and
exports; BN stays unfolded, as in a plain eager deployment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from latency_tables.runtimes.base import Runtime

if TYPE_CHECKING:
    from latency_tables.profiles import DeviceProfile
    from latency_tables.signatures import Layer
    from searchspace.architecture import Architecture


class TorchRuntime(Runtime):
    name = "torch"
    providers = ("cpu", "cuda")
    precisions = ("fp32",)
    package = "torch"

    def provider_unavailable(self, profile: DeviceProfile) -> str | None:
        import torch

        if profile.provider == "cuda" and not torch.cuda.is_available():
            return "torch sees no CUDA device here"
        return None

    def _runner(self, module: object, shape: tuple[int, ...], profile: DeviceProfile) -> Callable[[], object]:
        import torch

        self.require(profile)
        torch.set_num_threads(profile.threads)  # inside Ray workers torch starts at 1 thread
        device = torch.device("cuda" if profile.provider == "cuda" else "cpu")
        # mypy: module is typed as object by the block builder; it is an nn.Module
        model = module.to(device).eval()  # type: ignore[attr-defined]
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(device)

        def run() -> object:
            with torch.inference_mode():
                out = model(x)
            if device.type == "cuda":  # a CUDA call returns before the kernels finish
                torch.cuda.synchronize(device)
            return out

        return run

    def prepare_layer(self, layer: Layer, profile: DeviceProfile) -> Callable[[], object]:
        from searchspace.blocks import get_block_type
        from searchspace.layers import make_block
        from searchspace.torch_modules import Head

        if layer.block is not None:
            module: object = make_block(get_block_type(layer.block.type).ops(layer.block), layer.block.residual)
        else:
            assert layer.head is not None
            module = Head(layer.cin, **layer.head.model_dump())
        return self._runner(module, (profile.batch, layer.cin, layer.size, layer.size), profile)

    def prepare_network(self, arch: Architecture, profile: DeviceProfile) -> Callable[[], object]:
        from searchspace.model import build_model

        shape = (profile.batch, arch.in_channels, arch.resolution, arch.resolution)
        return self._runner(build_model(arch), shape, profile)
