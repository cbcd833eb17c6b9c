"""The expert orchestrator: fills the Expert Lookahead Buffer from the draft's routers and
prefetches the target's FP16 experts while the draft runs (paper section 3.3).

Our definitions of the paper's three phases (it gives none in numbers):
- Phase I, prime from cache: the first drafted token's predictions are served by whatever is
  resident; no copy is queued for them (the link stays free for demand loads).
- Phase II, bandwidth-guided: after each later drafted token, queue the non-resident experts
  it predicts, but only while the copy queue would drain before the draft is expected to
  finish (the middle of the buffer, without oversubscribing the link).
- Phase III, saturate: after the last drafted token, queue every predicted expert still
  missing, layer by layer in the order verification will need them.
Eviction is lookahead-aware (engine/policy.py `Lookahead`): the resident expert whose next
use in the buffer is farthest, or absent, leaves first.
"""

from __future__ import annotations

import numpy as np

from moebench.engine.offload import OffloadEngine


class Orchestrator:
    def __init__(self, engine: OffloadEngine, phases: bool = True, next_token: bool = False):
        self.engine = engine
        self.phases = phases  # False: no prefetch at all (the "without async prefetch" ablation)
        # True (a sequential verify): instead of the phases, prefetch only what the next
        # verify forward is predicted to need, one token ahead of it
        self.next_token = next_token
        self.elb: dict[int, list[set[int]]] = {}  # layer -> predicted expert set per drafted token
        self.k = 0
        self.t_draft_token = 0.0
        self.entries = 0

    def begin_cycle(self, k: int, t_draft_token: float) -> None:
        self.k, self.t_draft_token = k, t_draft_token
        self.elb = {layer: [] for layer in self.engine.shape.moe_layers}

    def on_draft_layer(self, layer: int, ids: np.ndarray) -> None:
        """Called by the engine in draft mode: one ELB entry per (token, layer)."""
        self.elb[layer].append(set(np.unique(ids).tolist()))
        self.entries += 1
        self.engine.caches[layer].policy.lookahead(self.elb[layer])

    def after_draft_token(self, i: int) -> None:
        """Phase II after drafted token i >= 1 (0-based); phase III after the last one."""
        if not self.phases:
            return
        last = i == self.k - 1
        if self.next_token:
            if last:
                self._prefetch_entry(0)
            return
        if i == 0 and not last:
            return  # phase I
        engine = self.engine
        remaining = (self.k - 1 - i) * self.t_draft_token
        for layer in engine.shape.moe_layers:
            if not last and engine.link.idle_at - engine.clock.now > remaining:
                return  # phase II: the link would not drain before verification
            wanted = sorted(set().union(*self.elb[layer])) if last else sorted(self.elb[layer][i])
            engine.prefetch_experts(layer, wanted)

    def verifying(self, j: int) -> None:
        """Verify forward j of the cycle (the first is j = 0) is about to run: what the
        lookahead eviction should keep is what the drafted tokens after it predicted."""
        for layer, entries in self.elb.items():
            self.engine.caches[layer].policy.lookahead(
                entries[j:] if self.next_token else entries[j + 1 :]
            )
        if self.phases and self.next_token:
            self._prefetch_entry(j + 1)

    def _prefetch_entry(self, i: int) -> None:
        """Queue every layer's experts that drafted token i's forward predicted."""
        for layer, entries in self.elb.items():
            if i < len(entries):
                self.engine.prefetch_experts(layer, sorted(entries[i]))

    def buffer(self) -> dict[int, list[list[int]]]:
        """The ELB as plain lists (k x L entries of expert ids), for records and tests."""
        return {layer: [sorted(s) for s in sets] for layer, sets in self.elb.items()}
