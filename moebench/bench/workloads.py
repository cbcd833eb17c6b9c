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


def heldout_prompts(cfg: WorkloadConfig, tokenizer, seed: int) -> list[torch.Tensor]:
    """Windows of the offline corpus's held-out split (text no proxy was trained on), at
    seeded offsets: real English that every install has."""
    from moebench.models.corpora import encode, load_corpus

    ids = torch.from_numpy(encode(tokenizer, load_corpus().valid).astype("int64"))
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - cfg.prompt_len, (cfg.num_prompts,), generator=gen)
    return [ids[s:s + cfg.prompt_len].unsqueeze(0) for s in starts.tolist()]


PROMPT_SETS = ("synthetic", "heldout", "trace")


def make_prompts(cfg: WorkloadConfig, loaded: LoadedModel, seed: int) -> list[torch.Tensor]:
    """The workload's prompts as [1, P] id tensors."""
    if cfg.prompts == "synthetic":
        return synthetic_prompts(cfg, loaded.vocab_size, seed)
    if cfg.prompts == "heldout":
        if loaded.tokenizer is None:
            raise ConfigError("workload.prompts", cfg.prompts,
                              f"synthetic for model {loaded.name}, which has no tokenizer")
        return heldout_prompts(cfg, loaded.tokenizer, seed)
    raise ConfigError("workload.prompts", cfg.prompts, "one of " + ", ".join(PROMPT_SETS))
