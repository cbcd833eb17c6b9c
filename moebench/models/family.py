"""What differs between the HF MoE families, in one table: names, and the rules that code
outside models/ must ask about instead of testing a family's name.

A leaf module (no torch), so the config can check `model.arch` against it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """Names and routing rules of one HF MoE family."""

    config_class: str  # transformers config class
    router_attr: str  # attribute of the sparse block holding the router
    shared_attr: str | None  # attribute holding shared experts, if any
    experts_key: str  # config key (as HF stores it) for the routed expert count
    # the router computes its logits in float32, whatever the model's dtype (DeepSeek)
    router_fp32: bool = False
    # the router scales its weights by `routed_scaling_factor` and never renormalizes them
    # (DeepSeek); a carved model's sub-expert weights are then scaled there, not folded in
    router_scaling: bool = False
    # the top-k weights are always renormalized to sum to 1 (Mixtral), not by norm_topk_prob
    always_renormalize: bool = False
    # MoE-Prism can carve and re-gate it: its routing is a top-k over one softmax or score
    # (Phi-3.5-MoE's sparsemixer picks experts in rounds against relative margins: no)
    carvable: bool = True
    # multi-head latent attention (DeepSeek): attention and KV sizes follow the LoRA ranks
    latent_attention: bool = False
    # shared experts given as a count of expert-wide MLPs (DeepSeek), not as their own width
    shared_count_key: str | None = None
    # another name HF's config accepts for `experts_key` (Qwen3-MoE's catalog entry uses it)
    experts_alias: str | None = None

    def expert_count(self, arch: dict) -> int | None:
        """The routed expert count in config kwargs, under either of its names."""
        return arch.get(
            self.experts_key, arch.get(self.experts_alias) if self.experts_alias else None
        )

    def fold(self, n: int) -> float:
        """By how much a carved expert's down projection is scaled so that N sub-experts,
        each weighted like its parent, add up to the parent (1 where the router scales)."""
        return 1.0 if self.router_scaling else float(n)


FAMILIES: dict[str, Family] = {
    "mixtral": Family("MixtralConfig", "gate", None, "num_local_experts", always_renormalize=True),
    "phimoe": Family("PhimoeConfig", "router", None, "num_local_experts", carvable=False),
    "qwen2_moe": Family("Qwen2MoeConfig", "gate", "shared_expert", "num_experts"),
    "qwen3_moe": Family(
        "Qwen3MoeConfig", "gate", None, "num_local_experts", experts_alias="num_experts"
    ),
    "olmoe": Family("OlmoeConfig", "gate", None, "num_experts"),
    "deepseek_v2": Family(
        "DeepseekV2Config",
        "gate",
        "shared_experts",
        "n_routed_experts",
        router_fp32=True,
        router_scaling=True,
        latent_attention=True,
        shared_count_key="n_shared_experts",
    ),
}


def family_of(config) -> Family:
    """The rules for an HF config (its `model_type` is the family's name here)."""
    return FAMILIES[config.model_type]
