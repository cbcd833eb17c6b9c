"""Real-checkpoint layouts written locally: encodings keyed by the tokenizer itself, too
little text as one line, and a checkpoint identity in every record."""

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from moebench.models import corpora
from moebench.models.checkpoint import checkpoint_identity
from moebench.paths import SHARED_DATA
from tests.conftest import run_cli

SPECIAL = "<|endoftext|>"


def bpe(texts: list[str], vocab_size: int) -> transformers.PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts` (a different text gives other merges)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[SPECIAL],
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=SPECIAL, pad_token=SPECIAL
    )


def broken_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A tokenizer that encodes every text to nothing (no vocabulary, no unknown token)."""
    tok = Tokenizer(models.BPE(vocab={SPECIAL: 0}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=SPECIAL, pad_token=SPECIAL
    )


def test_two_tokenizers_of_one_vocabulary_size_get_different_cache_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path))
    corpus = corpora.Corpus(
        train="the cat sat on the mat. " * 50, valid="a dog ran in the fog. " * 20, sha256="c" * 64
    )
    text = corpora.load_corpus().train
    first, second = bpe([text[:100_000]], 300), bpe([text[-100_000:]], 300)
    assert len(first) == len(second)
    assert corpora.tokenizer_sha256(first) != corpora.tokenizer_sha256(second)
    train_a, _ = corpora.encoded_splits(corpus, first)
    train_b, _ = corpora.encoded_splits(corpus, second)
    assert len(list((tmp_path / "tokens").glob("*.npz"))) == 2
    assert (
        train_a.tolist()
        == first(corpus.train.splitlines(keepends=True), add_special_tokens=False)["input_ids"][0]
    )
    assert train_a.tolist() != train_b.tolist()


@pytest.fixture
def local_mixtral(tmp_path):
    """A tiny random Mixtral saved as a real checkpoint folder (save_pretrained)."""
    config = transformers.MixtralConfig(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config)
    folder = tmp_path / "mixtral"
    model.save_pretrained(folder)
    return folder


def heldout_run(folder, results, cache):
    return run_cli(
        "+experiment=debug",
        "model=mixtral8x7b",
        f"model.local_path={folder}",
        "model.dtype=float32",
        "method=mixtral_offloading",
        "workload=heldout",
        "workload.num_prompts=1",
        "workload.new_tokens=4",
        f"results_dir={results}",
        env={"MOEBENCH_CACHE": str(cache)},
    )


def test_broken_then_fixed_tokenizer_in_one_cache_gives_a_valid_record(local_mixtral, tmp_path):
    results, cache = tmp_path / "results", tmp_path / "cache"
    broken_tokenizer().save_pretrained(local_mixtral)
    proc = heldout_run(local_mixtral, results, cache)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "workload.prompt_len" in lines[0] and "tokens the held-out split encodes to" in lines[0]
    assert not list(results.rglob("result.json"))

    bpe([corpora.load_corpus().train[:200_000]], 400).save_pretrained(local_mixtral)
    proc = heldout_run(local_mixtral, results, cache)
    assert proc.returncode == 0, proc.stderr
    [path] = results.rglob("result.json")
    record = json.loads(path.read_text())
    assert record["validity"]["valid"]
    identity = record["model"]["checkpoint"]
    assert len(identity["sha256"]) == 64 and "model.safetensors" in identity["files"]
    assert "tokenizer.json" in identity["files"] and "config.json" in identity["files"]


def test_checkpoint_identity_changes_when_one_weight_changes(local_mixtral, tmp_path, monkeypatch):
    monkeypatch.setenv("MOEBENCH_CACHE", str(tmp_path / "cache"))
    before = checkpoint_identity(local_mixtral)
    assert checkpoint_identity(local_mixtral) == before  # read back from the hash cache
    weights = load_file(local_mixtral / "model.safetensors")
    name = next(k for k in sorted(weights) if "experts" in k)
    weights[name].view(-1)[0] += 1.0
    save_file(weights, local_mixtral / "model.safetensors", metadata={"format": "pt"})
    after = checkpoint_identity(local_mixtral)
    assert after["sha256"] != before["sha256"]
    assert after["files"]["config.json"] == before["files"]["config.json"]


def test_a_local_path_without_safetensors_is_one_line_naming_it(tmp_path, results_dir):
    folder = tmp_path / "not_a_checkpoint"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    proc = run_cli(
        "+experiment=debug",
        "model=mixtral8x7b",
        f"model.local_path={folder}",
        f"results_dir={results_dir}",
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert str(folder) in lines[0] and "safetensors" in lines[0]
    assert not list(results_dir.rglob("*.json"))


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="needs ../shared/data")
def test_too_few_texts_in_a_prompt_set_is_one_line(results_dir, ci_cache):
    proc = run_cli(
        "+experiment=debug",
        "model=proxy_ci",
        "workload=speq_humaneval",
        "workload.num_prompts=50",
        f"results_dir={results_dir}",
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "workload.num_prompts" in lines[0] and "texts of shared:humaneval" in lines[0]


LAYOUTS = {
    "mixtral8x7b": transformers.MixtralConfig(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=256,
    ),
    "qwen15moe": transformers.Qwen2MoeConfig(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=256,
    ),
    "dsv2lite": transformers.DeepseekV2Config(
        vocab_size=512,
        hidden_size=32,
        intermediate_size=64,
        moe_intermediate_size=16,
        n_routed_experts=4,
        n_shared_experts=1,
        num_experts_per_tok=2,
        first_k_dense_replace=1,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        kv_lora_rank=8,
        q_lora_rank=None,
        qk_nope_head_dim=8,
        qk_rope_head_dim=4,
        v_head_dim=8,
        head_dim=4,
        topk_method="greedy",
        n_group=1,
        topk_group=1,
        max_position_embeddings=256,
    ),
}


@pytest.mark.parametrize("model_name", sorted(LAYOUTS))
def test_a_saved_checkpoint_runs_offloaded_on_real_copies(model_name, tmp_path):
    """save_pretrained -> model.local_path -> backend=real: the same tokens as backend=virtual."""
    torch.manual_seed(0)
    folder = tmp_path / model_name
    transformers.AutoModelForCausalLM.from_config(LAYOUTS[model_name]).save_pretrained(folder)
    bpe([corpora.load_corpus().train[:50_000]], 300).save_pretrained(folder)
    from moebench.engine.budget import kv_cache_bytes
    from moebench.models.shape import BYTES_PER_PARAM, shape_from_hf_config

    shape = shape_from_hf_config(LAYOUTS[model_name])
    fixed = shape.non_expert_params() * BYTES_PER_PARAM + kv_cache_bytes(shape, 16 + 6)
    budget = (
        fixed + 2.5 * len(shape.moe_layers) * shape.expert_bytes
    ) / 1e9  # 2 of 4 experts a layer
    results, hashes = tmp_path / "results", {}
    for backend in ("virtual", "real"):
        proc = run_cli(
            "+experiment=debug",
            f"model={model_name}",
            f"model.local_path={folder}",
            "model.dtype=float32",
            "method=mixtral_offloading",
            f"method.budget_gb={budget:.9f}",
            "workload.new_tokens=6",
            f"backend={backend}",
            "device=cpu",
            f"results_dir={results}",
            env={"MOEBENCH_CACHE": str(tmp_path / "cache")},
        )
        assert proc.returncode == 0, proc.stderr
        [path] = [
            p
            for p in results.rglob("result.json")
            if json.loads(p.read_text())["clock"] == ("wall" if backend == "real" else "virtual")
        ]
        record = json.loads(path.read_text())
        assert record["validity"]["valid"] and record["model"]["checkpoint"]["sha256"]
        assert (
            record["method_details"]["memory_plan"]["slots_per_layer"] < 4
        )  # experts really leave
        hashes[backend] = record["output_sha256"]
    assert hashes["real"] == hashes["virtual"]


def test_a_checkpoint_replays_its_recording_until_its_weights_change(local_mixtral, tmp_path):
    """Record once, replay many on a real checkpoint: the recording is keyed by the files, so
    changed weights are decoded afresh, never replayed from the old routing."""
    results, cache = tmp_path / "results", tmp_path / "cache"
    bpe([corpora.load_corpus().train[:200_000]], 400).save_pretrained(local_mixtral)

    def record(method: str, *extra: str) -> dict:
        proc = run_cli(
            "+experiment=debug",
            "model=mixtral8x7b",
            f"model.local_path={local_mixtral}",
            "model.dtype=float32",
            f"method={method}",
            "method.budget_gb=null",
            "workload.num_prompts=1",
            "workload.new_tokens=4",
            f"results_dir={results}",
            *extra,
            env={"MOEBENCH_CACHE": str(cache)},
        )
        assert proc.returncode == 0, proc.stderr
        path = next(p for p in results.rglob("result.json") if f"/{method}-" in str(p))
        return json.loads(path.read_text())

    first = record("full_resident")
    assert first.get("replayed_from") is None
    again = record("full_resident", "force=true")
    assert again.get("replayed_from", "").startswith("recording ")
    assert again["model"]["checkpoint"]["sha256"] == first["model"]["checkpoint"]["sha256"]
    weights = load_file(local_mixtral / "model.safetensors")
    name = next(k for k in sorted(weights) if "experts" in k)
    weights[name].view(-1)[0] += 1.0
    save_file(weights, local_mixtral / "model.safetensors", metadata={"format": "pt"})
    changed = record("full_resident", "force=true")
    assert changed.get("replayed_from") is None  # a new recording, made live
    assert changed["model"]["checkpoint"]["sha256"] != first["model"]["checkpoint"]["sha256"]
