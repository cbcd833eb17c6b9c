"""The per-family view finds every MoE layer, and its routing equals the HF router's."""

import pytest
import torch

from moebench.models.routing import route, router_logits
from tests.tiny import TINY_ARCH, tiny_model

FAMILIES = sorted(TINY_ARCH)


def by_expert(weights, ids):
    """Sort each token's (id, weight) pairs by id, so unsorted top-k compares exactly."""
    order = ids.argsort(dim=-1)
    return weights.gather(-1, order), ids.gather(-1, order)


@pytest.mark.parametrize("family", FAMILIES)
def test_view_routing_equals_hf_router_exactly(family):
    loaded = tiny_model(family)
    torch.manual_seed(1)
    hidden = torch.randn(40, loaded.hf_config.hidden_size)
    assert loaded.layers, "no MoE layers found"
    for layer in loaded.layers:
        _, hf_weights, hf_ids = layer.router(hidden)
        weights, ids = route(family, loaded.hf_config, router_logits(layer, hidden, family))
        hw, hi = by_expert(hf_weights, hf_ids)
        ow, oi = by_expert(weights, ids)
        assert torch.equal(hi, oi)
        assert torch.equal(hw, ow)


def test_deepseek_group_limited_routing_and_scaling_match():
    loaded = tiny_model(
        "deepseek_v2",
        topk_method="group_limited_greedy",
        n_group=4,
        topk_group=2,
        routed_scaling_factor=2.5,
    )
    hidden = torch.randn(50, 32, generator=torch.Generator().manual_seed(3))
    layer = loaded.layers[0]
    _, hf_weights, hf_ids = layer.router(hidden)
    weights, ids = route(
        "deepseek_v2", loaded.hf_config, router_logits(layer, hidden, "deepseek_v2")
    )
    assert torch.equal(by_expert(hf_weights, hf_ids)[1], by_expert(weights, ids)[1])
    assert torch.equal(by_expert(hf_weights, hf_ids)[0], by_expert(weights, ids)[0])
    groups = ids // 2  # 8 experts in 4 groups of 2: at most 2 groups per token
    assert all(len(set(row.tolist())) <= 2 for row in groups)


@pytest.mark.parametrize("family", FAMILIES)
def test_view_layout_shared_experts_dense_layers_and_bytes(family):
    loaded = tiny_model(family)
    dense_first = family == "deepseek_v2"
    assert [layer.index for layer in loaded.layers] == ([1, 2] if dense_first else [0, 1, 2])
    has_shared = family in ("qwen2_moe", "deepseek_v2")
    assert all((layer.shared is not None) == has_shared for layer in loaded.layers)
    layer = loaded.layers[0]
    width = TINY_ARCH[family].get("moe_intermediate_size", TINY_ARCH[family]["intermediate_size"])
    assert layer.expert_bytes() == 3 * 32 * width * 4  # float32 gate, up and down
    assert layer.num_experts == layer.router.weight.shape[0]
