"""MoE-Prism's gates on tiny models: CG is exact with every sub-expert of the top-k' experts,
follows its pattern otherwise; LG fine-tuning trains only the routers and lowers the loss."""

import pytest
import torch

from moebench.prism.carve import CARVABLE, carve, expert_activations, partition_experts, set_active
from moebench.prism.finetune import finetune_routers, k_schedule
from moebench.prism.gates import default_pattern, gate_neurons, install_complex_gate
from moebench.prism.partition import balanced_kmeans
from tests.tiny import tiny_model

WINDOWS = [
    torch.randint(1, 96, (1, 24), generator=torch.Generator().manual_seed(s)) for s in range(3)
]


def carved_with_acts(family, method="anneal"):
    loaded = tiny_model(family)
    acts = expert_activations(loaded, WINDOWS)
    parts, _ = partition_experts(loaded, acts, n=4, k=3, method=method, iters=20)
    return loaded, carve(loaded, parts, 4), parts, acts


@pytest.mark.parametrize("family", CARVABLE)
def test_complex_gate_with_full_pattern_reproduces_the_original(family):
    loaded, carved, parts, acts = carved_with_acts(family)
    k = loaded.hf_config.num_experts_per_tok
    install_complex_gate(carved, loaded.hf_config, parts, acts, 4, [4] * k)
    x = torch.randint(1, 96, (2, 11), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        torch.testing.assert_close(
            carved.model(input_ids=x).logits, loaded.model(input_ids=x).logits, rtol=1e-4, atol=1e-5
        )


def test_complex_gate_follows_its_pattern():
    loaded, carved, parts, acts = carved_with_acts("olmoe")
    k = loaded.hf_config.num_experts_per_tok
    pattern = default_pattern(6, k, 4)
    install_complex_gate(carved, loaded.hf_config, parts, acts, 4, pattern)
    router = carved.layers[0].router
    x = torch.randn(5, loaded.hf_config.hidden_size)
    _, weights, ids = router(x)
    assert ids.shape == (5, 6)
    parents = ids // 4
    # the first pattern[0] sub-experts share one parent (the top-ranked), and so on
    for t in range(5):
        assert len(set(parents[t, : pattern[0]].tolist())) == 1
        assert len(set(parents[t].tolist())) == len([p for p in pattern if p])
    assert torch.all(weights > 0)
    with torch.no_grad():
        out = carved.model(input_ids=WINDOWS[0]).logits
    assert torch.isfinite(out).all()


def test_default_patterns_match_the_papers_and_sum_to_k():
    assert default_pattern(16, 8, 4) == [4, 4, 4, 3, 1, 0, 0, 0]  # OLMoE, from the authors' code
    assert default_pattern(16, 6, 4) == [4, 4, 4, 3, 1, 0]  # DeepSeek
    assert default_pattern(24, 8, 4) == [4, 4, 4, 4, 4, 3, 1, 0]  # Qwen3
    assert default_pattern(32, 8, 4) == [4] * 8
    for k in range(1, 33):
        assert sum(default_pattern(k, 8, 4)) == k


def test_gate_neurons_pick_the_most_co_activated():
    acts = torch.zeros(50, 8)
    acts[:, [1, 3, 5, 6]] = 1.0 + torch.rand(50, 4)  # always active together
    acts[:, [0, 2, 4, 7]] = torch.rand(50, 4) * 0.1
    assert sorted(gate_neurons(acts, 4, 0.5).tolist()) == [1, 3, 5, 6]


def test_balanced_kmeans_is_a_partition_into_equal_groups():
    acts = torch.rand(40, 32)
    groups = balanced_kmeans(acts, 4, seed=1)
    assert sorted(torch.bincount(groups, minlength=4).tolist()) == [8, 8, 8, 8]


def test_router_finetuning_trains_only_routers_and_lowers_the_loss():
    loaded, carved, _, _ = carved_with_acts("olmoe", method="random")
    before = {n: p.clone() for n, p in carved.model.named_parameters()}
    data = [
        torch.randint(1, 96, (1, 24), generator=torch.Generator().manual_seed(s)) for s in range(4)
    ]
    losses, skipped = finetune_routers(carved, data, steps=30, lr=5e-2, k1=4, k2=8, batch=4)
    assert losses[-1] < losses[0] and skipped == 0
    changed = {n for n, p in carved.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(".gate." in n for n in changed)
    assert [k_schedule(s, 5, 8, 32) for s in range(5)] == [8, 14, 20, 26, 32]
    set_active(carved, 8)


@pytest.mark.parametrize("family", CARVABLE)
def test_linear_gate_breaks_ties_by_index_order(family):
    loaded, carved, _, _ = carved_with_acts(family, method="random")
    set_active(carved, 6)
    _, weights, ids = carved.layers[0].router(torch.randn(40, loaded.hf_config.hidden_size))
    assert torch.equal(ids[:, :4] % 4, torch.arange(4).expand(40, 4))  # the top parent, whole
    assert torch.equal(
        ids[:, 4:] % 4, torch.arange(2).expand(40, 2)
    )  # then the next one's first two
    assert torch.equal(ids[:, :4] // 4, ids[:, :1].expand(40, 4) // 4)


def test_calibration_statistics_are_cached_and_reloaded(tmp_path, monkeypatch):
    from moebench.methods.prism import Prism
    from moebench.models.corpora import calibration_windows

    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    loaded = tiny_model("qwen3_moe")
    windows = calibration_windows(loaded, 2, 16, seed=5)
    first = Prism._activations(loaded, windows)
    assert list(tmp_path.glob("prism/*-acts-*.safetensors"))
    again = Prism._activations(loaded, windows)
    assert first.keys() == again.keys()
    for layer in first:
        assert first[layer].keys() == again[layer].keys()
        for e in first[layer]:
            torch.testing.assert_close(first[layer][e], again[layer][e], rtol=0, atol=0)


def test_complex_gate_on_padded_sub_experts_is_exact():
    loaded = tiny_model(
        "qwen3_moe", moe_intermediate_size=24
    )  # 6 neurons per sub-expert, padded to 8
    acts = expert_activations(loaded, WINDOWS)
    parts, _ = partition_experts(loaded, acts, n=4, k=3, method="anneal", iters=10)
    carved = carve(loaded, parts, 4)
    install_complex_gate(
        carved, loaded.hf_config, parts, acts, 4, [4] * loaded.hf_config.num_experts_per_tok
    )
    x = torch.randint(1, 96, (1, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(
            carved.model(input_ids=x).logits, loaded.model(input_ids=x).logits, rtol=1e-4, atol=1e-5
        )


def test_a_non_finite_router_gradient_skips_the_step():
    _, carved, _, _ = carved_with_acts("olmoe", method="random")
    calls = []

    def poison_first(grad):
        calls.append(1)
        return grad * float("nan") if len(calls) == 1 else grad

    carved.layers[0].router.weight.register_hook(poison_first)
    data = [
        torch.randint(1, 96, (1, 24), generator=torch.Generator().manual_seed(s)) for s in range(4)
    ]
    _, skipped = finetune_routers(carved, data, steps=3, lr=1e-2, k1=4, k2=8, batch=2)
    assert skipped == 1
    assert all(torch.isfinite(v.router.weight).all() for v in carved.layers)
