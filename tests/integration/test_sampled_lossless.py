"""Sampled decoding on the shared noise tape stays lossless: every offloading method, MoE-SpeQ
(draft and verify read the same tape) and Prism's sub-expert cache emit exactly the tokens
of plain sampled decoding, on every family; another seed gives other tokens."""

import pytest
import torch

from moebench.bench.decode import decode
from moebench.bench.metrics import bound_metrics, latency_metrics
from moebench.bench.sampling import TokenChooser
from moebench.engine.costs import CostModel
from moebench.methods.registry import build_method
from moebench.models.shape import shape_from_hf_config
from moebench.speq.decode import speculative_decode
from moebench.speq.draft import Draft
from tests.integration.test_offload_lossless import LOSSLESS, hardware, run_config, small_budget_gb
from tests.integration.test_speq import speq_method
from tests.tiny import TINY_ARCH, tiny_model

NEW = 10
# Tiny random models have logits of std ~0.12: at T = 0.1 the logits and the noise weigh
# alike, so the tokens depend on the model (at T ~ 1 the noise alone would pick them).
SAMPLE = TokenChooser("sample", temperature=0.1, seed=3, prompt=1)


def prompt():
    return torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("family", sorted(TINY_ARCH))
def test_every_lossless_method_emits_the_plain_sampled_tokens(family):
    loaded = tiny_model(family)
    plain = decode(loaded, prompt(), NEW, chooser=SAMPLE)
    assert plain != decode(loaded, prompt(), NEW)  # sampling is not greedy here
    budget, shape = small_budget_gb(loaded)
    for method in LOSSLESS:
        b = None if method == "full_resident" else budget
        if method == "hf_offload":
            b = budget + shape.num_experts * shape.expert_bytes / 1e9
        m = build_method(run_config(method, b), loaded, CostModel(hardware(), shape))
        tokens, steps = m.generate(prompt(), NEW, SAMPLE)
        assert tokens == plain, method
        assert_within_physics(m, steps)
    speq = speq_method(loaded)
    tokens, steps = speq.generate(prompt(), NEW, SAMPLE)
    assert tokens == plain, "speq"
    assert_within_physics(speq, steps)


def assert_within_physics(method, steps):
    """Per emitted token, no run beats its compute bound or a clairvoyant cache's I/O bound."""
    metrics = latency_metrics([steps]) | method.metrics()
    bounds = bound_metrics(metrics, hardware().h2d_bytes_per_sec)
    assert bounds["tpot_over_bound_ratio"] >= 1 - 1e-9, bounds
    moved_sec_per_token = bounds["h2d_gb_per_token"] * 1e9 / hardware().h2d_bytes_per_sec
    assert bounds["bound_io_belady_sec_per_token"] <= moved_sec_per_token + 1e-12  # MIN moves least


@pytest.mark.parametrize("k", [1, 4])
def test_speculation_on_the_tape_accepts_some_drafts_and_is_exact(k):
    loaded = tiny_model("qwen2_moe")
    chooser = TokenChooser("sample", temperature=0.1, seed=0, prompt=0)
    plain = decode(loaded, prompt(), 15, chooser=chooser)
    result = speculative_decode(
        loaded, Draft(loaded, "rtn"), prompt(), 15, choose_k=lambda: k, chooser=chooser
    )
    assert result.tokens == plain
    assert (
        sum(c.accepted for c in result.cycles) > 0
    )  # the INT4 draft agrees with the target's samples


def test_another_seed_or_prompt_index_gives_other_tokens():
    loaded = tiny_model("mixtral")
    base = decode(loaded, prompt(), NEW, chooser=SAMPLE)
    assert decode(loaded, prompt(), NEW, chooser=SAMPLE) == base
    assert (
        decode(loaded, prompt(), NEW, chooser=TokenChooser("sample", 0.1, seed=4, prompt=1)) != base
    )
    assert (
        decode(loaded, prompt(), NEW, chooser=TokenChooser("sample", 0.1, seed=3, prompt=2)) != base
    )


