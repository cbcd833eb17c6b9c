"""Topology-faithful proxies: each real model's layer count (dense layers included),
experts per layer, top-k, shared experts, router type and normalisation, at tiny widths.

A proxy is trained on real English text (models/train.py) and names the real model whose
sizes the virtual clock charges (`proxy_of`). Only widths shrink; everything that decides
routing structure is copied from the real config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from moebench.models.catalog import REAL_MODELS, real_model

# Keys that decide routing topology: copied unchanged from the real config.
TOPOLOGY_KEYS = (
    "num_hidden_layers",
    "num_local_experts",
    "num_experts",
    "n_routed_experts",
    "num_experts_per_tok",
    "n_shared_experts",
    "first_k_dense_replace",
    "norm_topk_prob",
    "topk_method",
    "n_group",
    "topk_group",
    "routed_scaling_factor",
    "decoder_sparse_step",
    "router_jitter_noise",
    "input_jitter_noise",
    "router_aux_loss_coef",
    "aux_loss_alpha",
)

HIDDEN = 64
HEADS = 4
VOCAB = 4096
CONTEXT = 512


@dataclass(frozen=True)
class Recipe:
    """How a proxy is trained (recorded in its card and hashed into its cache key)."""

    steps: int = 600
    batch_size: int = 16
    seq_len: int = 128
    lr: float = 2e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    # Balance-loss weight. One value for every proxy (OLMoE's own 0.01; the other families
    # use 0.001-0.02), so balance differences between proxies come from topology alone.
    aux_loss_coef: float = 0.01
    seed: int = 0
    vocab_size: int = VOCAB
    # Intra-op threads during training: fixed, so the weights are the same bits on every
    # machine (a float sum split over threads rounds differently). One thread is what the
    # committed weights were trained with; it costs wall time on a many-core machine.
    torch_threads: int = 1


@dataclass(frozen=True)
class ProxySpec:
    """A proxy: the real model whose topology it copies (`base`) and whose sizes the clock
    charges (`proxy_of`; None for a reduced proxy, which is charged at its own sizes)."""

    name: str
    base: str
    expert_intermediate: int
    recipe: Recipe = field(default_factory=Recipe)
    overrides: dict = field(default_factory=dict)  # topology changes (reduced proxies only)
    charged_as_base: bool = True

    @property
    def proxy_of(self) -> str | None:
        return self.base if self.charged_as_base else None

    @property
    def family(self) -> str:
        return real_model(self.base).family


def _width_keys(real: dict, family: str, expert_width: int) -> dict:
    """Tiny widths for a real config: hidden 64, 4 heads, expert width as given."""
    kv_heads = 2 if real.get("num_key_value_heads", HEADS) < real["num_attention_heads"] else HEADS
    arch = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_key_value_heads=kv_heads,
        max_position_embeddings=CONTEXT,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    if family in ("qwen2_moe", "qwen3_moe", "deepseek_v2"):
        arch["moe_intermediate_size"] = expert_width
        arch["intermediate_size"] = 4 * expert_width  # dense layers
    else:
        arch["intermediate_size"] = expert_width
    if family == "qwen2_moe":  # one shared expert, 4x an expert's width as in the real model
        ratio = real["shared_expert_intermediate_size"] // real["moe_intermediate_size"]
        arch["shared_expert_intermediate_size"] = ratio * expert_width
    if family == "qwen3_moe":
        arch["head_dim"] = HIDDEN // HEADS
    if family == "deepseek_v2":  # multi-head latent attention, shrunk
        arch.update(
            kv_lora_rank=16,
            q_lora_rank=None,
            qk_nope_head_dim=16,
            qk_rope_head_dim=8,
            v_head_dim=16,
            head_dim=8,
        )
    return arch


def proxy_arch(spec: ProxySpec) -> dict:
    """The proxy's HF config kwargs: the real topology with tiny widths."""
    real = real_model(spec.base)
    arch = {k: real.arch[k] for k in TOPOLOGY_KEYS if k in real.arch}
    arch.update(_width_keys(real.arch, real.family, spec.expert_intermediate))
    arch["vocab_size"] = spec.recipe.vocab_size
    arch.update(spec.overrides)
    return arch


PROXIES: dict[str, ProxySpec] = {
    p.name: p
    for p in [
        ProxySpec("proxy_phi35moe", "phi35moe", expert_intermediate=96),
        ProxySpec("proxy_qwen15moe", "qwen15moe", expert_intermediate=48),
        ProxySpec("proxy_dsv2lite", "dsv2lite", expert_intermediate=48),
        ProxySpec("proxy_olmoe", "olmoe", expert_intermediate=32),
        # 48 layers x 128 experts trains at ~1,200 tokens/s here: fewer steps keep it under 10 min.
        ProxySpec("proxy_qwen3_30b", "qwen3_30b", expert_intermediate=24, recipe=Recipe(steps=320)),
        ProxySpec("proxy_mixtral8x7b", "mixtral8x7b", expert_intermediate=128),
        # Reduced and fast, for CI and quick tests: Mixtral routing in 4 layers, charged at its
        # own sizes (a 4-layer model cannot be charged as 32-layer Mixtral).
        ProxySpec(
            "proxy_ci",
            "mixtral8x7b",
            expert_intermediate=64,
            charged_as_base=False,
            overrides={"num_hidden_layers": 4},
            recipe=Recipe(steps=400, batch_size=8, seq_len=64, vocab_size=1024),
        ),
    ]
}

assert all(p.base in REAL_MODELS for p in PROXIES.values())
