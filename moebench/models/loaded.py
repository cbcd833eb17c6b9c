"""The loaded-model type and what identifies it: a leaf that model building, proxy training,
the catalog and every user of a model import, so models/ has no import circle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import transformers
from torch import nn

from moebench.errors import UserError
from moebench.models.families import FAMILIES, MoeLayer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    """A causal-LM MoE ready to run, plus what records need to know about it."""

    name: str
    family: str
    model: nn.Module
    hf_config: transformers.PretrainedConfig
    layers: list[MoeLayer]
    weights_sha256: str | None
    tokenizer: object | None = None
    checkpoint: dict | None = None  # a real checkpoint's identity (models/checkpoint.py)

    @property
    def vocab_size(self) -> int:
        return self.hf_config.vocab_size


def hf_config_for(family: str, arch: dict) -> transformers.PretrainedConfig:
    """An HF config of the family's class with `arch` overriding its defaults."""
    config_cls = getattr(transformers, FAMILIES[family].config_class)
    try:
        return config_cls(**arch)
    except (TypeError, ValueError) as err:
        raise UserError(f"model.arch is not a valid {config_cls.__name__}: {err}") from None


def weights_sha256(model: nn.Module) -> str:
    """Hash of every parameter and buffer, in name order (identifies trained weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
