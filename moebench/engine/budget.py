"""Memory budgets in GB -> expert slots, with every term of the conversion recorded.

Device memory holds the non-expert weights (embeddings, attention, norms, routers, shared
experts, dense layers), the KV cache for the longest sequence, a draft model when a method
has one (SpeQ's INT4 experts), and then as many routed-expert slots as fit. Slots are split
evenly over MoE layers (mixtral-offloading keeps one LRU cache per layer).
"""

from __future__ import annotations

from moebench.errors import UserError
from moebench.models.shape import BYTES_PER_PARAM, ModelShape

INT4_GROUP = 128
SCALE_BYTES = 2  # one fp16 scale per group of 128 weights


def draft_expert_bytes(shape: ModelShape, bits: int = 4) -> float:
    """A `bits`-bit (group 128, fp16 scales) copy of one routed expert: fewer bits take less
    device memory, which a draft gives back to FP16 slots."""
    params = shape.expert_params
    return params * bits / 8 + params / INT4_GROUP * SCALE_BYTES


def int4_expert_bytes(shape: ModelShape) -> float:
    """An INT4 (group 128, fp16 scales) copy of one routed expert."""
    return draft_expert_bytes(shape, 4)


def budget_gb_for_slots(
    shape: ModelShape, slots_per_layer: float, max_tokens: int, draft_bytes: float = 0.0
) -> float:
    """The budget (GB) whose plan holds `slots_per_layer` expert slots in every MoE layer
    (pass k + 0.5 to land safely inside k): the inverse of `plan_slots`."""
    fixed = (
        shape.non_expert_params() * BYTES_PER_PARAM
        + kv_cache_bytes(shape, max_tokens)
        + draft_bytes
    )
    return round((fixed + slots_per_layer * len(shape.moe_layers) * shape.expert_bytes) / 1e9, 9)


def kv_cache_bytes(shape: ModelShape, max_tokens: int) -> int:
    return shape.kv_elems_per_token * BYTES_PER_PARAM * shape.num_layers * max_tokens


def plan_slots(
    shape: ModelShape,
    budget_gb: float | None,
    max_tokens: int,
    draft_bytes: float = 0.0,
    min_per_layer: int | None = None,
    layers_held: int | None = None,
) -> dict:
    """Slots per MoE layer for a device budget; `budget_gb=None` means every expert resident.
    `layers_held` is how many layers' slots live on the device at once (all MoE layers for
    an expert cache; 1 for layer-wise offload). Raises a one-line UserError naming the
    minimum budget when one layer's active experts (or `min_per_layer`) would not fit."""
    layers = layers_held or len(shape.moe_layers)
    need = min_per_layer or shape.top_k
    fixed = (
        shape.non_expert_params() * BYTES_PER_PARAM
        + kv_cache_bytes(shape, max_tokens)
        + draft_bytes
    )
    plan = {
        "budget_gb": budget_gb,
        "non_expert_gb": shape.non_expert_params() * BYTES_PER_PARAM / 1e9,
        "kv_cache_gb": kv_cache_bytes(shape, max_tokens) / 1e9,
        "draft_gb": draft_bytes / 1e9,
        "expert_mb": shape.expert_bytes / 1e6,
        "all_experts_gb": shape.expert_bytes * shape.num_experts * len(shape.moe_layers) / 1e9,
        "layers_held": layers,
    }
    if budget_gb is None:
        return plan | {
            "expert_slots_total": shape.num_experts * len(shape.moe_layers),
            "slots_per_layer": shape.num_experts,
        }
    free = budget_gb * 1e9 - fixed
    per_layer = min(shape.num_experts, int(max(free, 0) // shape.expert_bytes) // layers)
    if per_layer < need:
        minimum = (fixed + need * layers * shape.expert_bytes) / 1e9
        raise UserError(
            f"method.budget_gb={budget_gb} is too small: {need} expert slots per layer "
            f"need at least {minimum:.4g} GB (non-expert weights {plan['non_expert_gb']:.4g} GB, "
            f"KV cache {plan['kv_cache_gb']:.4g} GB, draft {plan['draft_gb']:.4g} GB)"
        )
    return plan | {"expert_slots_total": per_layer * layers, "slots_per_layer": per_layer}
