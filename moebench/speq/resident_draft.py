"""MoE-SpeQ's memory-free draft (`method.options.draft=resident`): no INT4 copies; the draft
is the target itself, each MoE layer computing only with experts already on the device.

Per token and layer the router runs as usual; its unrestricted top-k still feeds the
lookahead buffer (what the target will need), while the draft computes with the router's
top-k among the resident experts, weighted as the family weights its choice
(`missing=renormalize`), or with the target's own top-k where the missing experts'
contributions are simply dropped (`missing=drop`). Drafting moves no bytes; every device
byte goes to FP16 slots, as for `mixtral_offloading (sm)`. Exact verification keeps the
output the target's.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from moebench.models.routing import route, router_logits

MISSING = ("renormalize", "drop")


class ResidentDraft:
    def __init__(self, loaded, engine, missing: str = "renormalize"):
        self.loaded, self.engine, self.missing = loaded, engine, missing
        self.views = {v.index: v for v in loaded.layers}
        self.method = "resident"
        self.group = None
        self.bits = 16
        self.slots_tokens = 0  # (token, layer) pairs drafted
        self.full_tokens = (
            0  # ... whose whole top-k was resident (the draft computed the target's routing)
        )
        self.kept_experts = 0  # of the target's top-k choices, how many were resident

    @contextmanager
    def active(self):
        """Nothing to swap: the engine applies `restrict` in every draft forward (it holds
        this draft through speq/draft_side.py)."""
        yield

    def restrict(self, layer: int, hidden: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor):
        """(ids, weights) the draft computes with in `layer`: only resident experts."""
        resident = sorted(self.engine.caches[layer].resident)
        mask = torch.zeros(self.views[layer].num_experts, dtype=torch.bool)
        mask[resident] = True
        inside = mask.to(ids.device)[ids]
        self.slots_tokens += ids.shape[0]
        self.full_tokens += int(inside.all(dim=-1).sum())
        self.kept_experts += int(inside.sum())
        if self.missing == "drop":
            return torch.where(
                inside,
                ids,
                ids[:, :1].where(inside[:, :1], torch.full_like(ids[:, :1], resident[0])),
            ), weights * inside
        logits = router_logits(self.views[layer], hidden, self.loaded.family)
        logits = logits.masked_fill(~mask.to(logits.device), float("-inf"))
        new_weights, new_ids = route(self.loaded.family, self.loaded.hf_config, logits)
        return new_ids.to(ids.dtype), new_weights.to(weights.dtype)

    def fidelity(self) -> dict[str, float]:
        """Routing fidelity as the run saw it: how often a token's whole top-k was resident
        (the draft then computes exactly the target's layer), and the share of kept experts."""
        k = self.loaded.hf_config.num_experts_per_tok
        tokens = max(1, self.slots_tokens)
        return {
            "fidelity_frac": self.full_tokens / tokens,
            "hard_match_frac": self.full_tokens / tokens,
            "soft_match_frac": 0.0,
            "kept_expert_frac": self.kept_experts / (tokens * k),
        }
