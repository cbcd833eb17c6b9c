"""Deterministic offline training of proxies, cached by content hash as safetensors.

A proxy's cache key hashes its HF config, its recipe, the corpus and this module's
TRAIN_VERSION; each cached file's sha256 is kept in a manifest and checked on load, so a
corrupt or partial entry is retrained, never loaded. Nothing is unpickled.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers.initialization import no_init_weights

from moebench.config import ModelConfig
from moebench.determinism import (
    cpu_identity,
    fixed_threads,
    numerics_state,
    pinned_environment,
    process_is_pinned,
)
from moebench.errors import UserError
from moebench.models.corpora import (
    cache_dir,
    encoded_splits,
    load_corpus,
    train_tokenizer,
    unigram_perplexity,
)
from moebench.models.families import moe_layers
from moebench.models.loaded import LoadedModel, hf_config_for, weights_sha256
from moebench.models.proxies import PROXIES, ProxySpec, proxy_arch

# 2: trained with pinned kernels (determinism.py), the same bits on any x86-64 CPU.
TRAIN_VERSION = 2
FILES = ("model.safetensors", "config.json", "training.json")


def proxy_spec(name: str, train_seed: int = 0) -> ProxySpec:
    """The proxy's spec, trained with seed `train_seed` (0: the committed proxy's recipe)."""
    if name not in PROXIES:
        raise UserError(f"unknown proxy {name!r}; available: {', '.join(PROXIES)}")
    spec = PROXIES[name]
    if train_seed:
        spec = replace(spec, recipe=replace(spec.recipe, seed=train_seed))
    return spec


def cache_key(spec: ProxySpec, corpus_sha: str) -> str:
    payload = {
        "arch": proxy_arch(spec),
        "family": spec.family,
        "recipe": asdict(spec.recipe),
        "corpus": corpus_sha,
        "train_version": TRAIN_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def entry_dir(spec: ProxySpec, corpus_sha: str) -> Path:
    return cache_dir() / "proxies" / f"{spec.name}-{cache_key(spec, corpus_sha)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def entry_is_intact(folder: Path) -> bool:
    """True when the manifest exists and every file matches its recorded hash. Hashing the
    files takes a noticeable fraction of a second per proxy and a sweep asks per run (for
    the recording key, then to load), so a verdict is kept per process while no file's size
    or modification time has changed."""
    paths = [folder / "manifest.json", *(folder / f for f in FILES)]
    if not all(p.exists() for p in paths):
        return False
    stamp = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    return _files_match_manifest(folder, stamp)


@functools.cache
def _files_match_manifest(folder: Path, _stamp: tuple) -> bool:
    """The hash check itself, once per (folder, file sizes and mtimes)."""
    try:
        expected = json.loads((folder / "manifest.json").read_text())
    except json.JSONDecodeError:
        return False
    return all(_sha256(folder / f) == expected.get(f) for f in FILES)


def load_balancing_loss(
    logits: list[torch.Tensor], indices: list[torch.Tensor], num_experts: int
) -> torch.Tensor:
    """Switch-style balance loss E * sum_e f_e * P_e, averaged over layers: f_e is the share
    of routing slots sent to expert e, P_e its mean router probability (the form Mixtral,
    Qwen-MoE, OLMoE and DeepSeek's expert-level loss share)."""
    total = logits[0].new_zeros(())
    for lg, idx in zip(logits, indices, strict=True):
        probs = torch.softmax(lg.float(), dim=-1)  # [T, E]
        share = torch.bincount(idx.flatten(), minlength=num_experts).float() / idx.numel()
        total = total + num_experts * (share * probs.mean(0)).sum()
    return total / len(logits)


class RouterTap:
    """Keeps each router's logits (with grad) and choices during a training forward."""

    def __init__(self, model, family: str):
        self.logits: list[torch.Tensor] = []
        self.indices: list[torch.Tensor] = []
        self.handles = [
            layer.router.register_forward_hook(self._hook) for layer in moe_layers(model, family)
        ]

    def _hook(self, _module, _inputs, output):
        self.logits.append(output[0].reshape(-1, output[0].shape[-1]))
        self.indices.append(output[2].reshape(-1, output[2].shape[-1]))
        return None

    def drain(self):
        out = (self.logits, self.indices)
        self.logits, self.indices = [], []
        return out


def _lr_lambda(recipe):
    def factor(step: int) -> float:
        if step < recipe.warmup_steps:
            return (step + 1) / recipe.warmup_steps
        progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


@torch.no_grad()
def evaluate(model, ids: np.ndarray, seq_len: int, max_windows: int = 64) -> float:
    """Mean next-token loss (nats) over non-overlapping validation windows."""
    model.eval()
    n = min(max_windows, (len(ids) - 1) // seq_len)
    window = torch.from_numpy(ids[: n * seq_len + 1].astype(np.int64))
    losses = []
    for i in range(0, n, 8):
        rows = range(i, min(n, i + 8))
        x = torch.stack([window[r * seq_len : (r + 1) * seq_len] for r in rows])
        y = torch.stack([window[r * seq_len + 1 : (r + 1) * seq_len + 1] for r in rows])
        logits = model(input_ids=x).logits
        losses.append(
            torch.nn.functional.cross_entropy(
                logits.flatten(0, 1).float(), y.flatten(), reduction="sum"
            )
        )
    return float(torch.stack(losses).sum() / (n * seq_len))


def train_proxy(spec: ProxySpec, folder: Path) -> None:
    """Train `spec` from scratch and write its cache entry atomically into `folder`, at the
    recipe's fixed thread count and with pinned kernels, so the weights' bits do not depend on
    the machine. A process whose kernels are not pinned trains in a pinned subprocess."""
    if not process_is_pinned():
        _train_in_pinned_subprocess(spec, folder)
        return
    with fixed_threads(spec.recipe.torch_threads):
        _train_proxy(spec, folder)


def _train_in_pinned_subprocess(spec: ProxySpec, folder: Path) -> None:
    print(f"moebench: training {spec.name} in a subprocess with pinned kernels", file=sys.stderr)
    done = subprocess.run(
        [sys.executable, "-m", "moebench.models", "train", spec.name],
        env=pinned_environment(),
        stdout=subprocess.DEVNULL,
    )
    if done.returncode != 0 or not entry_is_intact(folder):
        raise RuntimeError(
            f"training {spec.name} in a pinned subprocess failed (exit {done.returncode})"
        )


def _train_proxy(spec: ProxySpec, folder: Path) -> None:
    recipe = spec.recipe
    corpus = load_corpus()
    tokenizer = train_tokenizer(corpus, recipe.vocab_size)
    train_ids, valid_ids = encoded_splits(corpus, tokenizer)
    hf_config = hf_config_for(spec.family, proxy_arch(spec))
    torch.manual_seed(recipe.seed)
    model = transformers.AutoModelForCausalLM.from_config(hf_config, dtype=torch.float32)
    coef = recipe.aux_loss_coef
    tap = RouterTap(model, spec.family)
    num_experts = moe_layers(model, spec.family)[0].num_experts
    opt = torch.optim.AdamW(
        model.parameters(), lr=recipe.lr, betas=(0.9, 0.95), weight_decay=recipe.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(recipe))
    gen = torch.Generator().manual_seed(recipe.seed)
    data = torch.from_numpy(train_ids.astype(np.int64))
    start = time.perf_counter()
    model.train()
    bar = tqdm(
        range(recipe.steps),
        desc=f"train {spec.name}",
        unit="step",
        file=sys.stderr,
        mininterval=2.0,
    )
    for step in bar:
        offsets = torch.randint(
            0, len(data) - recipe.seq_len - 1, (recipe.batch_size,), generator=gen
        )
        x = torch.stack([data[o : o + recipe.seq_len] for o in offsets])
        y = torch.stack([data[o + 1 : o + recipe.seq_len + 1] for o in offsets])
        logits = model(input_ids=x).logits
        lm_loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        aux = load_balancing_loss(*tap.drain(), num_experts)
        loss = lm_loss + coef * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 25 == 0:
            bar.set_postfix(loss=f"{lm_loss.item():.3f}", aux=f"{aux.item():.3f}", refresh=False)
    seconds = time.perf_counter() - start
    for h in tap.handles:
        h.remove()
    valid_loss = evaluate(model, valid_ids, recipe.seq_len)
    stats = {
        "proxy": spec.name,
        "base": spec.base,
        "proxy_of": spec.proxy_of,
        "family": spec.family,
        "recipe": asdict(recipe),
        "aux_loss_coef": coef,
        "train_seconds": seconds,
        "train_tokens": recipe.steps * recipe.batch_size * recipe.seq_len,
        "tokens_per_sec": recipe.steps * recipe.batch_size * recipe.seq_len / seconds,
        "corpus_sha256": corpus.sha256,
        "train_split_tokens": int(len(train_ids)),
        "valid_split_tokens": int(len(valid_ids)),
        "valid_loss_nats": valid_loss,
        "valid_perplexity": math.exp(valid_loss),
        "unigram_perplexity": unigram_perplexity(train_ids, valid_ids, recipe.vocab_size),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "train_version": TRAIN_VERSION,
        "cpu": cpu_identity(),
        "numerics": numerics_state(),
    }
    _write_entry(folder, model, hf_config, stats)


def _write_entry(folder: Path, model, hf_config, stats: dict) -> None:
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    (tmp / "config.json").write_text(hf_config.to_json_string())
    (tmp / "training.json").write_text(json.dumps(stats, indent=2, sort_keys=True))
    (tmp / "manifest.json").write_text(json.dumps({f: _sha256(tmp / f) for f in FILES}, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def ensure_proxy(name: str, train_seed: int = 0) -> Path:
    """The proxy's intact cache folder, training it first when missing or corrupt."""
    spec = proxy_spec(name, train_seed)
    folder = entry_dir(spec, load_corpus().sha256)
    if folder.exists() and not entry_is_intact(folder):
        print(f"moebench: cache entry {folder} is corrupt or partial; retraining", file=sys.stderr)
    if not entry_is_intact(folder):
        train_proxy(spec, folder)
    return folder


def load_proxy(cfg: ModelConfig) -> LoadedModel:
    """Load (training on first use) the proxy named by `cfg.name`."""
    spec = proxy_spec(cfg.name, cfg.train_seed)
    if (cfg.family, cfg.proxy_of) != (spec.family, spec.proxy_of):
        raise UserError(
            f"model {cfg.name}: family/proxy_of must be {spec.family}/{spec.proxy_of}, "
            f"not {cfg.family}/{cfg.proxy_of}"
        )
    folder = ensure_proxy(cfg.name, cfg.train_seed)
    hf_config = transformers.AutoConfig.from_pretrained(str(folder))
    with no_init_weights():  # every tensor is loaded next (strictly): skip the random init
        model = transformers.AutoModelForCausalLM.from_config(hf_config, dtype=torch.float32)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    model.eval()
    corpus = load_corpus()
    tokenizer = train_tokenizer(corpus, spec.recipe.vocab_size)
    return LoadedModel(
        cfg.name,
        spec.family,
        model,
        hf_config,
        moe_layers(model, spec.family),
        weights_sha256(model),
        tokenizer,
    )
