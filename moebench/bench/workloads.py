"""Prompt sets for a workload: seeded synthetic token ids, or real text through a tokenizer."""

from __future__ import annotations

import hashlib

import torch

from moebench.config import WorkloadConfig
from moebench.errors import ConfigError
from moebench.models.loaded import LoadedModel


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
    from moebench.models.corpora import encoded_splits, load_corpus

    _, valid = encoded_splits(load_corpus(), tokenizer)
    if len(valid) <= cfg.prompt_len:
        raise ConfigError(
            "workload.prompt_len",
            cfg.prompt_len,
            f"fewer than the {len(valid)} tokens the held-out split encodes to with this "
            "model's tokenizer (workload.prompts=heldout)",
        )
    ids = torch.from_numpy(valid.astype("int64"))
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - cfg.prompt_len, (cfg.num_prompts,), generator=gen)
    return [ids[s : s + cfg.prompt_len].unsqueeze(0) for s in starts.tolist()]


def shared_prompts(cfg: WorkloadConfig, tokenizer, name: str) -> list[torch.Tensor]:
    """The first `num_prompts` texts of a ../shared/data prompt set, each cut (or skipped
    when shorter) to `prompt_len` tokens."""
    from moebench.bench.prompt_sets import prompt_texts

    out, texts = [], prompt_texts(name)
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= cfg.prompt_len:
            out.append(torch.tensor([ids[: cfg.prompt_len]]))
        if len(out) == cfg.num_prompts:
            return out
    raise ConfigError(
        "workload.num_prompts",
        cfg.num_prompts,
        f"at most {len(out)}: only {len(out)} of the {len(texts)} texts of shared:{name} reach "
        f"workload.prompt_len={cfg.prompt_len} tokens",
    )


PROMPT_SETS = (
    "synthetic",
    "heldout",
    "trace",
    "shared:wikitext",
    "shared:humaneval",
    "shared:gsm8k",
    "shared:c4",
    "shared:gpqa",
)


def make_prompts(cfg: WorkloadConfig, loaded: LoadedModel, seed: int) -> list[torch.Tensor]:
    """The workload's prompts as [1, P] id tensors."""
    if cfg.prompts == "synthetic":
        return synthetic_prompts(cfg, loaded.vocab_size, seed)
    if cfg.prompts == "heldout":
        if loaded.tokenizer is None:
            raise ConfigError(
                "workload.prompts",
                cfg.prompts,
                f"synthetic for model {loaded.name}, which has no tokenizer",
            )
        return heldout_prompts(cfg, loaded.tokenizer, seed)
    if cfg.prompts.startswith("shared:"):
        if loaded.tokenizer is None:
            raise ConfigError("workload.prompts", cfg.prompts, f"synthetic for model {loaded.name}")
        return shared_prompts(cfg, loaded.tokenizer, cfg.prompts.removeprefix("shared:"))
    raise ConfigError("workload.prompts", cfg.prompts, "one of " + ", ".join(PROMPT_SETS))


def prompt_source_identity(cfg: WorkloadConfig) -> dict[str, str]:
    """What the workload's prompt texts are read from, as a hash (the config names a source,
    not its content): a routing recording made from other texts must not replay."""
    from moebench.bench.prompt_sets import prompt_texts
    from moebench.models.corpora import load_corpus

    if cfg.prompts == "heldout":
        return {"heldout_corpus": load_corpus().sha256}
    if cfg.prompts.startswith("shared:"):
        texts = prompt_texts(cfg.prompts.removeprefix("shared:"))
        return {"shared_texts": hashlib.sha256("\0".join(texts).encode()).hexdigest()}
    return {}
