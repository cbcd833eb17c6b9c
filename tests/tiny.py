"""Tiny random-weight configs of every supported family, for fast integration tests."""

from __future__ import annotations

from moebench.config import HardwareConfig, ModelConfig
from moebench.models.build import build_random

COMMON = dict(
    vocab_size=96,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=2,
    num_key_value_heads=2,
    max_position_embeddings=128,
    bos_token_id=0,
    eos_token_id=0,
    pad_token_id=0,
)

TINY_ARCH = {
    "mixtral": dict(intermediate_size=32, num_local_experts=6, num_experts_per_tok=2),
    "phimoe": dict(intermediate_size=32, num_local_experts=6, num_experts_per_tok=2),
    "qwen2_moe": dict(
        intermediate_size=64,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=32,
        num_experts=8,
        num_experts_per_tok=3,
        norm_topk_prob=False,
    ),
    "qwen3_moe": dict(
        intermediate_size=64,
        moe_intermediate_size=16,
        num_experts=8,
        num_experts_per_tok=3,
        norm_topk_prob=True,
        head_dim=16,
    ),
    "olmoe": dict(intermediate_size=16, num_experts=8, num_experts_per_tok=4, norm_topk_prob=False),
    "deepseek_v2": dict(
        intermediate_size=64,
        moe_intermediate_size=16,
        n_routed_experts=8,
        n_shared_experts=2,
        num_experts_per_tok=3,
        first_k_dense_replace=1,
        kv_lora_rank=8,
        q_lora_rank=None,
        qk_nope_head_dim=8,
        qk_rope_head_dim=4,
        v_head_dim=8,
        head_dim=4,
        topk_method="greedy",
        routed_scaling_factor=1.0,
        n_group=1,
        topk_group=1,
    ),
}


def tiny_model(family: str, **overrides):
    """A seeded random tiny model of `family` (a few ms to build)."""
    arch = COMMON | TINY_ARCH[family] | overrides
    return build_random(ModelConfig(name=f"tiny_{family}", family=family, arch=arch))


def hardware() -> HardwareConfig:
    """An A100-40G on PCIe 4.0 (the papers' GPU), for tests that need a cost model."""
    return HardwareConfig(
        name="a100",
        peak_flops=312e12,
        hbm_bytes_per_sec=1555e9,
        h2d_bytes_per_sec=25e9,
        h2d_latency_sec=7e-6,
        launch_sec=5e-6,
        memory_gb=40,
    )
