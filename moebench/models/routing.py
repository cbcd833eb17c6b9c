"""Each family's routing, written out from its definition, so it can be checked and reused
(SpeQ's draft routers, Prism's re-gating) without calling into transformers.

`route(...)` maps router logits [T, E] to (weights [T, k], expert ids [T, k]) exactly as the
family's HF router does in inference mode; tests assert equality on every family.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from moebench.models.families import FAMILIES, LayerHooks, MoeLayer


def router_logits(layer: MoeLayer, hidden: torch.Tensor, family: str) -> torch.Tensor:
    """[T, D] hidden states -> [T, E] router logits (DeepSeek computes them in float32)."""
    weight = layer.router.weight
    if FAMILIES[family].router_fp32:
        return F.linear(hidden.float(), weight.float())
    return F.linear(hidden, weight)


def top_k(values: torch.Tensor, k: int, stable: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.topk, or with `stable` equal values kept in index order (torch.topk breaks ties
    arbitrarily; MoE-Prism's repeated logits tie by construction)."""
    if not stable:
        return torch.topk(values, k, dim=-1)
    ids = values.sort(dim=-1, descending=True, stable=True).indices[..., :k]
    return values.gather(-1, ids), ids


def softmax_topk(
    logits: torch.Tensor, k: int, renormalize: bool, stable: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE: top-k of the softmax, optionally renormalised."""
    probs = torch.softmax(logits, dim=-1, dtype=torch.float)
    weights, ids = top_k(probs, k, stable)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids


def sparsemixer(
    logits: torch.Tensor, k: int, jitter_eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Phimoe (Phi-3.5-MoE) inference routing: k rounds, each picking the best remaining
    expert; its weight is a softmax over only the experts whose logit is within a relative
    margin 2*eps of that best one."""
    scores = logits
    remaining = logits
    weights, ids = [], []
    for _ in range(k):
        best, best_id = remaining.max(dim=-1, keepdim=True)
        margin = scores.abs().clamp(min=best)
        outside = ((best - scores) / margin) > (2 * jitter_eps)
        gates = torch.softmax(remaining.masked_fill(outside, float("-inf")), dim=-1)
        weights.append(gates.gather(-1, best_id))
        ids.append(best_id)
        remaining = remaining.scatter(-1, best_id, float("-inf"))
    return torch.cat(weights, dim=-1), torch.cat(ids, dim=-1)


def deepseek_topk(
    logits: torch.Tensor,
    k: int,
    method: str,
    n_group: int | None,
    topk_group: int | None,
    scale: float,
    stable: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepSeek-V2: softmax scores, greedy or group-limited top-k, times the scaling factor."""
    scores = logits.softmax(dim=-1, dtype=torch.float32)
    if method == "group_limited_greedy":
        tokens, experts = scores.shape
        best_per_group = scores.view(tokens, n_group, experts // n_group).max(dim=-1).values
        keep = torch.topk(best_per_group, k=topk_group, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(best_per_group).scatter_(1, keep, 1).bool()
        expert_mask = (
            group_mask.unsqueeze(-1).expand(-1, -1, experts // n_group).reshape(tokens, experts)
        )
        scores = scores.masked_fill(~expert_mask, 0.0)
    weights, ids = (
        top_k(scores, k, stable) if stable else torch.topk(scores, k=k, dim=-1, sorted=False)
    )
    return weights * scale, ids


def route(family: str, config, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and expert ids for `logits`, as the family's HF router computes them."""
    k = config.num_experts_per_tok
    if family == "mixtral":
        return softmax_topk(logits, k, renormalize=True)
    if family in ("qwen2_moe", "qwen3_moe", "olmoe"):
        weights, ids = softmax_topk(logits, k, renormalize=config.norm_topk_prob)
        return weights.to(logits.dtype), ids
    if family == "phimoe":
        return sparsemixer(logits, k, config.router_jitter_noise)
    if family == "deepseek_v2":
        return deepseek_topk(
            logits,
            k,
            config.topk_method,
            config.n_group,
            config.topk_group,
            config.routed_scaling_factor,
        )
    raise ValueError(f"unknown family {family!r}")


def next_layer_ids(loaded, layer: int, hidden: torch.Tensor) -> torch.Tensor | None:
    """The experts the MoE layer after decoder layer `layer` would pick for `hidden` (this
    layer's MoE input, [T, D]): next_layer_prefetch's guess. None after the last MoE layer."""
    views = loaded.layers
    pos = next(i for i, v in enumerate(views) if v.index == layer)
    if pos + 1 >= len(views):
        return None
    nxt, family = views[pos + 1], loaded.family
    _, ids = route(family, loaded.hf_config, router_logits(nxt, hidden.detach(), family))
    return ids


class NextLayerGuessRecorder(LayerHooks):
    """Records, at every MoE layer of every forward, the next layer's guess from this layer's
    MoE input (`next_layer_ids`), so a routing recording can replay next_layer_prefetch
    without the model. A forward pre-hook on the experts: it sees exactly the hidden states
    the engine's predictor would. `take()` gives {layer: [T, k] ids}; the last MoE layer, which
    has no next layer, gets -1 (no guess)."""

    def __init__(self, loaded):
        super().__init__(loaded.layers)
        self.loaded = loaded

    def _attach(self, layer: MoeLayer):
        def record(_module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            hidden = hidden.reshape(-1, hidden.shape[-1])
            ids = next_layer_ids(self.loaded, layer.index, hidden)
            if ids is None:
                ids = torch.full((len(hidden), self.loaded.hf_config.num_experts_per_tok), -1)
            self._current[layer.index] = ids.reshape(-1, ids.shape[-1])

        return layer.experts.register_forward_pre_hook(record, with_kwargs=True)
