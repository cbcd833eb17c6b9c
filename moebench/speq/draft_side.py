"""MoE-SpeQ's draft as the offload engine sees it: one object, given to the engine once.

`OffloadEngine(..., draft=DraftSide(...))` calls `attach(engine)` from its constructor; the
parts that act on the engine (the orchestrator's prefetches, an offloaded draft's INT4
cache, a resident draft's routing restriction) are built there, so nothing is set on the
engine from outside. In a draft forward the engine hands each MoE layer to `run_layer`,
which charges the draft's expert kernels at `bytes_per_param` (waiting for `cache` copies
if the draft is offloaded) and gives the layer's routing to the orchestrator (the lookahead
buffer), so the engine itself holds no MoE-SpeQ logic.
"""

from __future__ import annotations

import numpy as np

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

    def run_layer(
        self,
        engine,
        layer: int,
        ids: np.ndarray,
        counts: np.ndarray,
        needed: list[int],
        computes: np.ndarray | None,
    ) -> None:
        """Charge one MoE layer of a draft forward on `engine`'s clock, then hand its routing
        (`ids` [T, k]) to the lookahead buffer. A resident-experts draft computes with
        `computes` (its FP16 experts already in slots: it waits for their copies); an INT4
        draft with its INT4 copies (all resident, or behind `cache`)."""
        c = engine.costs
        if computes is not None:
            used = np.bincount(np.asarray(computes).ravel(), minlength=engine.shape.num_experts)
            for e in np.flatnonzero(used):
                engine.clock.compute(
                    f"draft expert {layer}.{e}",
                    c.kernel_sec(c.expert_kernel(int(used[e]))),
                    after=engine.landing.get((layer, int(e)), 0.0),
                    expert=True,
                )
        else:
            ready = self.cache.make_resident(layer, needed) if self.cache else {}
            for e in needed:
                kernel = c.expert_kernel(int(counts[e]), bytes_per_param=self.bytes_per_param)
                end = engine.clock.compute(
                    f"draft expert {layer}.{e}",
                    c.kernel_sec(kernel),
                    after=ready.get(e, 0.0),
                    expert=True,
                )
                if self.cache:
                    self.cache.used_until(layer, e, end)
        self.orchestrator.on_draft_layer(layer, ids)
