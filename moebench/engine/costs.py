"""Cost model: a hardware profile x a model's real sizes -> seconds per kernel and transfer.

A kernel costs max(FLOPs / peak, bytes / HBM bandwidth) + launch overhead; a host-to-device
copy costs latency + bytes / link bandwidth (DESIGN.md section 4). Sizes come from the real
model a proxy stands for (`proxy_of`), so a tiny proxy is charged as the big model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moebench.config import HardwareConfig

BYTES_PER_PARAM = 2  # bf16 / fp16 weights and KV cache on the GPU


@dataclass(frozen=True)
class ModelShape:
    """The sizes that decide cost, read once from an HF config."""

    hidden: int
    num_layers: int
    moe_layers: tuple[int, ...]  # decoder-layer indices that hold routed experts
    num_experts: int
    top_k: int
    expert_intermediate: int
    shared_intermediate: int  # 0 when the family has no shared experts
    dense_intermediate: int  # MLP width of dense (non-MoE) layers
    attention_params: int  # per layer
    kv_elems_per_token: int  # per layer, K and V together
    vocab: int
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def expert_params(self) -> int:
        return 3 * self.hidden * self.expert_intermediate

    @property
    def expert_bytes(self) -> int:
        return self.expert_params * BYTES_PER_PARAM

    def non_expert_params(self) -> int:
        """Embeddings, attention, norms, routers, shared experts and dense MLPs."""
        dense = self.num_layers - len(self.moe_layers)
        shared = 3 * self.hidden * self.shared_intermediate * len(self.moe_layers)
        routers = self.num_experts * self.hidden * len(self.moe_layers)
        mlp = 3 * self.hidden * self.dense_intermediate * dense
        return 2 * self.vocab * self.hidden + self.num_layers * self.attention_params + shared + routers + mlp

    def active_params(self) -> int:
        """Parameters one token touches: everything but the routed experts it skips."""
        return self.non_expert_params() + self.top_k * self.expert_params * len(self.moe_layers)

    def total_params(self) -> int:
        return self.non_expert_params() + self.num_experts * self.expert_params * len(self.moe_layers)


def _get(config, *names, default=None):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return default


def shape_from_hf_config(config) -> ModelShape:
    """Read a ModelShape from any of the six supported HF MoE configs."""
    hidden = config.hidden_size
    layers = config.num_hidden_layers
    experts = _get(config, "n_routed_experts", "num_local_experts", "num_experts")
    heads = config.num_attention_heads
    kv_heads = _get(config, "num_key_value_heads", default=heads)
    if getattr(config, "kv_lora_rank", None):  # DeepSeek multi-head latent attention
        nope, rope, v = config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim
        q_lora = config.q_lora_rank
        q = hidden * heads * (nope + rope) if not q_lora else hidden * q_lora + q_lora * heads * (nope + rope)
        kv = hidden * (config.kv_lora_rank + rope) + config.kv_lora_rank * heads * (nope + v)
        attention = q + kv + heads * v * hidden
        kv_elems = heads * (nope + rope + v)  # HF caches decompressed keys and values
    else:
        head_dim = _get(config, "head_dim", default=hidden // heads)
        attention = hidden * head_dim * (2 * heads + 2 * kv_heads)
        kv_elems = 2 * kv_heads * head_dim
    first_dense = _get(config, "first_k_dense_replace", default=0)
    mlp_only = set(_get(config, "mlp_only_layers", default=[]) or [])
    step = _get(config, "decoder_sparse_step", default=1)
    moe = tuple(
        i for i in range(layers)
        if i >= first_dense and i not in mlp_only and (i + 1) % step == 0
    )
    shared = _get(config, "shared_expert_intermediate_size", default=0)
    if getattr(config, "n_shared_experts", None):
        shared = config.moe_intermediate_size * config.n_shared_experts
    return ModelShape(
        hidden=hidden,
        num_layers=layers,
        moe_layers=moe,
        num_experts=experts,
        top_k=config.num_experts_per_tok,
        expert_intermediate=_get(config, "moe_intermediate_size", "intermediate_size"),
        shared_intermediate=shared,
        dense_intermediate=config.intermediate_size,
        attention_params=attention,
        kv_elems_per_token=kv_elems,
        vocab=config.vocab_size,
    )


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
        return max(kernel.flops / hw.peak_flops, kernel.bytes / hw.hbm_bytes_per_sec) + hw.launch_sec

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
