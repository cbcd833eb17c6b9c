"""MoE-Prism's gates for a carved model: the linear gate (LG) and the Complex Gate (CG).

LG (paper section 4.3): each parent's router row repeated N times; softmax over the N E logits,
top-K, the family's normalisation. Sub-experts of one parent tie, and torch.topk breaks ties
arbitrarily (a different sub-expert per token); `LinearGate` breaks them by index order with a
stable sort, as the paper's analysis assumes, so a partly used parent always runs its first
sub-experts. At K = N k' this is exactly the original routing.

CG (paper section 4.3.1), training-free:

Routing is two-level. The original router picks its top-k' experts with their original
weights; for the expert ranked i, each of its N sub-experts is scored by the mean |activation|
of r "gate neurons" (|SiLU(x g_j) * (x u_j)|, a cheap proxy for the sub-expert's output norm),
and the best `pattern[i]` sub-experts run, each with its parent's weight. K = sum(pattern).

Gate neurons: within each sub-expert, on the calibration tokens routed to its parent, a neuron
is "active" for a token when its |activation| is in the top `active_frac` of the sub-expert's
neurons; the co-activation matrix C = B^T B counts tokens where two neurons are active together,
and the r neurons with the largest co-activation with the others of their sub-expert are kept.

Patterns: the paper's repository gives OLMoE K=16 [4,4,4,3,1,0,0,0], DeepSeek K=16 [4,4,4,3,1,0]
and Qwen3 K=24 [4,4,4,4,4,3,1,0] and nothing else. `default_pattern` generalises them: for
K = 4q, q-1 full experts then 3 and 1 (when a rank is free); otherwise q full experts and the
remainder. Any pattern can be given instead (method.options.cg_pattern).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from moebench.errors import ConfigError
from moebench.models.families import FAMILIES, moe_layers
from moebench.models.routing import deepseek_topk, route, softmax_topk


def default_pattern(k: int, top_k: int, n: int) -> list[int]:
    """Sub-experts kept per ranked parent for K = k active sub-experts."""
    if not 1 <= k <= n * top_k:
        raise ConfigError("method.options.active_k", k, f"an integer in 1..{n * top_k}")
    full, rest = divmod(k, n)
    pattern = [n] * full + ([rest] if rest else [])
    if not rest and full < top_k and n > 1:  # taper the last full expert: ..., n-1, 1
        pattern[-1] = n - 1
        pattern.append(1)
    return pattern + [0] * (top_k - len(pattern))


def check_pattern(pattern: list[int], top_k: int, n: int) -> list[int]:
    if len(pattern) != top_k or any(not 0 <= p <= n for p in pattern) or sum(pattern) < 1:
        raise ConfigError(
            "method.options.cg_pattern",
            pattern,
            f"{top_k} counts in 0..{n}, one per ranked expert, not all 0",
        )
    return list(pattern)


def gate_neurons(acts: torch.Tensor, r: int, active_frac: float) -> torch.Tensor:
    """[B, C_sub] |activations| of one sub-expert -> indices of its r gate neurons."""
    width = acts.shape[1]
    if acts.shape[0] == 0:
        return torch.arange(min(r, width))
    top = max(1, round(width * active_frac))
    active = torch.zeros_like(acts, dtype=torch.float32)
    active.scatter_(1, acts.abs().topk(top, dim=1).indices, 1.0)
    co = active.T @ active
    centrality = co.sum(1) - co.diagonal()  # co-activation with the other neurons
    return centrality.argsort(descending=True, stable=True)[: min(r, width)]


class LinearGate(nn.Module):
    """Drop-in router of one carved MoE block with index-order tie-breaking."""

    def __init__(self, weight: torch.Tensor, family: str, config, top_k: int):
        super().__init__()
        self.rules = FAMILIES[family]
        if self.rules.router_scaling and getattr(config, "topk_method", "greedy") != "greedy":
            raise ConfigError(
                "model.arch.topk_method", config.topk_method, "greedy for a carved DeepSeek model"
            )
        self.weight = nn.Parameter(weight.detach().clone())
        self.family, self.top_k = family, top_k
        self.renormalize = self.rules.always_renormalize or bool(
            getattr(config, "norm_topk_prob", False)
        )
        self.scale = float(config.routed_scaling_factor) if self.rules.router_scaling else 1.0

    def forward(self, hidden: torch.Tensor):
        x = hidden.reshape(-1, hidden.shape[-1])
        if self.rules.router_scaling:  # float32 logits, scaled weights (DeepSeek)
            logits = F.linear(x.float(), self.weight.float())
            weights, ids = deepseek_topk(
                logits, self.top_k, "greedy", None, None, self.scale, stable=True
            )
            return logits, weights, ids
        logits = F.linear(x, self.weight)
        weights, ids = softmax_topk(logits, self.top_k, self.renormalize, stable=True)
        return logits, weights.to(logits.dtype), ids


class ComplexGate(nn.Module):
    """Drop-in router of one carved MoE block: returns (logits, weights [T, K], ids [T, K])."""

    def __init__(
        self,
        carved_router_weight: torch.Tensor,
        gate_w: torch.Tensor,
        up_w: torch.Tensor,
        act_fn,
        family: str,
        original_config,
        pattern: list[int],
        n: int,
        fold: float,
    ):
        super().__init__()
        self.weight = nn.Parameter(carved_router_weight.detach().clone(), requires_grad=False)
        self.register_buffer("gate_w", gate_w)  # [E N, r, D]
        self.register_buffer("up_w", up_w)
        self.act_fn, self.family, self.config = act_fn, family, original_config
        self.pattern, self.n, self.fold = pattern, n, fold
        self.top_k = sum(pattern)

    def forward(self, hidden: torch.Tensor):
        x = hidden.reshape(-1, hidden.shape[-1])
        fp32 = FAMILIES[self.family].router_fp32
        logits = x.float() @ self.weight.float().T if fp32 else x @ self.weight.T
        parent_logits = logits[:, :: self.n]
        weights, ids = route(self.family, self.config, parent_logits)
        order = weights.argsort(
            dim=-1, descending=True, stable=True
        )  # DeepSeek returns them unsorted
        weights, ids = weights.gather(-1, order), ids.gather(-1, order)
        subs, sub_w = [], []
        for rank, keep in enumerate(self.pattern):
            if keep == 0:
                continue
            members = ids[:, rank : rank + 1] * self.n + torch.arange(self.n)  # [T, N]
            g = torch.einsum("td,tsrd->tsr", x.to(self.gate_w.dtype), self.gate_w[members])
            u = torch.einsum("td,tsrd->tsr", x.to(self.up_w.dtype), self.up_w[members])
            score = (self.act_fn(g) * u).abs().mean(-1)  # [T, N]
            best = score.topk(keep, dim=-1).indices
            subs.append(members.gather(-1, best))
            sub_w.append(weights[:, rank : rank + 1].expand(-1, keep) / self.fold)
        return logits, torch.cat(sub_w, dim=-1).to(weights.dtype), torch.cat(subs, dim=-1)


@torch.no_grad()
def install_complex_gate(
    carved,
    original_config,
    parts,
    acts,
    n: int,
    pattern: list[int],
    r: int = 4,
    active_frac: float = 0.75,
) -> dict:
    """Replace every router of the `carved` LoadedModel by a CG router; returns what was chosen."""
    family = carved.family
    fold = FAMILIES[family].fold(n)
    chosen = {}
    for view in carved.layers:
        gate_up = view.experts.gate_up_proj  # [E N, 2 C/N, D]
        width = gate_up.shape[1] // 2
        gws, uws = [], []
        for sub in range(view.num_experts):
            parent, group = divmod(sub, n)
            a = acts.get(view.index, {}).get(parent)
            members = torch.nonzero(parts[view.index][parent] == group).flatten()
            local = gate_neurons(
                a[:, members] if a is not None else torch.empty(0, width), r, active_frac
            )
            gws.append(gate_up[sub, local])
            uws.append(gate_up[sub, width + local])
            chosen[f"{view.index}.{sub}"] = local.tolist()
        gate = ComplexGate(
            view.router.weight,
            torch.stack(gws),
            torch.stack(uws),
            view.experts.act_fn,
            family,
            original_config,
            pattern,
            n,
            fold,
        )
        setattr(view.block, FAMILIES[family].router_attr, gate)
    carved.layers = moe_layers(carved.model, family)
    return chosen
