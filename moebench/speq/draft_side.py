"""MoE-SpeQ's draft as the offload engine sees it: one object, given to the engine once.

`OffloadEngine(..., draft=DraftSide(...))` calls `attach(engine)` from its constructor; the
parts that act on the engine (the orchestrator's prefetches, an offloaded draft's INT4
cache, a resident draft's routing restriction) are built there, so nothing is set on the
engine from outside. In a draft forward the engine charges draft expert kernels at
`bytes_per_param`, waits for `cache` copies if the draft is offloaded, and hands each
layer's routing to `routed` (the lookahead buffer).
"""

from __future__ import annotations

from moebench.speq.draft_cache import DraftExpertCache
from moebench.speq.orchestrator import Orchestrator
from moebench.speq.resident_draft import ResidentDraft


class DraftSide:
    def __init__(
        self,
        bytes_per_param: float,
        prefetch: bool | str,
        cache_slots: int | None = None,
        cache_expert_bytes: float = 0.0,
        resident_of=None,
        missing: str = "renormalize",
    ):
        """`bytes_per_param`: what a draft expert's kernel reads per parameter; `prefetch`:
        the orchestrator's mode (True, False or "next_token"); `cache_slots`: INT4 device
        slots per layer for an offloaded draft (None: every INT4 expert resident);
        `resident_of`: the loaded model whose resident FP16 experts draft (draft=resident)."""
        self.bytes_per_param = bytes_per_param
        self._prefetch = prefetch
        self._cache = (cache_slots, cache_expert_bytes)
        self._resident = (resident_of, missing)
        self.orchestrator: Orchestrator | None = None
        self.cache: DraftExpertCache | None = None
        self.resident: ResidentDraft | None = None

    def attach(self, engine) -> None:
        """Build the engine-facing parts (the engine calls this once, from its constructor)."""
        prefetch = self._prefetch
        self.orchestrator = Orchestrator(
            engine, phases=bool(prefetch), next_token=prefetch == "next_token"
        )
        slots, expert_bytes = self._cache
        if slots is not None:
            self.cache = DraftExpertCache(engine, slots, expert_bytes)
        loaded, missing = self._resident
        if loaded is not None:
            self.resident = ResidentDraft(loaded, engine, missing)

    def routed(self, layer: int, ids) -> None:
        """A draft forward's routing of `layer`: one lookahead-buffer entry per token."""
        self.orchestrator.on_draft_layer(layer, ids)
