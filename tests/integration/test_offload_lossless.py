"""Every offload method produces exactly the plain model's greedy tokens, on every family;
records are deterministic; and the timings order as physics says."""

import pytest
import torch

from moebench.config import load_run_config
from moebench.engine.costs import CostModel
from moebench.methods.registry import build_method
from moebench.models.shape import shape_from_hf_config
from tests.tiny import TINY_ARCH, hardware, tiny_model
from tests.unit.test_config import valid

LOSSLESS = ["full_resident", "hf_offload", "ondemand", "mixtral_offloading", "next_layer_prefetch"]


def run_config(method: str, budget_gb: float | None, **options):
    data = valid()
    data["method"] = {"name": method, "budget_gb": budget_gb, "options": options}
    data["workload"] = {"name": "t", "prompt_len": 7, "new_tokens": 10}
    return load_run_config(data)


def small_budget_gb(loaded):
    """Room for non-expert weights, KV cache and a few experts per layer (forces misses)."""
    shape = shape_from_hf_config(loaded.hf_config)
    fixed = shape.non_expert_params() * 2 + shape.kv_elems_per_token * 2 * shape.num_layers * 17
    slots = max(shape.top_k, shape.num_experts // 2)
    return (fixed + slots * len(shape.moe_layers) * shape.expert_bytes + 1) / 1e9, shape


@pytest.mark.parametrize("family", sorted(TINY_ARCH))
def test_offload_methods_are_token_identical_to_generate(family):
    loaded = tiny_model(family)
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(5))
    reference = loaded.model.generate(
        prompt, max_new_tokens=10, min_new_tokens=10, do_sample=False
    )[0, 7:].tolist()
    budget, shape = small_budget_gb(loaded)
    tpot = {}
    for method in LOSSLESS:
        hw_budget = None if method == "full_resident" else budget
        if method == "hf_offload":  # needs one whole layer of experts on the device
            hw_budget = budget + shape.num_experts * shape.expert_bytes / 1e9
        run = run_config(method, hw_budget)
        m = build_method(run, loaded, CostModel(hardware(), shape))
        tokens, steps = m.generate(prompt, 10)
        assert tokens == reference, method
        tpot[method] = sum(steps[1:])
    assert min(tpot, key=tpot.get) == "full_resident"
    assert tpot["hf_offload"] > tpot["mixtral_offloading"]


def test_offloading_misses_and_hits_are_counted():
    loaded = tiny_model("mixtral")
    budget, shape = small_budget_gb(loaded)
    m = build_method(run_config("mixtral_offloading", budget), loaded, CostModel(hardware(), shape))
    m.generate(torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(5)), 10)
    metrics = m.metrics()
    assert 0 < metrics["expert_hit_frac"] < 1
    assert metrics["h2d_bytes"] == metrics["h2d_demand_bytes"] > 0
    assert metrics["decode_missed_bytes_total"] >= metrics["decode_belady_bytes_total"] > 0


def test_topk_activates_fewer_experts():
    loaded = tiny_model("olmoe")
    budget, shape = small_budget_gb(loaded)
    m = build_method(run_config("topk", budget, top_k=2), loaded, CostModel(hardware(), shape))
    seen = []
    from moebench.bench.decode import decode

    decode(loaded, torch.randint(1, 96, (1, 5)), 3, on_step=seen.append)
    assert all(ids.shape[1] == 2 for step in seen for ids in step.routing.values())
    assert m.plan["slots_per_layer"] >= 2


def test_too_small_budget_fails_with_the_minimum():
    from moebench.errors import UserError

    loaded = tiny_model("mixtral")
    shape = shape_from_hf_config(loaded.hf_config)
    with pytest.raises(UserError, match="too small"):
        build_method(run_config("mixtral_offloading", 1e-6), loaded, CostModel(hardware(), shape))


def test_prism_sub_expert_cache_is_lossless_and_packs_finer(tmp_path, monkeypatch):
    """MoE-Prism's offloading manager at K = N k' runs the original model's tokens; its LRU
    holds sub-experts, so a budget worth k + 0.9 experts a layer holds more than 4 k of them
    (its 4x wider router takes a little of the room)."""
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(5))
    shape = shape_from_hf_config(tiny_model("olmoe").hf_config)
    fixed = shape.non_expert_params() * 2 + shape.kv_elems_per_token * 2 * shape.num_layers * 17
    k = shape.top_k
    budget = (fixed + (k + 0.9) * len(shape.moe_layers) * shape.expert_bytes + 1) / 1e9
    out = {}
    for name, method, b, opts in [
        ("original", "topk", budget, {"top_k": k}),
        ("prism_resident", "prism", None, {"active_k": 4 * k, "iters": 10}),
        ("prism_offload", "prism", budget, {"active_k": 4 * k, "iters": 10}),
        ("prism_fused", "prism", budget, {"active_k": 4 * k, "iters": 10, "fused_experts": True}),
    ]:
        loaded = tiny_model("olmoe")
        m = build_method(run_config(method, b, **opts), loaded, CostModel(hardware(), shape))
        tokens, steps = m.generate(prompt, 10)
        out[name] = (tokens, m.plan["slots_per_layer"], m.metrics(), sum(steps[1:]))
    assert out["prism_offload"][0] == out["prism_resident"][0] == out["original"][0]
    assert out["original"][1] == k and 4 * k < out["prism_offload"][1] < 4 * (k + 1)
    assert 0 < out["prism_offload"][2]["expert_hit_frac"] < 1
    # one launch per layer for the routed sub-experts: less compute, same bytes moved
    fused, plain = out["prism_fused"][2], out["prism_offload"][2]
    assert fused["decode_compute_sec_total"] < plain["decode_compute_sec_total"]
    assert fused["h2d_bytes"] == plain["h2d_bytes"]
