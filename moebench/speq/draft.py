"""The draft: the target itself with only its routed experts quantized to INT4.

Router, attention, norms, embeddings, shared experts and the KV cache are the target's own
tensors; `Draft.active()` swaps each fused experts module's storage to the dequantized INT4
copy for the duration of a draft forward and back afterwards (a pointer swap, no copy).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from moebench.models.loaded import LoadedModel
from moebench.models.quant import quantize_gptq, quantize_rtn
from moebench.models.tensor_cache import cache_path, load_per_expert, save_per_expert, tokens_sha256


@torch.no_grad()
def calibration_inputs(
    loaded: LoadedModel, windows: list[torch.Tensor]
) -> dict[int, dict[int, torch.Tensor]]:
    """Per MoE layer and expert, the hidden states the target's router sent to that expert."""
    store: dict[int, dict[int, list[torch.Tensor]]] = {v.index: {} for v in loaded.layers}
    handles = []
    for view in loaded.layers:

        def grab(_module, args, _output, layer=view.index):
            hidden, ids = args[0], args[1]
            for e in torch.unique(ids).tolist():
                rows = (ids == e).any(dim=-1)
                store[layer].setdefault(e, []).append(hidden[rows].detach())

        handles.append(view.experts.register_forward_hook(grab))
    try:
        for window in windows:
            loaded.model(input_ids=window)
    finally:
        for h in handles:
            h.remove()
    return {
        layer: {e: torch.cat(xs) for e, xs in experts.items()} for layer, experts in store.items()
    }


class Draft:
    """Dequantized INT4 copies of every routed expert, swapped in on demand. Quantizing takes
    seconds, so the copies are cached on disk by the weights, calibration tokens and options
    (models/tensor_cache.py): every run of a sweep after the first loads them."""

    def __init__(
        self,
        loaded: LoadedModel,
        method: str = "gptq",
        group: int = 128,
        calibration: list[torch.Tensor] | None = None,
        bits: int = 4,
    ):
        self.loaded, self.method, self.group, self.bits = loaded, method, group, bits
        path = cache_path(
            f"{loaded.name}-draft",
            [
                loaded.weights_sha256,
                tokens_sha256(calibration) if calibration else None,
                method,
                group,
                bits,
            ],
            folder="drafts",
        )
        if loaded.weights_sha256 is not None and path.exists():
            _, stored = load_per_expert(path)
            self.weights = {
                v.index: (stored[f"gate_up.{v.index}"], stored[f"down.{v.index}"])
                for v in loaded.layers
            }
            return
        self.weights = self._quantize(calibration)
        if loaded.weights_sha256 is not None:
            save_per_expert(
                path,
                {},
                {
                    f"{name}.{layer}": t
                    for layer, w in self.weights.items()
                    for name, t in zip(("gate_up", "down"), w, strict=True)
                },
            )

    def _quantize(self, calibration) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Every routed expert's gate/up and down matrices, quantized and dequantized."""
        loaded, method, group, bits = self.loaded, self.method, self.group, self.bits
        inputs = calibration_inputs(loaded, calibration) if method == "gptq" else {}
        weights: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for view in loaded.layers:
            ex = view.experts
            gate_up, down = ex.gate_up_proj.data.clone(), ex.down_proj.data.clone()
            for e in range(gate_up.shape[0]):
                x = inputs.get(view.index, {}).get(e)
                if method == "gptq" and x is not None and len(x) > 0:
                    gu = quantize_gptq(ex.gate_up_proj.data[e], x, group, bits=bits)
                    gate, up = (x @ ex.gate_up_proj.data[e].T).chunk(2, dim=-1)
                    down_in = ex.act_fn(gate) * up
                    dn = quantize_gptq(ex.down_proj.data[e], down_in, group, bits=bits)
                else:  # rtn, or an expert calibration never reached
                    gu = quantize_rtn(ex.gate_up_proj.data[e], group, bits)
                    dn = quantize_rtn(ex.down_proj.data[e], group, bits)
                gate_up[e], down[e] = gu, dn
            weights[view.index] = (gate_up, down)
        return weights

    @contextmanager
    def active(self):
        """Run the model as the draft: routed experts read the INT4 copies."""
        saved = {}
        device = self.loaded.model.get_input_embeddings().weight.device  # where the run computes
        for view in self.loaded.layers:  # swap the Parameter objects: the target's may be on meta
            ex = view.experts
            saved[view.index] = (ex.gate_up_proj, ex.down_proj)
            if self.weights[view.index][0].device != device:  # the draft lives on the device (once)
                self.weights[view.index] = tuple(w.to(device) for w in self.weights[view.index])
            gate_up, down = self.weights[view.index]
            ex.gate_up_proj = nn.Parameter(gate_up, requires_grad=False)
            ex.down_proj = nn.Parameter(down, requires_grad=False)
        try:
            yield
        finally:
            for view in self.loaded.layers:
                view.experts.gate_up_proj, view.experts.down_proj = saved[view.index]


def _ordered(ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Expert ids of each token ordered by routing weight, highest first."""
    return ids.gather(-1, weights.argsort(dim=-1, descending=True))


@torch.no_grad()
def routing_fidelity(
    loaded: LoadedModel, draft: Draft, windows: list[torch.Tensor]
) -> dict[str, float]:
    """Fig. 6 of the paper on the same input sequences (teacher forcing): per token and MoE
    layer, hard match = same experts in the same order of weight, soft = same set in another
    order, mismatch = at least one expert differs."""

    def capture():
        out, handles = {}, []
        for view in loaded.layers:

            def hook(_m, _a, output, layer=view.index):
                out.setdefault(layer, []).append(_ordered(output[2], output[1].to(torch.float32)))

            handles.append(view.router.register_forward_hook(hook))
        return out, handles

    counts = np.zeros(3)
    for window in windows:
        target, handles = capture()
        loaded.model(input_ids=window)
        for h in handles:
            h.remove()
        drafted, handles = capture()
        with draft.active():
            loaded.model(input_ids=window)
        for h in handles:
            h.remove()
        for layer in target:
            t, d = target[layer][0], drafted[layer][0]
            hard = (t == d).all(dim=-1)
            same_set = (t.sort(dim=-1).values == d.sort(dim=-1).values).all(dim=-1)
            counts += [hard.sum().item(), (same_set & ~hard).sum().item(), (~same_set).sum().item()]
    total = counts.sum()
    return {
        "hard_match_frac": counts[0] / total,
        "soft_match_frac": counts[1] / total,
        "mismatch_frac": counts[2] / total,
        "fidelity_frac": (counts[0] + counts[1]) / total,
        "routing_samples": int(total),
    }
