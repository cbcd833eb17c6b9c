"""Cost model: a hardware profile x a model's real sizes -> seconds per kernel and transfer.

A kernel costs max(FLOPs / peak, bytes / HBM bandwidth) + launch overhead; a host-to-device
copy costs latency + bytes / link bandwidth (DESIGN.md section 4); every MoE layer adds the
host's routing read-back and per-layer work, during which the device waits. Sizes come from the real
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

    def kernel_sec(self, kernel: Kernel, warm: bool = False) -> float:
        """Roofline plus launch; `warm`: the weights were just copied in (a CPU reads them from
        its caches at the profile's warm rate, where it has one)."""
        hw = self.hw
        rate = hw.warm_bytes_per_sec if warm and hw.warm_bytes_per_sec else hw.hbm_bytes_per_sec
        return max(kernel.flops / hw.peak_flops, kernel.bytes / rate) + hw.launch_sec

    @property
    def host_layer_sec(self) -> float:
        """Host time per MoE layer on the critical path: the routing read-back, then the
        engine's own work before the layer's copies and kernels are queued."""
        return self.hw.readback_sec + self.hw.host_layer_sec

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
        """One routed expert applied to the `tokens` routed to it. Hardware without low-bit
        kernels (the CPU transport runs a draft's dequantized weights) reads bf16 widths."""
        s = self.shape
        if not self.hw.low_bit_kernels:
            bytes_per_param = max(bytes_per_param, BYTES_PER_PARAM)
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
