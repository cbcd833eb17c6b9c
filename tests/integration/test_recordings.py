"""Record once, replay many: a run replayed from its point's routing recording writes the
record a live run writes, bit for bit, for every method that replays; the check can fail."""

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from moebench import runner
from moebench.cli import CONF_DIR
from moebench.compare_records import compare_folders
from moebench.config import load_run_config
from moebench.engine.trace_formats import load_trace
from moebench.recordings import recording_key, recordings_dir
from moebench.schema import load_record
from tests.tiny import COMMON, TINY_ARCH

BUDGET = "method.budget_gb=0.0012"  # tiny_mixtral: a few experts per layer, so misses happen

# (method overrides) for every method that replays; each runs live and from a recording
REPLAYING = {
    "full_resident": ["method=full_resident"],
    "hf_offload": ["method=hf_offload", "method.budget_gb=0.004"],
    "ondemand": ["method=ondemand", BUDGET],
    "lru_sm": ["method=mixtral_offloading_sm", BUDGET],
    "lfu_sc": [
        "method=mixtral_offloading_sc",
        "method.budget_gb=0.0015",
        "method.options.policy=lfu",
    ],
    "nlp_sooner": ["method=next_layer_prefetch", BUDGET],
    "nlp_later": ["method=next_layer_prefetch", BUDGET, "method.options.issue=later"],
    "topk": ["method=topk", BUDGET, "method.options.top_k=1"],
    "prism": ["method=prism", BUDGET, "method.options.iters=5", "method.options.active_k=6"],
}


def config(results_dir, *overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "config", overrides=["+experiment=debug", f"results_dir={results_dir}", *overrides]
        )
    return load_run_config(OmegaConf.to_container(cfg, resolve=True))


def run(results_dir, *overrides):
    """Run one point; return its record."""
    cfg = config(results_dir, "force=true", *overrides)
    return load_record(runner.execute(cfg))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("decoding", ["greedy", "sample"])
def test_every_replaying_method_writes_its_live_record(tmp_path, cache, decoding):
    common = [f"workload.decoding={decoding}", "timeline=true"]
    for overrides in REPLAYING.values():
        live = run(tmp_path / "live", *overrides, *common, "replay=false")
        assert live.replayed_from is None and live.live_reason == "replay=false"
    assert not recordings_dir().exists()  # replay=false neither reads nor writes recordings
    for name, overrides in REPLAYING.items():
        first = run(tmp_path / "first", *overrides, *common)  # records, or replays target's
        replayed = run(tmp_path / "replayed", *overrides, *common)
        assert replayed.replayed_from.startswith("recording "), name
        assert replayed.live_reason is None
        if first.replayed_from is None:  # it made the point's recording: its record says so
            assert first.live_reason.startswith("the first run of its point: recorded ")
        assert replayed.clock == "virtual" and first.output_sha256 == replayed.output_sha256
    # one recording per routing: the target's, topk's K' = 1, prism's sub-experts
    assert len(list(recordings_dir().glob("*.npz"))) == 3
    paired, differences = compare_folders(tmp_path / "live", tmp_path / "replayed")
    assert paired == len(REPLAYING) and differences == []
    for name in ("live", "replayed"):  # the Chrome traces too
        timelines = sorted((tmp_path / name).rglob("timeline.json"))
        assert len(timelines) == len(REPLAYING)
    for a, b in zip(
        sorted((tmp_path / "live").rglob("timeline.json")),
        sorted((tmp_path / "replayed").rglob("timeline.json")),
        strict=True,
    ):
        assert json.loads(a.read_text()) == json.loads(b.read_text())


@pytest.mark.parametrize("family", ["phimoe", "qwen2_moe", "deepseek_v2"])
def test_families_replay_next_layer_prefetch_like_live(tmp_path, cache, family):
    model = [
        f"model.name=tiny_{family}",
        f"model.family={family}",
        "~model.arch",
        *(
            f"+model.arch.{k}={'null' if v is None else v}"
            for k, v in (COMMON | TINY_ARCH[family]).items()
        ),
    ]
    for overrides in (
        ["method=full_resident"],
        ["method=next_layer_prefetch", "method.budget_gb=0.0005"],
    ):
        run(tmp_path / "live", *model, *overrides, "replay=false")
        run(tmp_path / "replayed", *model, *overrides)
        run(tmp_path / "replayed", *model, *overrides)
    paired, differences = compare_folders(tmp_path / "live", tmp_path / "replayed")
    assert paired == 2 and differences == []


def test_record_trace_from_a_replay_equals_the_live_one(tmp_path, cache):
    live = run(
        tmp_path / "live", "method=mixtral_offloading", BUDGET, "record_trace=true", "replay=false"
    )
    run(tmp_path / "first", "method=full_resident")
    replayed = run(tmp_path / "replayed", "method=mixtral_offloading", BUDGET, "record_trace=true")
    assert replayed.replayed_from is not None
    traces = [
        load_trace(next((tmp_path / name).rglob("routing.npz"))) for name in ("live", "replayed")
    ]
    assert traces[0].source == traces[1].source == live.run_key
    assert np.array_equal(traces[0].ids, traces[1].ids)


