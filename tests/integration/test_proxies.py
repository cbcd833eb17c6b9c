"""Proxy training, caching and loading, on the small CI proxy (trains in ~10 s)."""

import json

from moebench.models import train as training
from moebench.models.corpora import load_corpus
from tests.conftest import run_cli


def test_ci_proxy_learns_more_than_token_frequencies(ci_cache):
    _, folder = ci_cache
    stats = json.loads((folder / "training.json").read_text())
    assert stats["valid_perplexity"] <= 0.5 * stats["unigram_perplexity"]
    assert stats["train_tokens"] == 400 * 8 * 64


def test_corrupt_entry_is_detected_and_retrained_to_the_same_weights(ci_cache, capsys):
    from moebench.config import ModelConfig

    _, folder = ci_cache
    cfg = ModelConfig(name="proxy_ci", family="mixtral", source="proxy")
    before = training.load_proxy(cfg).weights_sha256
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert not training.entry_is_intact(folder)
    after = training.load_proxy(cfg)
    assert "corrupt or partial; retraining" in capsys.readouterr().err
    assert training.entry_is_intact(folder)
    assert after.weights_sha256 == before  # seeded training is deterministic


def test_partial_entry_without_manifest_is_not_loaded(ci_cache):
    _, folder = ci_cache
    (folder / "manifest.json").unlink()
    assert not training.entry_is_intact(folder)
    training.ensure_proxy("proxy_ci")
    assert training.entry_is_intact(folder)


def test_cache_key_depends_on_recipe_and_corpus():
    spec = training.PROXIES["proxy_ci"]
    sha = load_corpus().sha256
    assert training.cache_key(spec, sha) != training.cache_key(spec, "0" * 64)


def test_debug_experiment_runs_on_the_cached_proxy_with_real_text(ci_cache, tmp_path, monkeypatch):
    cache, _ = ci_cache
    monkeypatch.setenv("MOEBENCH_CACHE", str(cache))  # for the subprocess; restored after
    proc = run_cli(
        "+experiment=debug",
        "model=proxy_ci",
        "workload.prompts=heldout",
        f"results_dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr
    [path] = tmp_path.rglob("result.json")
    record = json.loads(path.read_text())
    assert record["model"]["source"] == "proxy" and record["validity"]["valid"]


def test_unknown_proxy_lists_the_available_ones():
    proc = run_cli("train", "proxy_nope", module="moebench.models")
    assert proc.returncode == 2
    assert "proxy_phi35moe" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
