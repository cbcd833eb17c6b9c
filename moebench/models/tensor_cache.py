"""Tensors derived from a model, cached on disk: MoE-Prism's calibration statistics, partitions
and fine-tuned routers ($MOEBENCH_CACHE/prism/), MoE-SpeQ's quantized drafts
($MOEBENCH_CACHE/drafts/); each a safetensors file named by a hash of everything it depends on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from moebench.models.corpora import cache_dir
from moebench.paths import atomic_file


def tokens_sha256(windows: list[torch.Tensor]) -> str:
    """One hash for a list of token windows (the data a cache entry was computed from)."""
    return hashlib.sha256(b"".join(w.numpy().tobytes() for w in windows)).hexdigest()


def cache_path(stem: str, payload: list, folder: str = "prism") -> Path:
    """`<stem>-<16 hex of sha256(payload)>.safetensors` in the cache's `folder`."""
    key = hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]
    return cache_dir() / folder / f"{stem}-{key}.safetensors"


def save_per_expert(
    path: Path,
    per_expert: dict[int, dict[int, torch.Tensor]],
    extra: dict[str, torch.Tensor] | None = None,
) -> None:
    """{layer: {expert: tensor}} stored as "layer.expert", plus `extra` tensors under their
    names."""
    tensors = {
        f"{layer}.{e}": t.contiguous() for layer, per in per_expert.items() for e, t in per.items()
    }
    with atomic_file(path, "wb") as fh:  # a killed run leaves no half file to load
        fh.write(save(tensors | (extra or {})))


def load_per_expert(
    path: Path,
) -> tuple[dict[int, dict[int, torch.Tensor]], dict[str, torch.Tensor]]:
    """The inverse of `save_per_expert`: the per-expert tensors and every other entry."""
    per_expert: dict[int, dict[int, torch.Tensor]] = {}
    extra = {}
    for name, tensor in load_file(path).items():
        layer, dot, expert = name.partition(".")
        if dot and layer.isdigit() and expert.isdigit():
            per_expert.setdefault(int(layer), {})[int(expert)] = tensor
        else:
            extra[name] = tensor
    return per_expert, extra
