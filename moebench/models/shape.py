"""A model's sizes, the numbers a cost model charges: read once from an HF config.

The family's rules (models/family.py) say where the expert count, the shared experts and
the attention's sizes live; a proxy is charged at the shape of the real model it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moebench.models.family import family_of

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
        return (
            2 * self.vocab * self.hidden
            + self.num_layers * self.attention_params
            + shared
            + routers
            + mlp
        )

    def active_params(self) -> int:
        """Parameters one token touches: everything but the routed experts it skips."""
        return self.non_expert_params() + self.top_k * self.expert_params * len(self.moe_layers)

    def total_params(self) -> int:
        return self.non_expert_params() + self.num_experts * self.expert_params * len(
            self.moe_layers
        )


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
    rules = family_of(config)
    experts = getattr(config, rules.experts_key)
    heads = config.num_attention_heads
    kv_heads = _get(config, "num_key_value_heads", default=heads)
    if rules.latent_attention:  # multi-head latent attention
        nope, rope, v = config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim
        q_lora = config.q_lora_rank
        q = (
            hidden * heads * (nope + rope)
            if not q_lora
            else hidden * q_lora + q_lora * heads * (nope + rope)
        )
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
        i for i in range(layers) if i >= first_dense and i not in mlp_only and (i + 1) % step == 0
    )
    shared = _get(config, "shared_expert_intermediate_size", default=0)
    if rules.shared_count_key and getattr(config, rules.shared_count_key, None):
        shared = config.moe_intermediate_size * getattr(config, rules.shared_count_key)
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
