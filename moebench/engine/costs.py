"""Cost model: a hardware profile x a model's real sizes -> seconds per kernel and transfer.

A kernel costs max(FLOPs / peak, bytes / HBM bandwidth) + launch overhead; a host-to-device
copy costs latency + bytes / link bandwidth (DESIGN.md section 4). Sizes come from the real
model a proxy stands for (`proxy_of`), so a tiny proxy is charged as the big model.
"""

from __future__ import annotations

from dataclasses import dataclass

from moebench.config import HardwareConfig
from moebench.models.shape import BYTES_PER_PARAM, ModelShape


@dataclass(frozen=True)
class Kernel:
    """One modeled GPU operation."""

    name: str
    flops: float
    bytes: float


class CostModel:
    """Seconds for kernels and copies of one model shape on one hardware profile."""

    def __init__(self, hardware: HardwareConfig, shape: ModelShape):
        self.hw = hardware
        self.shape = shape

    def kernel_sec(self, kernel: Kernel) -> float:
        hw = self.hw
        return (
            max(kernel.flops / hw.peak_flops, kernel.bytes / hw.hbm_bytes_per_sec) + hw.launch_sec
        )

    def transfer_sec(self, num_bytes: float) -> float:
        return self.hw.h2d_latency_sec + num_bytes / self.hw.h2d_bytes_per_sec

    # --- kernels of one forward step ---------------------------------------------------
    def attention_kernel(self, tokens: int, context: int) -> Kernel:
        """Projections over `tokens` new tokens plus attention over `context` cached ones."""
        s = self.shape
        flops = 2 * s.attention_params * tokens + 2 * tokens * context * s.kv_elems_per_token
        weight_bytes = s.attention_params * BYTES_PER_PARAM
        kv_bytes = context * s.kv_elems_per_token * BYTES_PER_PARAM
        return Kernel("attention", flops, weight_bytes + kv_bytes)

    def expert_kernel(self, tokens: int, bytes_per_param: float = BYTES_PER_PARAM) -> Kernel:
        """One routed expert applied to the `tokens` routed to it."""
        s = self.shape
        return Kernel("expert", 2 * s.expert_params * tokens, s.expert_params * bytes_per_param)

    def mlp_kernel(self, tokens: int, intermediate: int, name: str) -> Kernel:
        params = 3 * self.shape.hidden * intermediate
        return Kernel(name, 2 * params * tokens, params * BYTES_PER_PARAM)

    def router_kernel(self, tokens: int) -> Kernel:
        params = self.shape.num_experts * self.shape.hidden
        return Kernel("router", 2 * params * tokens, params * BYTES_PER_PARAM)

    def lm_head_kernel(self, tokens: int) -> Kernel:
        params = self.shape.vocab * self.shape.hidden
        return Kernel("lm_head", 2 * params * tokens, params * BYTES_PER_PARAM)
