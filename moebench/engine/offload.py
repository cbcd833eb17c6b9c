"""The offload engine: per-layer expert caches, a copy stream with demand priority, and the
compute stream, driven layer by layer as the model runs. It decides; its transport moves
(modeled copies under the virtual clock, or real ones timed by a real clock).

The model calls `on_moe_layer` from inside each MoE layer (experts_impl.py) with the expert
ids its router chose; the engine charges that layer's kernels, loads what is missing,
optionally prefetches the next layer's guess, and counts hits, bytes and stalls. Outputs are
untouched, so every method here is lossless by construction; tests check it anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from moebench.engine.clock import VirtualClock
from moebench.engine.costs import CostModel
from moebench.engine.link import Link
from moebench.engine.policies import make_policy
from moebench.engine.policy import LayerCache, belady_misses
from moebench.engine.transport import VirtualTransport

Key = tuple[int, int]  # (decoder layer, expert)


@dataclass
class EngineOptions:
    """What distinguishes the offloading baselines (methods/offload.py builds these)."""

    slots_per_layer: int
    policy: str = "lru"  # a name of engine/policies.py
    reuse: bool = True  # False: `ondemand`, experts leave as soon as their layer is done
    whole_layer: bool = False  # True: `hf_offload`, a layer's experts all move when it runs
    prefetch: str | None = None  # None | "sooner" | "later" (next-layer guess)
    expert_bytes: float | None = None  # bytes per expert copy (default: the shape's bf16 size)
    warm_start: bool = True  # caches start filled (lowest expert ids), as after a warm-up
    grouped: bool = True  # one kernel per expert over all its tokens (False: one per token)
    fused_experts: bool = False  # one launch per layer for all its routed experts (a grouped GEMM)


@dataclass
class StepCounters:
    needed: int = 0
    hits: int = 0  # needed experts resident (copy landed) when the layer asked for them
    covered: int = 0  # ... resident or already on their way (a prefetch in flight)
    missed_bytes: float = 0.0
    compute_sec: float = 0.0  # kernel time alone: the step's compute bound
    prefill: bool = False  # the first forward of a prompt (empty KV cache)
    draft: bool = False  # a MoE-SpeQ draft forward (INT4 experts, nothing moves)


@dataclass
class EngineStats:
    h2d_bytes: float = 0.0
    demand_bytes: float = 0.0
    prefetch_bytes: float = 0.0
    prefetch_issued: int = 0
    prefetch_used: int = 0
    prefetch_wasted_bytes: float = 0.0
    guessed: int = 0  # experts named by next-layer guesses
    guessed_right: int = 0  # of those, needed by that layer
    needed_after_guess: int = 0  # needed experts in layers that had a guess
    missed_bytes: float = 0.0
    steps: list[StepCounters] = field(default_factory=list)


class OffloadEngine:
    """One model's experts under a device budget: decisions here, moves by the transport."""

    @property
    def clock_label(self) -> str:
        return self.transport.clock_label

    def now(self) -> float:
        """The run's clock: virtual seconds, or the wall clock for a real transport."""
        return self.transport.now(self.clock.now)

    def __init__(
        self,
        costs: CostModel,
        options: EngineOptions,
        keep_spans: bool = False,
        futures: dict[int, list[set[int]]] | None = None,
        popularity: dict[int, dict[int, float]] | None = None,
        transport=None,
        draft=None,
        predictor: Callable | None = None,
    ):
        self.costs, self.opt = costs, options
        self.transport = transport or VirtualTransport()  # carries out every load and eviction
        self.shape = costs.shape
        self.clock = VirtualClock(keep_spans=keep_spans)
        self.link = Link(keep_history=keep_spans)
        self.expert_bytes = options.expert_bytes or self.shape.expert_bytes
        self.copy_sec = costs.transfer_sec(self.expert_bytes)
        self.caches: dict[int, LayerCache] = {}
        for layer in self.shape.moe_layers:
            policy = make_policy(
                options.policy,
                options.slots_per_layer,
                self.shape.num_experts,
                future=(futures or {}).get(layer),
                popularity=(popularity or {}).get(layer),
            )
            self.caches[layer] = LayerCache(
                options.slots_per_layer, policy, self._warm(layer, popularity)
            )
            for e in sorted(self.caches[layer].resident):  # the warm start, before any timed step
                self.transport.load(layer, e)
        self.landing: dict[Key, float] = {}  # when a resident expert's copy lands
        self.last_use_end: dict[Key, float] = {}  # when its last kernel finished (slot reuse)
        self.prefetched_unused: set[Key] = set()
        self.pending_guess: dict[int, set[int]] = {}  # layer -> experts guessed for it
        self.stats = EngineStats()
        # per MoE layer, every target forward's needed experts and whether it was a decode
        # step (not a prefill): what a clairvoyant cache of the same slots would have to move
        self.accesses: dict[int, list[tuple[set[int], bool]]] = {}
        self.access_index = 0
        self._step: StepCounters | None = None
        self._launched_in_layer = False
        self._next_layer = 0
        self._tokens = self._context = 0
        self.decode_split: dict[str, float] = {}  # see _split_now
        # when a list: every MoE layer's (layer, routing [T, k]) in call order (MoE-SpeQ's
        # cycle transcript, speq/transcript.py)
        self.layer_log: list[tuple[int, np.ndarray]] | None = None
        self.predictor = predictor  # (layer, hidden) -> set of next-layer experts
        # MoE-SpeQ's draft side (speq/draft_side.py), given once: in a draft forward the
        # experts are its INT4 copies (or, for a resident draft, the FP16 slots), and each
        # layer's routing goes to `draft.routed` to fill the lookahead buffer.
        self.draft = draft
        self.drafting = False
        if draft is not None:
            draft.attach(self)

    def draft_restriction(self):
        """In a draft forward of a resident-experts draft: its routing restriction."""
        if self.drafting and self.draft is not None and self.draft.resident is not None:
            return self.draft.resident.restrict
        return None

    def _warm(self, layer: int, popularity) -> list[int]:
        """Experts resident at the start: the lowest ids (as after a warm-up), or for the
        static policy the most popular; none for methods that keep nothing."""
        opt = self.opt
        if not (opt.warm_start and opt.reuse and not opt.whole_layer):
            return []
        counts = (popularity or {}).get(layer, {}) if opt.policy == "static" else {}
        order = sorted(range(self.shape.num_experts), key=lambda e: (-counts.get(e, 0.0), e))
        return order[: opt.slots_per_layer]

    # --- forward bracketing ------------------------------------------------------------
    def begin_forward(self, tokens: int, context: int, draft: bool = False) -> None:
        """Start a forward of `tokens` tokens after `context`; `draft`: a MoE-SpeQ draft
        forward (draft experts, nothing moves), until the next forward begins."""
        self.drafting = draft
        self._tokens, self._context = tokens, context
        self._next_layer = 0
        self._start = self.clock.now
        self._busy_at_start = self.clock.compute_busy_sec
        self._step = StepCounters(prefill=context == 0, draft=draft)
        self.transport.begin_step()
        self._split_at_start = self._split_now()

    def end_forward(self) -> float:
        """Charge the layers after the last MoE layer and the LM head; return the step time."""
        self._charge_layers_until(self.shape.num_layers)
        self.clock.compute("lm_head", self.costs.kernel_sec(self.costs.lm_head_kernel(1)))
        self._step.compute_sec = self.clock.compute_busy_sec - self._busy_at_start
        self.stats.steps.append(self._step)
        self.link.compact(self.clock.now)
        self.drafting = False
        seconds = self.transport.end_step(self.clock.now - self._start)
        split = self._split_now()
        if split and not self._step.prefill:
            for key, value in split.items():
                self.decode_split[key] = self.decode_split.get(key, 0.0) + (
                    value - self._split_at_start[key]
                )
            self.decode_split["wall_decode_sec"] = (
                self.decode_split.get("wall_decode_sec", 0.0) + seconds
            )
        return seconds

    def _split_now(self) -> dict[str, float]:
        """Where a real CPU transport times its copies and expert kernels (the clock check):
        those wall seconds so far, beside the modeled ones; else nothing."""
        wall = getattr(self.transport, "wall_split", dict)()
        if not wall:
            return {}
        return wall | {
            "model_copy_sec": self.link.busy_sec,
            "model_experts_sec": self.clock.expert_busy_sec,
            "model_host_sec": self.clock.host_sec,
            "model_decode_sec": self.clock.now,
        }

    def _charge_layers_until(self, stop: int) -> None:
        """Attention (and dense MLP) of every layer before `stop` not yet charged."""
        c, s = self.costs, self.shape
        moe = set(s.moe_layers)
        for layer in range(self._next_layer, stop):
            self.clock.compute(
                f"attention {layer}", c.kernel_sec(c.attention_kernel(self._tokens, self._context))
            )
            if layer not in moe:
                self.clock.compute(
                    f"mlp {layer}",
                    c.kernel_sec(c.mlp_kernel(self._tokens, s.dense_intermediate, "mlp")),
                )
        self._next_layer = max(self._next_layer, stop)

    # --- one MoE layer -----------------------------------------------------------------
    def on_moe_layer(
        self, layer: int, ids: np.ndarray, hidden=None, draft_computes: np.ndarray | None = None
    ) -> None:
        """Charge layer `layer` (attention, router, shared, experts) for routing `ids` [T, k];
        a resident-experts draft computes with `draft_computes` (resident FP16 experts) instead."""
        c, s = self.costs, self.shape
        if self.layer_log is not None:
            self.layer_log.append((layer, np.array(ids)))
        self._charge_layers_until(layer)
        self.clock.compute(
            f"attention {layer}", c.kernel_sec(c.attention_kernel(self._tokens, self._context))
        )
        self._next_layer = layer + 1
        self.clock.compute(f"router {layer}", c.kernel_sec(c.router_kernel(self._tokens)))
        if s.shared_intermediate:
            self.clock.compute(
                f"shared {layer}",
                c.kernel_sec(c.mlp_kernel(self._tokens, s.shared_intermediate, "shared")),
            )
        self.clock.host(f"host {layer}", c.host_layer_sec)
        self._launched_in_layer = False
        counts = np.bincount(np.asarray(ids).ravel(), minlength=s.num_experts)
        needed = [int(e) for e in np.flatnonzero(counts)]
        if self.drafting:  # MoE-SpeQ's draft side charges its own experts; nothing moves
            self.draft.run_layer(self, layer, np.asarray(ids), counts, needed, draft_computes)
            return
        if not self.opt.reuse:  # `ondemand`: the previous access's experts leave only now
            self._release_all(layer)
        chosen = set(needed)
        self.accesses.setdefault(layer, []).append((chosen, not self._step.prefill))
        self.caches[layer].policy.begin_access(chosen, self.access_index)
        self._score_guess(layer, chosen)
        guess = self.predictor(layer, hidden) if (self.predictor and self.opt.prefetch) else None
        now = self.clock.now
        if self.opt.whole_layer or len(needed) <= self.caches[layer].slots:
            ready = self._make_resident(layer, needed, protect=set(needed))
            if self.opt.prefetch == "sooner" and guess:
                self._prefetch(layer, guess)
            for e in sorted(needed, key=lambda e: (ready[e], e)):
                self._compute_expert(layer, e, int(counts[e]), ready[e], warm=ready[e] > now)
        else:  # more experts than slots (a long prefill): load and run them one by one
            if self.opt.prefetch == "sooner" and guess:
                self._prefetch(layer, guess)
            for e in needed:
                before = self.clock.now
                ready = self._make_resident(layer, [e], protect=set())
                self._compute_expert(layer, e, int(counts[e]), ready[e], warm=ready[e] > before)
        if self.opt.prefetch == "later" and guess:
            self._prefetch(layer, guess)
        if self.opt.whole_layer:
            self._release_all(layer)
        self.access_index += 1

    def _release_all(self, layer: int) -> None:
        """Every resident expert of `layer` leaves. `ondemand` calls this at the layer's next
        access, not right after it: the layer's kernels run after this hook returns, and a
        real transport must still hold their slots then (evicted earlier, it copied each
        expert a second time into a staging buffer)."""
        for e in sorted(self.caches[layer].resident):
            self.transport.evict(layer, e)
        self.caches[layer].resident.clear()

    def _compute_expert(
        self, layer: int, e: int, tokens: int, ready: float, warm: bool = False
    ) -> None:
        """One kernel over every token routed to the expert (grouped), or one per token;
        `warm`: its copy landed during this access (see CostModel.kernel_sec)."""
        launches = [tokens] if self.opt.grouped else [1] * tokens
        end = ready
        for n in launches:
            sec = self.costs.kernel_sec(self.costs.expert_kernel(n), warm=warm)
            if self.opt.fused_experts and self._launched_in_layer:
                sec -= self.costs.hw.launch_sec  # the layer's one launch is already paid
            self._launched_in_layer = True
            end = self.clock.compute(f"expert {layer}.{e}", sec, after=ready, expert=True)
        self.last_use_end[(layer, e)] = end

    def prefetch_experts(self, layer: int, experts: list[int]) -> int:
        """Queue copies of `experts` of `layer` that are not resident (evicting by the layer's
        policy, never an expert in `experts`); return how many were queued."""
        cache, queued = self.caches[layer], 0
        wanted = set(experts)
        for e in experts:
            if e in cache:
                continue
            if len(cache.resident) >= cache.slots and not (cache.resident - wanted):
                break  # every slot holds an expert we want: stop
            not_before = self._evict(layer, cache.make_room(self.access_index, protect=wanted))
            self._load(layer, e, self.clock.now, kind="prefetch", not_before=not_before)
            cache.admit(e, self.access_index)
            self.prefetched_unused.add((layer, e))
            self.stats.prefetch_issued += 1
            queued += 1
        return queued

    def _make_resident(self, layer: int, needed: list[int], protect: set[int]) -> dict[int, float]:
        """Ready time of each needed expert, loading misses on demand (ahead of prefetches).
        Experts in `protect` keep their slots (they still have to run in this layer)."""
        cache, now = self.caches[layer], self.clock.now
        ready: dict[int, float] = {}
        step, st = self._step, self.stats
        if self.opt.whole_layer:  # accelerate-style: the whole layer moves, compute waits for all
            for e in range(self.shape.num_experts):
                self._load(layer, e, now, kind="demand")
            done = self.link.idle_at
            step.needed += len(needed)
            step.missed_bytes += len(needed) * self.expert_bytes
            st.missed_bytes += len(needed) * self.expert_bytes
            return {e: done for e in needed}
        for e in sorted(needed):
            key = (layer, e)
            step.needed += 1
            cache.policy.used(e, self.access_index)
            if key in self.prefetched_unused:
                self.prefetched_unused.discard(key)
                st.prefetch_used += 1
            if e in cache and self.landing.get(key, 0.0) <= now:
                step.hits += 1
                step.covered += 1
                ready[e] = now
                continue
            if e in cache:  # a prefetch still in flight: wait for it (its bytes still had to move)
                step.covered += 1
                ready[e] = self.landing[key]
                step.missed_bytes += self.expert_bytes
                st.missed_bytes += self.expert_bytes
                continue
            step.missed_bytes += self.expert_bytes
            st.missed_bytes += self.expert_bytes
            victim = cache.make_room(self.access_index, protect=protect)
            not_before = self._evict(layer, victim)
            ready[e] = self._load(layer, e, now, kind="demand", not_before=not_before)
            cache.admit(e, self.access_index)
        return ready

    def _score_guess(self, layer: int, needed: set[int]) -> None:
        guess = self.pending_guess.pop(layer, None)
        if guess is not None:
            self.stats.guessed += len(guess)
            self.stats.guessed_right += len(guess & needed)
            self.stats.needed_after_guess += len(needed)

    def _evict(self, layer: int, victim: int | None) -> float:
        if victim is None:
            return 0.0
        key = (layer, victim)
        self.transport.evict(layer, victim)
        if key in self.prefetched_unused:
            self.prefetched_unused.discard(key)
            self.stats.prefetch_wasted_bytes += self.expert_bytes
        self.landing.pop(key, None)
        return self.last_use_end.get(key, 0.0)

    def queue_copy(
        self, key, seconds: float, kind: str, issued: float, not_before: float = 0.0
    ) -> float:
        """Put one copy on the link (a demand ahead of queued prefetches); return when it lands.
        Where copies cannot overlap compute, the copy waits for the kernels issued so far
        and the kernels wait for it."""
        queue = self.link.demand if kind == "demand" else self.link.prefetch
        serial = not self.costs.hw.copies_overlap_compute
        if serial:
            not_before = max(not_before, self.clock.compute_free_at)
        copy = queue(key, issued, seconds, not_before)
        if serial:
            self.clock.block_until(copy.end)
        if kind == "demand":  # a demand pushes queued prefetches back: refresh their landing times
            for later in self.link.copies:
                if later.kind == "prefetch" and later.key in self.landing:
                    self.landing[later.key] = later.end
        return copy.end

    def _load(self, layer: int, e: int, issued: float, kind: str, not_before: float = 0.0) -> float:
        end = self.queue_copy((layer, e), self.copy_sec, kind, issued, not_before)
        if not self.opt.whole_layer:  # a whole-layer method streams, it keeps no slots
            self.transport.load(layer, e)
        if kind == "demand":
            self.stats.demand_bytes += self.expert_bytes
        else:
            self.stats.prefetch_bytes += self.expert_bytes
        self.stats.h2d_bytes += self.expert_bytes
        self.landing[(layer, e)] = end
        return end

    def _prefetch(self, layer: int, guess: set[int]) -> None:
        """Queue the next MoE layer's guessed experts that are not resident."""
        moe = self.shape.moe_layers
        pos = moe.index(layer)
        if pos + 1 >= len(moe):
            return
        target = moe[pos + 1]
        self.pending_guess[target] = set(guess)
        self.prefetch_experts(target, sorted(guess))

    # --- results -------------------------------------------------------------------------
    def belady_decode_bytes(self) -> float:
        """Bytes a clairvoyant cache with this run's slots (and starting residency) would
        still move for the experts this run's decode forwards needed; a whole-layer method
        has no per-layer slots to keep, so its own misses stand in."""
        if self.opt.whole_layer or not self.opt.reuse:
            steps = [s for s in self.stats.steps if not s.prefill]
            return float(sum(s.missed_bytes for s in steps))
        total = 0
        for layer, stream in self.accesses.items():
            misses = belady_misses(
                [needed for needed, _ in stream], self.opt.slots_per_layer, self._warm(layer, None)
            )
            total += sum(m for m, (_, decode) in zip(misses, stream, strict=True) if decode)
        return float(total * self.expert_bytes)

    def metrics(self) -> dict[str, float]:
        """Run metrics; per-step ones average the decode steps (prefills excluded)."""
        st = self.stats
        steps = [s for s in st.steps if not s.prefill and not s.draft] or st.steps
        hit = [s.hits / s.needed for s in steps if s.needed]
        covered = [s.covered / s.needed for s in steps if s.needed]
        decode_steps = [s for s in st.steps if not s.prefill]  # verify and draft forwards alike
        wasted = st.prefetch_wasted_bytes + len(self.prefetched_unused) * self.expert_bytes
        end = max(self.clock.now, self.link.idle_at)
        out = {
            "h2d_bytes": st.h2d_bytes,
            "h2d_demand_bytes": st.demand_bytes,
            "h2d_prefetch_bytes": st.prefetch_bytes,
            "expert_hit_frac": float(np.mean(hit)) if hit else 1.0,
            "expert_covered_frac": float(np.mean(covered)) if covered else 1.0,
            "stall_sec": self.clock.stall_sec,
            "link_busy_frac": self.link.busy_sec / end if end > 0 else 0.0,
            "compute_busy_sec": self.clock.compute_busy_sec,
            "missed_bytes": st.missed_bytes,
            # totals over decode forwards; bench/metrics.bound_metrics divides by emitted tokens
            "decode_compute_sec_total": float(sum(s.compute_sec for s in decode_steps)),
            "decode_draft_compute_sec_total": float(
                sum(s.compute_sec for s in decode_steps if s.draft)
            ),
            "decode_missed_bytes_total": float(sum(s.missed_bytes for s in decode_steps)),
            "decode_belady_bytes_total": self.belady_decode_bytes(),
        }
        if self.clock.host_sec:  # only where the profile charges host work (older records lack it)
            out["host_sec"] = self.clock.host_sec
        out |= self.decode_split  # a real CPU run: decode seconds by part, wall and modeled
        if self.opt.prefetch or st.prefetch_issued:
            out |= {
                "prefetch_precision_frac": st.guessed_right / st.guessed if st.guessed else 0.0,
                "prefetch_recall_frac": st.guessed_right / st.needed_after_guess
                if st.needed_after_guess
                else 0.0,
                "prefetch_issued": st.prefetch_issued,
                "prefetch_used_frac": st.prefetch_used / st.prefetch_issued
                if st.prefetch_issued
                else 0.0,
                "prefetch_wasted_bytes": wasted,
            }
        return out
