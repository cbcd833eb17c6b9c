"""The shared decode loop is exactly greedy `generate`, and routing is captured per step."""

import torch

from moebench.bench.decode import decode
from moebench.config import ModelConfig
from moebench.models.build import build_random

TINY = dict(
    vocab_size=128,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    num_local_experts=4,
    num_experts_per_tok=2,
    max_position_embeddings=128,
)


def test_decode_matches_hf_generate():
    loaded = build_random(ModelConfig(name="t", family="mixtral", arch=TINY))
    prompt = torch.randint(0, 128, (1, 9), generator=torch.Generator().manual_seed(1))
    steps = []
    ours = decode(loaded, prompt, 12, on_step=steps.append)
    ref = loaded.model.generate(prompt, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    assert ours == ref[0, 9:].tolist()
    assert [s.tokens_in for s in steps] == [9] + [1] * 11
    assert steps[0].routing[0].shape == (9, 2) and steps[1].routing[1].shape == (1, 2)