@pytest.mark.parametrize("backend", ["virtual", "real"])
@pytest.mark.parametrize(
    "family", sorted(set(TINY_ARCH) - {"phimoe"})
)  # Phi's sparsemixer router: not carvable
def test_prism_sub_expert_cache_is_lossless_under_sampling(family, backend, tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    loaded = tiny_model(family)
    shape = shape_from_hf_config(loaded.hf_config)
    plain = decode(loaded, prompt(), NEW, chooser=SAMPLE)
    k = shape.top_k
    fixed = shape.non_expert_params() * 2 + shape.kv_elems_per_token * 2 * shape.num_layers * 17
    budget = (fixed + (k + 0.9) * len(shape.moe_layers) * shape.expert_bytes + 1) / 1e9
    run = run_config("prism", budget, active_k=4 * k, iters=10)
    run.backend, run.device = backend, "cpu"  # real: sub-experts copied into a real slot pool
    m = build_method(run, tiny_model(family), CostModel(hardware(), shape))
    assert m.clock_label == ("wall" if backend == "real" else "virtual")
    tokens, _ = m.generate(prompt(), NEW, SAMPLE)
    assert tokens == plain


def test_a_corrupted_expert_changes_the_sampled_tokens():
    """The identity check can fail: perturb one routed expert and the tape's tokens move."""
    loaded = tiny_model("mixtral")
    plain = decode(loaded, prompt(), NEW, chooser=SAMPLE)
    experts = loaded.layers[0].experts
    with torch.no_grad():
        experts.down_proj.data[:] *= 100.0  # tiny random experts barely move the logits
    assert decode(loaded, prompt(), NEW, chooser=SAMPLE) != plain


@pytest.mark.parametrize("missing", ["renormalize", "drop"])
@pytest.mark.parametrize("family", sorted(TINY_ARCH))
def test_resident_experts_draft_is_lossless_and_moves_no_draft_bytes(family, missing):
    """draft=resident: no INT4 copies, the draft computes with resident experts only."""
    loaded = tiny_model(family)
    plain = decode(loaded, prompt(), NEW, chooser=SAMPLE)
    budget, shape = small_budget_gb(loaded)
    method = speq_method(loaded, draft="resident", draft_missing=missing, fixed_k=3)
    assert method.plan["draft_gb"] == 0
    tokens, steps = method.generate(prompt(), NEW, SAMPLE)
    assert tokens == plain
    m = method.metrics()
    assert 0 < m["draft_fidelity_frac"] <= 1 and 0 < m["draft_kept_expert_frac"] <= 1
    assert all(
        not s.draft or s.missed_bytes == 0 for s in method.engine.stats.steps
    )  # drafting moves nothing


BEYOND = {  # issue 15's variants of method=speq, each with the bytes governor
    "int4_cached": dict(draft="int4_cached", governor="bytes"),
    "resident_sequential": dict(
        draft="resident", verify="sequential", prefetch=False, governor="bytes"
    ),
    "int4_sequential_next_token": dict(verify="sequential", prefetch="next_token", fixed_k=4),
    "int2_bytes_governor": dict(draft_bits=2, governor="bytes", ttft_budget_sec=None),
}


@pytest.mark.parametrize("variant", sorted(BEYOND))
@pytest.mark.parametrize("family", sorted(TINY_ARCH))
def test_speq_beyond_the_paper_variants_are_lossless_under_sampling(family, variant):
    loaded = tiny_model(family)
    plain = decode(loaded, prompt(), NEW, chooser=SAMPLE)
    method = speq_method(loaded, **BEYOND[variant])
    tokens, steps = method.generate(prompt(), NEW, SAMPLE)
    assert tokens == plain, variant
    assert_within_physics(method, steps)
    assert method.metrics()["cycles"] >= 1


def test_an_offloaded_int4_draft_moves_int4_bytes_and_gives_its_memory_back_to_fp16_slots():
    loaded = tiny_model("mixtral")
    shape = shape_from_hf_config(loaded.hf_config)
    full, cached = (
        speq_method(loaded),
        speq_method(loaded, draft="int4_cached", draft_slots=2, fixed_k=3),
    )
    assert cached.plan["draft_gb"] == pytest.approx(full.plan["draft_gb"] * 2 / shape.num_experts)
    assert cached.plan["draft_slots_per_layer"] == 2
    assert cached.plan["slots_per_layer"] > full.plan["slots_per_layer"]
    assert 0 < cached.plan["int4_share_of_expert_memory"] < full.plan["int4_share_of_expert_memory"]
    cached.generate(prompt(), NEW, SAMPLE)
    cache, m = cached.engine.draft.cache, cached.metrics()
    misses = cache.needed - cache.hits
    assert misses > 0 and m["draft_h2d_bytes"] == pytest.approx(misses * cache.expert_bytes)
    assert cache.expert_bytes < shape.expert_bytes / 3  # INT4 + scales, not FP16
    assert m["h2d_bytes"] >= m["draft_h2d_bytes"]  # the draft's copies are on the link's count
    full.generate(prompt(), NEW, SAMPLE)
    assert "draft_h2d_bytes" not in full.metrics()  # the paper's draft never moves
