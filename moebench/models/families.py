"""Per-family view of an HF MoE decoder: where each layer's router, experts and shared
experts live, and a recorder that captures the routing the model really computed.

transformers 5.x stores routed experts fused (`experts.gate_up_proj` [E, 2F, D],
`experts.down_proj` [E, D, F]) and every family's router returns
`(logits, weights, indices)`; only attribute names and a few config keys differ, so one
small table per family is enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from moebench.models.family import FAMILIES, Family  # noqa: F401 - re-exported


@dataclass
class MoeLayer:
    """One sparse block of the model, found by walking its decoder layers."""

    index: int  # decoder layer index
    block: nn.Module
    router: nn.Module
    experts: nn.Module
    shared: nn.Module | None

    @property
    def num_experts(self) -> int:
        return self.experts.gate_up_proj.shape[0]

    def expert_bytes(self) -> int:
        """Bytes of one routed expert (gate, up and down) at the stored dtype."""
        gu, down = self.experts.gate_up_proj, self.experts.down_proj
        return (gu[0].numel() + down[0].numel()) * gu.element_size()


def moe_layers(model: nn.Module, family: str) -> list[MoeLayer]:
    """The model's sparse MoE blocks in layer order (dense layers are skipped)."""
    fam = FAMILIES[family]
    layers = []
    for i, layer in enumerate(model.model.layers):
        block = layer.mlp
        if not hasattr(block, "experts"):
            continue  # a dense layer (DeepSeek's first layers, Qwen's mlp_only_layers)
        shared = getattr(block, fam.shared_attr) if fam.shared_attr else None
        layers.append(MoeLayer(i, block, getattr(block, fam.router_attr), block.experts, shared))
    return layers


class LayerHooks:
    """Per-forward values collected by hooks on each MoE layer, without changing outputs.

    Use as a context manager; after each forward, `take()` returns {layer: value}.
    Subclasses say which module to hook and what to keep (`_attach`)."""

    def __init__(self, layers: list[MoeLayer]):
        self.layers = layers
        self._handles: list = []
        self._current: dict[int, torch.Tensor] = {}

    def _attach(self, layer: MoeLayer):
        """Register the hook for `layer`; return its handle."""
        raise NotImplementedError

    def __enter__(self):
        for layer in self.layers:
            self._handles.append(self._attach(layer))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def take(self) -> dict[int, torch.Tensor]:
        """Values of the last forward call: decoder-layer index -> value."""
        out, self._current = self._current, {}
        return out


class RoutingRecorder(LayerHooks):
    """Collects the expert ids every router picks, per forward call: {layer: [T, k] ids}."""

    def _attach(self, layer: MoeLayer):
        def record(_module, _inputs, output):
            self._current[layer.index] = output[2].detach().reshape(-1, output[2].shape[-1])
            return None  # a hook that returns a value would replace the router's output

        return layer.router.register_forward_hook(record)
