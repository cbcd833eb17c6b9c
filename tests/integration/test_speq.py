"""MoE-SpeQ is lossless: speculative greedy decoding equals plain greedy, on every family."""

import dataclasses

import pytest
import torch

from moebench.config import load_run_config
from moebench.engine.budget import int4_expert_bytes
from moebench.engine.costs import CostModel
from moebench.methods.registry import build_method
from moebench.models.shape import shape_from_hf_config
from moebench.speq.decode import speculative_decode
from moebench.speq.draft import Draft
from tests.integration.test_offload_lossless import hardware, small_budget_gb
from tests.tiny import TINY_ARCH, tiny_model
from tests.unit.test_config import valid


def speq_run(budget_gb, **options):
    data = valid()
    data["method"] = {"name": "speq", "budget_gb": budget_gb, "options": options}
    data["workload"] = {"name": "t", "prompt_len": 7, "new_tokens": 12}
    return load_run_config(data)


def speq_method(loaded, **options):
    budget, shape = small_budget_gb(loaded)
    budget += (
        int4_expert_bytes(shape) * shape.num_experts * len(shape.moe_layers)
        + shape.expert_bytes / 2
    ) / 1e9
    return build_method(speq_run(budget, **options), loaded, CostModel(hardware(), shape))


@pytest.mark.parametrize("family", sorted(TINY_ARCH))
def test_speq_is_token_identical_to_greedy(family):
    loaded = tiny_model(family)
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(11))
    reference = loaded.model.generate(
        prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False
    )[0, 7:].tolist()
    method = speq_method(loaded)
    tokens, step_sec = method.generate(prompt, 12)
    assert tokens == reference
    assert len(step_sec) == 12 and all(s > 0 for s in step_sec)
    m = method.metrics()
    assert m["cycles"] >= 1 and 0 <= m["draft_accept_frac"] <= 1


@pytest.mark.parametrize("k", [1, 3, 6])
def test_fixed_k_speculation_without_clock_is_lossless(k):
    loaded = tiny_model("qwen2_moe")
    draft = Draft(loaded, "rtn")
    prompt = torch.randint(1, 96, (1, 5), generator=torch.Generator().manual_seed(3))
    reference = loaded.model.generate(
        prompt, max_new_tokens=15, min_new_tokens=15, do_sample=False
    )[0, 5:].tolist()
    result = speculative_decode(loaded, draft, prompt, 15, choose_k=lambda: k)
    assert result.tokens == reference
    assert result.target_calls == 1 + len(result.cycles)


def test_draft_shares_every_non_expert_tensor_and_restores_experts():
    loaded = tiny_model("deepseek_v2")
    draft = Draft(loaded, "rtn")
    before = {n: p.data_ptr() for n, p in loaded.model.named_parameters()}
    with draft.active():
        during = {n: p.data_ptr() for n, p in loaded.model.named_parameters()}
    after = {n: p.data_ptr() for n, p in loaded.model.named_parameters()}
    changed = {n for n in before if before[n] != during[n]}
    assert changed and all("experts" in n and "shared" not in n for n in changed)
    assert after == before


def test_elb_holds_k_by_l_entries_and_prefetch_happens():
    loaded = tiny_model("mixtral")
    method = speq_method(loaded, fixed_k=4)
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(2))
    method.generate(prompt, 12)
    elb = method.orchestrator.buffer()
    shape = shape_from_hf_config(loaded.hf_config)
    assert set(elb) == set(shape.moe_layers)
    assert all(len(entries) == method.cycles[-1].k for entries in elb.values())
    assert method.engine.stats.prefetch_issued > 0


def test_the_bytes_governor_tries_each_k_once_under_a_one_by_one_verify_then_keeps_the_best():
    """Under verify=sequential the copies per token depend on k through the lookahead eviction,
    which no closed form gives: each k is measured once (an untried k counts as free), then
    the governor keeps choosing among measured ones."""
    loaded = tiny_model("qwen2_moe")
    budget, shape = small_budget_gb(loaded)  # no INT4 draft to hold: these slots alone
    run = speq_run(
        budget,
        draft="resident",
        verify="sequential",
        prefetch=False,
        governor="bytes",
        ttft_budget_sec=None,
        k_max=4,
    )
    slow_link = dataclasses.replace(
        hardware(), h2d_bytes_per_sec=1e5
    )  # copies dominate, as at Phi's sizes
    method = build_method(run, loaded, CostModel(slow_link, shape))
    assert method.plan["slots_per_layer"] < shape.num_experts
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(2))
    method.generate(prompt, 40)
    history = method.governor.history
    assert sorted(history[:4]) == [1, 2, 3, 4]
    assert sorted(method.cycle_costs.copies_per_verified_token) == [1, 2, 3, 4]
    profile = method.details()["governor"]["offline_profile_sec"]
    assert len(profile) == 4 and all(v > 0 for v in profile.values())


@pytest.mark.parametrize("sequential", [False, True])
def test_speculative_decoding_runs_every_forward_without_autograd(sequential):
    loaded = tiny_model("qwen2_moe")
    grad = []
    hook = loaded.model.register_forward_hook(
        lambda _m, _a, _o: grad.append(torch.is_grad_enabled())
    )
    try:
        speculative_decode(
            loaded,
            Draft(loaded, "rtn"),
            torch.randint(1, 96, (1, 5)),
            6,
            choose_k=lambda: 2,
            sequential_verify=sequential,
        )
    finally:
        hook.remove()
    assert grad and not any(grad)


def test_draft_lengths_beyond_eight_record_every_position(results_dir):
    """k_max = 12 used to end in an IndexError after the run: per-position acceptance was
    sized 8. The record now holds a position for every draft length the run reached."""
    import json

    from moebench import runner
    from tests.integration.test_runner import debug_config

    cfg = debug_config(
        results_dir,
        "method=speq",
        "method.options.k_max=12",
        "method.options.fixed_k=12",
        "workload.new_tokens=40",
    )
    metrics = json.loads(runner.execute(cfg).read_text())["metrics"]
    reached = [
        int(k.removeprefix("accept_frac_pos")) for k in metrics if k.startswith("accept_frac_pos")
    ]
    assert max(reached) > 8, (
        f"the run never drafted past position 8 ({reached}): the test would not fail"
    )


def test_the_quantized_draft_is_cached_and_loads_bit_identical(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    loaded = tiny_model("mixtral")
    calibration = [torch.randint(1, 96, (1, 24), generator=torch.Generator().manual_seed(2))]
    fresh = Draft(loaded, "gptq", calibration=calibration)
    assert len(list((tmp_path / "drafts").glob("*.safetensors"))) == 1
    cached = Draft(loaded, "gptq", calibration=calibration)
    for layer, (gate_up, down) in fresh.weights.items():
        assert torch.equal(cached.weights[layer][0], gate_up)
        assert torch.equal(cached.weights[layer][1], down)
    Draft(loaded, "gptq", calibration=calibration, bits=3)  # other options: another entry
    assert len(list((tmp_path / "drafts").glob("*.safetensors"))) == 2
