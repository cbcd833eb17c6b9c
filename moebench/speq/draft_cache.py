"""MoE-SpeQ's offloaded INT4 draft (`method.options.draft=int4_cached`): the draft's INT4
experts live in host memory behind their own small per-layer LRU cache on the device, so the
device budget is split between INT4 draft slots (`draft_slots` per MoE layer) and FP16 target
slots instead of holding every INT4 expert (20.7 GB for Phi-3.5-MoE).

A draft miss is a demand copy of the INT4 expert (a quarter of the FP16 bytes, plus scales)
on the same link as the target's copies; the draft's kernel waits for it. The tensors the
draft computes with are the same dequantized INT4 weights as `draft=int4`, so its tokens,
fidelity and acceptance are those of the all-resident draft: only what moves differs.
"""

from __future__ import annotations

from moebench.engine.policy import LRU, LayerCache, belady_misses


class DraftExpertCache:
    def __init__(self, engine, slots_per_layer: int, expert_bytes: float):
        self.engine, self.slots, self.expert_bytes = engine, slots_per_layer, expert_bytes
        self.copy_sec = engine.costs.transfer_sec(expert_bytes)
        warm = list(range(slots_per_layer))  # lowest ids, as the target's caches start
        self.caches = {
            layer: LayerCache(slots_per_layer, LRU(), warm) for layer in engine.shape.moe_layers
        }
        self.landing: dict[tuple[int, int], float] = {}
        self.last_use_end: dict[tuple[int, int], float] = {}
        self.accesses: dict[int, list[set[int]]] = {layer: [] for layer in self.caches}
        self.needed = self.hits = 0
        self.bytes = 0.0

    def make_resident(self, layer: int, experts: list[int]) -> dict[int, float]:
        """When each of `experts` is on the device for a draft forward of `layer`, copying
        the misses (demand copies, ahead of the target's queued prefetches)."""
        engine, cache = self.engine, self.caches[layer]
        now, time = engine.clock.now, len(self.accesses[layer])
        self.accesses[layer].append(set(experts))
        ready = {}
        for e in sorted(experts):
            self.needed += 1
            cache.policy.used(e, time)
            if e in cache:
                landed = self.landing.get((layer, e), 0.0)
                self.hits += landed <= now
                ready[e] = max(now, landed)
                continue
            victim = cache.make_room(time, protect=set(experts))
            not_before = self.last_use_end.pop((layer, victim), 0.0) if victim is not None else 0.0
            self.landing.pop((layer, victim), None)
            ready[e] = engine.queue_copy(
                ("draft", layer, e), self.copy_sec, "demand", now, not_before
            )
            self.landing[(layer, e)] = ready[e]
            cache.admit(e)
            self.bytes += self.expert_bytes
            engine.stats.h2d_bytes += self.expert_bytes
            engine.stats.demand_bytes += self.expert_bytes
            engine.stats.missed_bytes += self.expert_bytes
            engine._step.missed_bytes += self.expert_bytes
        return ready

    def used_until(self, layer: int, expert: int, end: float) -> None:
        """The draft kernel on this slot ends at `end`: its slot may be overwritten after."""
        self.last_use_end[(layer, expert)] = end

    def belady_bytes(self) -> float:
        """What a clairvoyant cache of the same draft slots would have moved (all draft
        forwards are decode forwards)."""
        warm = list(range(self.slots))
        misses = sum(
            sum(belady_misses(stream, self.slots, warm)) for stream in self.accesses.values()
        )
        return float(misses * self.expert_bytes)

    def metrics(self) -> dict[str, float]:
        return {
            "draft_cache_hit_frac": self.hits / self.needed if self.needed else 1.0,
            "draft_h2d_bytes": self.bytes,
            "draft_belady_bytes": self.belady_bytes(),
        }
