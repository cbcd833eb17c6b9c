"""What the governor prices a cycle of k drafts with: compute from the cost model (experts
resident), copies from what earlier cycles of this run moved.

Compute: a drafted token, a verify of n tokens (grouped, or one forward per token), the
non-expert part of a layer. Copies: the paper's T_pcie,new (Eq. 3: the verify union's
misses at the observed rate, with what thrashes beyond the slots), and the bytes
objective's T_io (every byte a cycle is expected to move). The observations are
exponential moving averages updated after every cycle (`observe`).
"""

from __future__ import annotations

import numpy as np

from moebench.engine.costs import CostModel
from moebench.speq.governor import expected_loads

NEW, OLD = 0.3, 0.7  # weights of the newest cycle and of the estimate so far


def _ema(old: float, new: float) -> float:
    return OLD * old + NEW * new


class CycleCosts:
    def __init__(self, costs: CostModel, engine, slots_per_layer: int, sequential_verify: bool):
        self.costs, self.engine, self.slots = costs, engine, slots_per_layer
        self.sequential_verify = sequential_verify
        self.layers = len(costs.shape.moe_layers)
        self.miss_rate = 0.5  # share of verify-time experts not resident when needed
        self.reuse = 0.5  # share of a cycle's union (up to the slots) that needed no copy
        self.distinct_scale = (
            1.0  # observed / independent-routing distinct experts per verify layer
        )
        self.draft_miss_rate = 0.5  # an offloaded draft's per-expert miss rate
        # one-by-one verify: per draft length k, FP16 copies per verified token and MoE layer; a
        # longer lookahead evicts better, which no closed form gives, so each k is measured, and
        # a k not yet tried counts as free (it is tried once, then judged)
        self.copies_per_verified_token: dict[int, float] = {}
        self.unseen_copies = (
            0.5 * costs.shape.top_k
        )  # the offline profile's prior (`start_run` sets 0)
        self.draft_token_sec = self._draft_token_sec()

    def start_run(self) -> None:
        """The offline profile is taken: from now on an untried k counts as free."""
        self.unseen_copies = 0.0

    # --- compute (cost model, experts resident) ----------------------------------------------
    def non_expert_layer_sec(self, n: int) -> float:
        """Attention, router, the host's read-back and shared experts of one MoE layer for n
        tokens."""
        c, s = self.costs, self.costs.shape
        per_layer = (
            c.kernel_sec(c.attention_kernel(n, 256))
            + c.kernel_sec(c.router_kernel(n))
            + c.host_layer_sec
        )
        if s.shared_intermediate:
            per_layer += c.kernel_sec(c.mlp_kernel(n, s.shared_intermediate, "shared"))
        return per_layer

    def _draft_token_sec(self) -> float:
        c, s = self.costs, self.costs.shape
        expert = c.kernel_sec(c.expert_kernel(1, bytes_per_param=self.engine.draft.bytes_per_param))
        return self.layers * (self.non_expert_layer_sec(1) + s.top_k * expert) + c.kernel_sec(
            c.lm_head_kernel(1)
        )

    def draft_sec(self, k: int) -> float:
        return k * self.draft_token_sec

    def distinct(self, n: int) -> float:
        """Expected distinct experts per layer among n tokens (independent top-k routing)."""
        s = self.costs.shape
        return s.num_experts * (1 - (1 - s.top_k / s.num_experts) ** n)

    def verify_sec(self, n: float) -> float:
        """A verify of n tokens; one-by-one, n single-token forwards (n may be an expected
        count)."""
        if self.sequential_verify:
            return n * self._grouped_verify_sec(1)
        return self._grouped_verify_sec(n)

    def _grouped_verify_sec(self, n: int) -> float:
        c, s = self.costs, self.costs.shape
        distinct = self.distinct(n)
        per_layer = self.non_expert_layer_sec(n)
        per_layer += distinct * c.kernel_sec(c.expert_kernel(max(1, round(n * s.top_k / distinct))))
        return self.layers * per_layer + c.kernel_sec(c.lm_head_kernel(1))

    # --- copies --------------------------------------------------------------------------------
    def pcie_new_sec(self, k: int) -> float:
        """Eq. 3's T_pcie,new: the experts a verify of k+1 tokens needs (their union grows
        sublinearly in k) that are not resident, at the observed miss rate, plus what thrashes
        when the union outgrows the slots (governor.expected_loads), over the link."""
        c = self.costs
        new = expected_loads(self.distinct(k + 1), self.slots, self.miss_rate) * self.layers
        return c.hw.h2d_latency_sec + new * c.shape.expert_bytes / c.hw.h2d_bytes_per_sec

    def cycle_io_sec(self, k: int, tokens: float) -> float:
        """The bytes objective's T_io: link seconds of the verify's expected FP16 copies plus an
        offloaded draft's misses at its observed rate. A verify of k+1 tokens needs the union
        D(k+1) of their experts per layer (independent top-k routing, scaled by the observed
        locality); of those, the observed reuse r (the share of the slots' worth of experts a
        cycle did not have to copy, prefetch waste counted against it) are served: copies =
        D - r min(slots, D), so a union beyond the slots is all copied. A one-by-one verify
        runs as many forwards as the cycle emits tokens (`tokens`), each copying its own
        misses at the rate observed for this k."""
        c, s = self.costs, self.costs.shape
        if self.sequential_verify:
            loads = tokens * self.copies_per_verified_token.get(k, self.unseen_copies) * self.layers
        else:
            distinct = min(s.num_experts, self.distinct_scale * self.distinct(k + 1))
            loads = (distinct - self.reuse * min(self.slots, distinct)) * self.layers
        sec = loads * c.transfer_sec(s.expert_bytes)
        if self.engine.draft.cache is not None:
            sec += (
                k * self.layers * s.top_k * self.draft_miss_rate * self.engine.draft.cache.copy_sec
            )
        return sec

    # --- observations ----------------------------------------------------------------------------
    def _fp16_copies(self) -> float:
        """FP16 expert copies so far (demand and prefetch; an offloaded draft's excluded)."""
        st, cache = self.engine.stats, self.engine.draft.cache
        return (
            st.demand_bytes + st.prefetch_bytes - (cache.bytes if cache else 0.0)
        ) / self.engine.expert_bytes

    def mark(self) -> tuple:
        """Where the engine's counters stand as a cycle begins."""
        engine, cache = self.engine, self.engine.draft.cache
        return (
            len(engine.stats.steps),
            {layer: len(a) for layer, a in engine.accesses.items()},
            self._fp16_copies(),
            (cache.needed, cache.hits) if cache else (0, 0),
        )

    def observe(self, k: int, accepted: int, mark: tuple) -> None:
        """Update every estimate from the cycle that began at `mark`."""
        engine = self.engine
        steps, accesses, copies, (draft_needed, draft_hits) = mark
        verify = [s for s in engine.stats.steps[steps:] if not s.draft]
        needed, hits = sum(s.needed for s in verify), sum(s.hits for s in verify)
        if needed:
            self.miss_rate = _ema(self.miss_rate, 1 - hits / needed)
            union = np.mean(
                [
                    len(
                        set().union(
                            *(n for n, _ in engine.accesses[layer][accesses.get(layer, 0) :])
                        )
                    )
                    for layer in self.costs.shape.moe_layers
                ]
            )
            verified = accepted + 1 if self.sequential_verify else k + 1
            self.distinct_scale = _ema(self.distinct_scale, union / self.distinct(verified))
            loads = (self._fp16_copies() - copies) / self.layers
            fits = max(1.0, min(self.slots, union))
            self.reuse = _ema(self.reuse, float(np.clip((union - loads) / fits, -1.0, 1.0)))
            seen = self.copies_per_verified_token
            seen[k] = _ema(seen[k], loads / verified) if k in seen else loads / verified
        cache = engine.draft.cache
        if cache is not None and cache.needed > draft_needed:
            self.draft_miss_rate = _ema(
                self.draft_miss_rate, 1 - (cache.hits - draft_hits) / (cache.needed - draft_needed)
            )
