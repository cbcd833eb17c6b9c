"""The real MoE models of the two papers, with the published HF config numbers.

Each entry is what the model's `config.json` on the Hugging Face hub says (the fields the
cost model and the proxies need); `source` names the hub repository the numbers come from.
Cross-checks: ../shared/papers/moe-speq.md Table 1, moe-prism.md section 3,
related-systems.md section 8.
"""

from __future__ import annotations

from dataclasses import dataclass

from moebench.errors import UserError
from moebench.models.shape import ModelShape, shape_from_hf_config


@dataclass(frozen=True)
class RealModel:
    name: str
    family: str
    hf_id: str
    arch: dict  # HF config kwargs of the published checkpoint
    source: str


REAL_MODELS: dict[str, RealModel] = {
    m.name: m
    for m in [
        RealModel(
            "phi35moe",
            "phimoe",
            "microsoft/Phi-3.5-MoE-instruct",
            dict(
                vocab_size=32064,
                hidden_size=4096,
                intermediate_size=6400,
                num_hidden_layers=32,
                num_attention_heads=32,
                num_key_value_heads=8,
                num_local_experts=16,
                num_experts_per_tok=2,
                max_position_embeddings=131072,
                router_jitter_noise=0.01,
                input_jitter_noise=0.01,
                attention_bias=True,
                lm_head_bias=True,
                tie_word_embeddings=False,
            ),
            "hf.co/microsoft/Phi-3.5-MoE-instruct config.json (16 experts; the SpeQ paper's Table "
            "1 '8' is a typo)",
        ),
        RealModel(
            "qwen15moe",
            "qwen2_moe",
            "Qwen/Qwen1.5-MoE-A2.7B",
            dict(
                vocab_size=151936,
                hidden_size=2048,
                intermediate_size=5632,
                moe_intermediate_size=1408,
                shared_expert_intermediate_size=5632,
                num_hidden_layers=24,
                num_attention_heads=16,
                num_key_value_heads=16,
                num_experts=60,
                num_experts_per_tok=4,
                norm_topk_prob=False,
                decoder_sparse_step=1,
                max_position_embeddings=8192,
                router_aux_loss_coef=0.001,
                tie_word_embeddings=False,
            ),
            "hf.co/Qwen/Qwen1.5-MoE-A2.7B config.json",
        ),
        RealModel(
            "dsv2lite",
            "deepseek_v2",
            "deepseek-ai/DeepSeek-V2-Lite",
            dict(
                vocab_size=102400,
                hidden_size=2048,
                intermediate_size=10944,
                moe_intermediate_size=1408,
                num_hidden_layers=27,
                num_attention_heads=16,
                num_key_value_heads=16,
                n_routed_experts=64,
                n_shared_experts=2,
                num_experts_per_tok=6,
                first_k_dense_replace=1,
                kv_lora_rank=512,
                q_lora_rank=None,
                qk_nope_head_dim=128,
                qk_rope_head_dim=64,
                v_head_dim=128,
                topk_method="greedy",
                n_group=1,
                topk_group=1,
                routed_scaling_factor=1.0,
                norm_topk_prob=False,
                aux_loss_alpha=0.001,
                max_position_embeddings=163840,
                tie_word_embeddings=False,
            ),
            "hf.co/deepseek-ai/DeepSeek-V2-Lite config.json",
        ),
        RealModel(
            "olmoe",
            "olmoe",
            "allenai/OLMoE-1B-7B-0924",
            dict(
                vocab_size=50304,
                hidden_size=2048,
                intermediate_size=1024,
                num_hidden_layers=16,
                num_attention_heads=16,
                num_key_value_heads=16,
                num_experts=64,
                num_experts_per_tok=8,
                norm_topk_prob=False,
                max_position_embeddings=4096,
                router_aux_loss_coef=0.01,
                tie_word_embeddings=False,
            ),
            "hf.co/allenai/OLMoE-1B-7B-0924 config.json",
        ),
        RealModel(
            "qwen3_30b",
            "qwen3_moe",
            "Qwen/Qwen3-30B-A3B",
            dict(
                vocab_size=151936,
                hidden_size=2048,
                intermediate_size=6144,
                moe_intermediate_size=768,
                num_hidden_layers=48,
                num_attention_heads=32,
                num_key_value_heads=4,
                head_dim=128,
                num_experts=128,
                num_experts_per_tok=8,
                norm_topk_prob=True,
                decoder_sparse_step=1,
                max_position_embeddings=40960,
                router_aux_loss_coef=0.001,
                tie_word_embeddings=False,
            ),
            "hf.co/Qwen/Qwen3-30B-A3B config.json",
        ),
        RealModel(
            "mixtral8x7b",
            "mixtral",
            "mistralai/Mixtral-8x7B-v0.1",
            dict(
                vocab_size=32000,
                hidden_size=4096,
                intermediate_size=14336,
                num_hidden_layers=32,
                num_attention_heads=32,
                num_key_value_heads=8,
                num_local_experts=8,
                num_experts_per_tok=2,
                max_position_embeddings=32768,
                router_aux_loss_coef=0.02,
                tie_word_embeddings=False,
            ),
            "hf.co/mistralai/Mixtral-8x7B-v0.1 config.json",
        ),
    ]
}


def real_model(name: str) -> RealModel:
    if name not in REAL_MODELS:
        raise UserError(f"unknown real model {name!r}; available: {', '.join(REAL_MODELS)}")
    return REAL_MODELS[name]


def real_hf_config(name: str):
    """The real model's HF config object (built locally, no download)."""
    from moebench.models.loaded import hf_config_for

    model = real_model(name)
    return hf_config_for(model.family, model.arch)


def real_model_shape(name: str) -> ModelShape:
    """Sizes the virtual clock charges for `name`."""
    return shape_from_hf_config(real_hf_config(name))
