"""Every cache policy in every offloading method: lossless, counted by the engine exactly as
the clock-free sweep counts it, and swept on the real Mixtral trace into a report."""

import math

import numpy as np
import pytest
import torch

from moebench.engine.costs import CostModel
from moebench.engine.policies import ONLINE, make_policy
from moebench.engine.policy import simulate_misses
from moebench.methods.registry import build_method
from moebench.models.shape import shape_from_hf_config
from tests.integration.test_offload_lossless import run_config, small_budget_gb
from tests.integration.test_speq import speq_method
from tests.integration.test_trace import MIXTRAL_TRACE
from tests.tiny import hardware, tiny_model

PROMPT = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(5))


def reference(loaded, new_tokens=10):
    out = loaded.model.generate(
        PROMPT, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
    )
    return out[0, 7:].tolist()


@pytest.mark.parametrize("method", ["mixtral_offloading", "next_layer_prefetch", "topk"])
def test_every_policy_is_lossless_and_the_engine_counts_what_the_sweep_counts(method):
    loaded = tiny_model("mixtral")
    budget, shape = small_budget_gb(loaded)
    options = {"top_k": 2} if method == "topk" else {}  # topk at the trained k: lossless
    want = reference(loaded)
    for policy in ONLINE:
        m = build_method(
            run_config(method, budget, policy=policy, **options),
            loaded,
            CostModel(hardware(), shape),
        )
        tokens, _ = m.generate(PROMPT, 10)
        assert tokens == want, policy
        if method == "next_layer_prefetch":
            continue  # prefetches also take slots: the sweep models demand misses alone
        engine, slots = m.engine, m.plan["slots_per_layer"]
        counted = sum(s.needed - s.hits for s in engine.stats.steps)
        swept = sum(
            sum(
                simulate_misses(
                    [needed for needed, _ in stream],
                    slots,
                    make_policy(policy, slots, shape.num_experts),
                    range(slots),
                )
            )
            for stream in engine.accesses.values()
        )
        assert counted == swept, policy


def test_a_policy_changes_what_moves_not_what_is_computed():
    """LRU and the transition policy emit the same tokens but move different experts: the
    check above is not vacuous."""
    loaded = tiny_model("mixtral")
    budget, shape = small_budget_gb(loaded)
    moved = {}
    for policy in ("lru", "transition"):
        m = build_method(
            run_config("mixtral_offloading", budget, policy=policy),
            loaded,
            CostModel(hardware(), shape),
        )
        m.generate(PROMPT, 24)
        moved[policy] = m.metrics()["h2d_bytes"]
    assert moved["lru"] != moved["transition"]


@pytest.mark.parametrize("policy", ["lru", "transition", "learned", "s3fifo"])
def test_speq_is_lossless_under_any_policy_of_its_fp16_cache(policy):
    loaded = tiny_model("mixtral")
    tokens, _ = speq_method(loaded, policy=policy).generate(PROMPT, 12)
    assert tokens == reference(loaded, 12)


def test_prism_sub_expert_cache_takes_any_policy_without_changing_tokens(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    shape = shape_from_hf_config(tiny_model("olmoe").hf_config)
    fixed = shape.non_expert_params() * 2 + shape.kv_elems_per_token * 2 * shape.num_layers * 17
    budget = (fixed + (shape.top_k + 0.9) * len(shape.moe_layers) * shape.expert_bytes + 1) / 1e9
    out = {}
    for policy in ("lru", "transition", "lfuda"):
        options = {"active_k": 4 * shape.top_k, "iters": 10, "policy": policy}
        m = build_method(
            run_config("prism", budget, **options),
            tiny_model("olmoe"),
            CostModel(hardware(), shape),
        )
        out[policy] = m.generate(PROMPT, 10)[0]
    assert out["lru"] == out["transition"] == out["lfuda"]


def test_trace_only_policies_are_refused_live_and_lookahead_outside_speq():
    from moebench.errors import ConfigError
    from moebench.methods.registry import check_method

    for method, policy in (("mixtral_offloading", "belady"), ("prism", "lookahead")):
        with pytest.raises(ConfigError, match="method.options.policy"):
            check_method(run_config(method, 1.0, policy=policy))


@pytest.mark.skipif(not MIXTRAL_TRACE.exists(), reason="needs ../shared/data")
def test_policy_sweep_on_the_real_trace_writes_a_record_and_a_report(tmp_path):
    from moebench.report.__main__ import write_reports
    from moebench.schema import load_records
    from moebench.tools import policy_sweep

    results = tmp_path / "results"
    policy_sweep.main(
        ["--trace", str(MIXTRAL_TRACE), "--trace-model", "mixtral8x7b", "--results", str(results)]
    )
    [record] = load_records(results)
    assert record.clock == "none" and record.experiment == "engine_policies"
    at4 = record.metrics["by_slots"]["4"]
    held = at4["held_out"]
    assert math.isclose(at4["policies"]["lru"]["held_out"]["gap_closed"], 0.0)
    assert held["lru_hits"] < held["belady_hits"]
    for name in ONLINE:  # no online policy beats the clairvoyant cache
        assert at4["policies"][name]["held_out"]["hits"] <= held["belady_hits"]
    transition = at4["policies"]["transition"]["held_out"]
    assert transition["lo"] > 0  # decided better than LRU on held-out real routing
    assert np.isnan(record.metrics["by_slots"]["2"]["policies"]["lfu"]["held_out"]["gap_closed"])
    assert len(record.raw["unit_misses"]["4"]["lru"]) == held["units"]
    write_reports(results, tmp_path / "reports")
    text = (tmp_path / "reports" / "engine_policies.md").read_text()
    assert "**Headline.**" in text and "oracle_next_1" in text
    assert (tmp_path / "reports" / "figs" / "engine_policies.png").exists()


@pytest.mark.skipif(not MIXTRAL_TRACE.exists(), reason="needs ../shared/data")
def test_the_shipped_reuse_model_is_the_one_the_sweep_fits():
    from moebench.bench.policy_gap import Streams, Sweep
    from moebench.engine.policies import DEFAULT_REUSE_MODEL
    from moebench.engine.trace_formats import load_trace

    fitted = Sweep(Streams.of(load_trace(MIXTRAL_TRACE)), 4).fit()
    assert fitted.horizon == DEFAULT_REUSE_MODEL.horizon
    assert np.allclose(fitted.coef, DEFAULT_REUSE_MODEL.coef, atol=1e-3)
    assert math.isclose(fitted.intercept, DEFAULT_REUSE_MODEL.intercept, abs_tol=1e-3)


def test_runs_under_another_policy_are_compared_with_their_default_policy_twins(
    tmp_path, monkeypatch
):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from moebench import runner
    from moebench.cli import CONF_DIR
    from moebench.config import load_run_config
    from moebench.report.__main__ import write_reports
    from tests.integration.test_recordings import BUDGET

    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path / "cache"))
    results = tmp_path / "results"
    for policy in ("lru", "transition"):
        overrides = [
            "+experiment=engine_policies",  # its name; the tiny model and workload below
            "model=tiny_mixtral",
            "workload=debug",
            BUDGET,
            f"method.options.policy={policy}",
            f"results_dir={results}",
        ]
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        runner.execute(load_run_config(OmegaConf.to_container(cfg, resolve=True)))
    write_reports(results, tmp_path / "reports")
    text = (tmp_path / "reports" / "engine_policies.md").read_text()
    assert "| transition over lru |" in text
    assert "**Headline.**" not in text  # no policy sweep records: no sweep tables