def test_a_corrupted_recording_changes_the_record(tmp_path, cache):
    """The equality check can fail: one expert id changed in the recording, and the replayed
    record no longer matches the live one."""
    run(tmp_path / "live", "method=mixtral_offloading", BUDGET, "replay=false")
    run(tmp_path / "first", "method=mixtral_offloading", BUDGET)
    path = next(recordings_dir().glob("*.npz"))
    with np.load(path, allow_pickle=False) as d:
        arrays = dict(d)
    ids = arrays["ids"]
    k = ids.shape[-1]
    ids[-1, 0] = (ids[-1, 0] + np.arange(1, k + 1)) % 8  # the last token's first layer: new experts
    np.savez_compressed(path, **arrays)
    replayed = run(tmp_path / "replayed", "method=mixtral_offloading", BUDGET)
    assert replayed.replayed_from is not None
    _, differences = compare_folders(tmp_path / "live", tmp_path / "replayed")
    assert any(".metrics." in d for d in differences)


def test_recording_key_follows_what_decides_routing(tmp_path, cache):
    def key(*overrides):
        from moebench.methods.registry import routing_identity

        cfg = config(tmp_path, *overrides)
        return recording_key(cfg, routing_identity(cfg))

    base = key("method=full_resident")
    # methods, budgets, cache policies and hardware share the target's recording
    assert key("method=mixtral_offloading", BUDGET, "method.options.policy=lfu") == base
    assert key("method=next_layer_prefetch", "hardware=h200") == base
    # what changes the tokens or the routing does not
    assert key("method=full_resident", "seed=1") != base
    assert key("method=full_resident", "workload.decoding=sample") != base
    assert key("method=full_resident", "workload.new_tokens=8") != base
    assert key("method=full_resident", "model.arch.num_experts_per_tok=3") != base
    assert key("method=topk", "method.options.top_k=1") != key(
        "method=topk", "method.options.top_k=2"
    )
    # a quality floor rounds up to the K' it runs: one recording per K'
    assert key("method=topk", "+method.options.slo_experts=1.5") == key(
        "method=topk", "method.options.top_k=2"
    )
    # MoE-SpeQ's transcripts follow the draft and the verify chunking, not budgets or governors
    speq = key("method=speq")
    assert speq != base and speq == key("method=speq", BUDGET, "+method.options.governor=bytes")
    assert speq == key("method=speq", "+method.options.draft=int4_cached")
    assert speq != key("method=speq", "method.options.draft_bits=3")
    assert speq != key("method=speq", "+method.options.verify=sequential")
    # methods that always run live
    from moebench.methods.registry import routing_identity

    for overrides in (
        ["method=speq", "+method.options.draft=resident"],
        ["method=full_resident", "replay=false"],
    ):
        assert routing_identity(config(tmp_path, *overrides)) is None


def test_replay_check_reruns_committed_records_both_ways(tmp_path, cache, capsys):
    from moebench.tools import replay_check

    run(tmp_path / "committed", "method=mixtral_offloading", BUDGET)
    run(tmp_path / "committed", "method=speq", "method.budget_gb=0.01")  # a transcript
    resident = ["method=speq", "method.budget_gb=0.01", "+method.options.draft=resident"]
    live = run(tmp_path / "committed", *resident, "workload.num_prompts=1")  # live: skipped
    assert live.replayed_from is None and "needs the cache" in live.live_reason
    assert replay_check.main(["--results", str(tmp_path / "committed"), "--sample", "0"]) == 0
    out = capsys.readouterr().out
    assert "0 differences from the committed record" in out
    assert "2 records rerun live and replayed, 0 differences" in out


def test_a_run_killed_while_recording_leaves_no_recording(tmp_path, cache, monkeypatch):
    """A killed sweep loses nothing: the recording is written whole after the live run, so a
    crash leaves neither a recording nor a half file, and the rerun records and replays."""
    from moebench import recordings

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(recordings.np, "savez_compressed", killed)
        run(tmp_path / "results", "method=mixtral_offloading", BUDGET)
    assert not list(recordings_dir().glob("*"))
    assert not list((tmp_path / "results").rglob("result.json"))
    first = run(tmp_path / "results", "method=mixtral_offloading", BUDGET)
    assert first.live_reason.startswith("the first run of its point")
    assert run(tmp_path / "results", "method=mixtral_offloading", BUDGET).replayed_from is not None


def test_other_prompt_texts_get_another_recording(tmp_path, cache, monkeypatch):
    """The config names a prompt set, not its content: changed texts must not replay."""
    from moebench.bench import prompt_sets
    from moebench.methods.registry import routing_identity

    cfg = config(tmp_path, "method=full_resident", "workload.prompts=shared:gpqa")
    before = recording_key(cfg, routing_identity(cfg))
    monkeypatch.setitem(prompt_sets.PROMPT_SETS, "gpqa", lambda _root: ["another question?"])
    assert recording_key(cfg, routing_identity(cfg)) != before


def test_recording_keys_stay_put_when_a_config_field_is_added(tmp_path, cache, monkeypatch):
    """A golden key: a field added to the model config at its default (model.train_seed once)
    must not orphan every recording in the cache. A deliberate change of what decides a
    recording updates the constant; the library versions are fixed here, so it holds on
    any torch build."""
    import torch
    import transformers

    from moebench.methods.registry import routing_identity

    monkeypatch.setattr(torch, "__version__", "T")
    monkeypatch.setattr(transformers, "__version__", "X")
    cfg = config(tmp_path, "method=full_resident")
    assert recording_key(cfg, routing_identity(cfg)) == "tiny_mixtral-edc19b28cdfabf0e71fa"
