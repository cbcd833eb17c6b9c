"""Build the target model a run asks for: a seeded random tiny MoE or a real HF checkpoint.

Every model comes back as a `LoadedModel` with its family view and a weights hash, so
records can say exactly which weights produced a number.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers

from moebench.config import ModelConfig
from moebench.errors import UserError
from moebench.models.checkpoint import checkpoint_identity, hub_snapshot
from moebench.models.families import moe_layers
from moebench.models.loaded import DTYPES, LoadedModel, hf_config_for, weights_sha256


def build_random(cfg: ModelConfig, init_seed: int = 0) -> LoadedModel:
    """A tiny MoE with seeded random weights, built from a transformers config."""
    hf_config = hf_config_for(cfg.family, cfg.arch)
    torch.manual_seed(init_seed)
    model = transformers.AutoModelForCausalLM.from_config(hf_config, dtype=DTYPES[cfg.dtype])
    model.eval()
    return LoadedModel(
        cfg.name, cfg.family, model, hf_config, moe_layers(model, cfg.family), weights_sha256(model)
    )


def build_hf(cfg: ModelConfig) -> LoadedModel:
    """A real checkpoint, from `model.local_path` or the hub (a user option, never in tests)."""
    where = cfg.local_path or cfg.hf_id
    if cfg.local_path and not any(Path(cfg.local_path).glob("*.safetensors")):
        raise UserError(
            f"model.local_path={cfg.local_path}: no *.safetensors weights there (save the "
            "checkpoint with save_pretrained, or convert its .bin files to safetensors)"
        )
    transformers.utils.logging.disable_progress_bar()  # stderr stays for one-line errors
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(where, dtype=DTYPES[cfg.dtype])
        tokenizer = transformers.AutoTokenizer.from_pretrained(where)
    except OSError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"cannot load model {cfg.hf_id!r} ({first}); without network, download it elsewhere "
            "and set model.local_path=/path/to/checkpoint"
        ) from None
    model.eval()
    folder = Path(cfg.local_path) if cfg.local_path else hub_snapshot(cfg.hf_id)
    revision = getattr(model.config, "_commit_hash", None) if not cfg.local_path else None
    identity = (
        checkpoint_identity(folder, revision)
        if folder is not None
        else {"sha256": None, "revision": revision}
    )
    return LoadedModel(
        cfg.name,
        cfg.family,
        model,
        model.config,
        moe_layers(model, cfg.family),
        None,
        tokenizer,
        identity,
    )


def build_model(cfg: ModelConfig) -> LoadedModel:
    """Dispatch on `model.source`."""
    if cfg.source == "random":
        return build_random(cfg)
    if cfg.source == "hf":
        return build_hf(cfg)
    from moebench.models.train import load_proxy  # the training stack only when needed

    return load_proxy(cfg)


def weights_fingerprint(cfg: ModelConfig) -> dict | None:
    """What decides the weights `build_model(cfg)` would load, known without loading them:
    for a random model its config (the seed is fixed), for a proxy its cache entry's file
    hashes (training it first if missing, as a run would), for a checkpoint its files' names,
    sizes and modification times. None when a checkpoint's files cannot be found locally
    (then nothing is recorded for it)."""
    if cfg.source == "random":
        return {"random": True}
    if cfg.source == "proxy":
        from moebench.models.train import ensure_proxy

        return {
            "proxy_manifest": json.loads(
                (ensure_proxy(cfg.name, cfg.train_seed) / "manifest.json").read_text()
            )
        }
    folder = Path(cfg.local_path) if cfg.local_path else hub_snapshot(cfg.hf_id)
    if folder is None or not folder.is_dir():
        return None
    return {
        "files": {
            p.name: [p.stat().st_size, p.stat().st_mtime_ns]
            for p in sorted(folder.iterdir())
            if p.is_file()
        }
    }


def hf_config_without_weights(cfg: ModelConfig):
    """The transformers config `build_model(cfg)` would load, without loading weights (a
    replay charges the model's own sizes from it)."""
    if cfg.source == "random":
        return hf_config_for(cfg.family, cfg.arch)
    if cfg.source == "proxy":
        from moebench.models.train import ensure_proxy

        return transformers.AutoConfig.from_pretrained(str(ensure_proxy(cfg.name, cfg.train_seed)))
    return transformers.AutoConfig.from_pretrained(
        cfg.local_path or cfg.hf_id, local_files_only=True
    )
