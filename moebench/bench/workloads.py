"""Prompt sets for a workload: seeded synthetic token ids, or real text through a tokenizer."""

from __future__ import annotations

import torch

from moebench.config import WorkloadConfig
from moebench.errors import ConfigError
from moebench.models.build import LoadedModel


def synthetic_prompts(cfg: WorkloadConfig, vocab_size: int, seed: int) -> list[torch.Tensor]:
    """`num_prompts` prompts of `prompt_len` uniform random ids from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, vocab_size, (1, cfg.prompt_len), generator=gen)
        for _ in range(cfg.num_prompts)
    ]


def make_prompts(cfg: WorkloadConfig, loaded: LoadedModel, seed: int) -> list[torch.Tensor]:
    """The workload's prompts as [1, P] id tensors."""
    if cfg.prompts == "synthetic":
        return synthetic_prompts(cfg, loaded.vocab_size, seed)
    raise ConfigError("workload.prompts", cfg.prompts, "one of synthetic")
