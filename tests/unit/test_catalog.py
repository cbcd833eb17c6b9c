"""Real-model numbers match the published configs, and proxies keep their topology."""

import pytest

from moebench.models.catalog import REAL_MODELS, real_hf_config, real_model_shape
from moebench.models.proxies import PROXIES, TOPOLOGY_KEYS, proxy_arch

# name: (decoder layers, MoE layers, routed experts, top-k, total params in B) as published
# (HF model cards; moe-speq.md Table 1; moe-prism.md section 3; related-systems.md section 8).
PUBLISHED = {
    "phi35moe": (32, 32, 16, 2, 41.9),
    "qwen15moe": (24, 24, 60, 4, 14.3),
    "dsv2lite": (27, 26, 64, 6, 15.7),
    "olmoe": (16, 16, 64, 8, 6.9),
    "qwen3_30b": (48, 48, 128, 8, 30.5),
    "mixtral8x7b": (32, 32, 8, 2, 46.7),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_real_model_topology_and_size_match_published_numbers(name):
    layers, moe, experts, k, total_b = PUBLISHED[name]
    shape = real_model_shape(name)
    assert (shape.num_layers, len(shape.moe_layers), shape.num_experts, shape.top_k) == (
        layers,
        moe,
        experts,
        k,
    )
    assert shape.total_params() / 1e9 == pytest.approx(total_b, rel=0.01)


def test_shared_experts_match_papers():
    assert real_model_shape("qwen15moe").shared_intermediate == 4 * 1408  # one shared, 4x width
    assert real_model_shape("dsv2lite").shared_intermediate == 2 * 1408  # two shared experts
    assert real_model_shape("phi35moe").shared_intermediate == 0


@pytest.mark.parametrize("name", [n for n, p in PROXIES.items() if not p.overrides])
def test_proxy_topology_equals_its_real_model(name):
    spec = PROXIES[name]
    arch = proxy_arch(spec)
    real = REAL_MODELS[spec.base].arch
    for key in TOPOLOGY_KEYS:
        if key in real:
            assert arch[key] == real[key], key
    from moebench.models.loaded import hf_config_for
    from moebench.models.shape import shape_from_hf_config

    proxy_shape = shape_from_hf_config(hf_config_for(spec.family, arch))
    real_shape = real_model_shape(spec.base)
    assert proxy_shape.moe_layers == real_shape.moe_layers
    assert (proxy_shape.num_experts, proxy_shape.top_k) == (
        real_shape.num_experts,
        real_shape.top_k,
    )
    assert bool(proxy_shape.shared_intermediate) == bool(real_shape.shared_intermediate)
    assert proxy_shape.hidden < real_shape.hidden / 10  # only widths shrink
    assert spec.proxy_of == spec.base


def test_every_real_model_builds_a_config_without_network():
    for name in REAL_MODELS:
        assert real_hf_config(name).num_hidden_layers == PUBLISHED[name][0]
