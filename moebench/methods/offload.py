"""Offloading baselines as engine configurations (engine/offload.py does the work).

- full_resident: every expert on the device; the compute bound and the output reference.
- hf_offload: transformers/accelerate device_map offload: a layer's experts all move when
  the layer runs, and compute waits for them; nothing is kept.
- ondemand: load each needed expert when its layer runs; no reuse across tokens.
- mixtral_offloading: per-layer LRU expert cache (Eliseev & Mazur 2023). Variants: `sc`
  (same cache as SpeQ: the draft's bytes are reserved too) and `sm` (same total memory).
- next_layer_prefetch: mixtral_offloading plus layer l+1's router applied to layer l's
  hidden state, prefetching the guess `sooner` (before layer l's experts) or `later`.
- topk: mixtral_offloading with fewer active experts than trained (K' < k; lossy).
"""

from __future__ import annotations

import numpy as np

from moebench.bench.decode import decode
from moebench.bench.sampling import GREEDY, TokenChooser
from moebench.engine.budget import int4_expert_bytes, plan_slots
from moebench.engine.clock import chrome_trace
from moebench.engine.costs import CostModel
from moebench.engine.experts_impl import engine_installed
from moebench.engine.offload import EngineOptions, OffloadEngine
from moebench.engine.trace import belady_futures, popularity, recorded_guess, replay
from moebench.engine.transport import make_transport
from moebench.errors import ConfigError
from moebench.methods.options import TARGET_ROUTING
from moebench.methods.registry import MethodSetup
from moebench.models.routing import next_layer_ids
from moebench.prism.serving_costs import decode_point


class EngineMethod:
    """A method = one engine configuration + the shared decode loop.

    Built from a `MethodSetup` (its typed options, budget and workload), a loaded model
    (None for a trace replay) and the cost model. Decode runs call `generate`, replays
    `replay`; every run ends with `metrics()` and `details()` for the record."""

    @property
    def clock_label(self) -> str:
        return self.engine.clock_label

    def __init__(self, setup: MethodSetup, loaded, costs: CostModel):
        self.setup, self.opt, self.loaded, self.costs = setup, setup.options, loaded, costs
        self.steps = []  # every forward's Step (routing), for trace recording
        self.record_routing = setup.record_trace or setup.recording
        # the target's routing is what next_layer_prefetch replays: keep its guesses too
        self.record_guesses = setup.recording and setup.options.routing_identity() == TARGET_ROUTING
        shape = costs.shape
        max_tokens = setup.workload.prompt_len + setup.workload.new_tokens
        options, draft_bytes, min_slots = self.engine_options(shape)
        budget = None if self.resident() else setup.budget_gb
        if budget is None and not self.resident():
            raise ConfigError("method.budget_gb", None, f"a budget in GB for {setup.name}")
        self.plan = plan_slots(
            shape,
            budget,
            max_tokens,
            draft_bytes,
            min_slots,
            layers_held=1 if options.whole_layer else None,
        )
        options.slots_per_layer = self.plan["slots_per_layer"]
        options.fused_experts = self.opt.fused_experts
        transport = make_transport(
            setup.backend,
            setup.device,
            loaded,
            options.slots_per_layer,
            options.whole_layer,
            setup.budget_gb,
        )
        predictor = self.next_layer_guess if options.prefetch else None
        self.engine = OffloadEngine(
            costs,
            options,
            keep_spans=setup.timeline,
            transport=transport,
            predictor=predictor,
            **self.engine_extras(shape),
        )

    # --- what subclasses choose ------------------------------------------------------------
    def resident(self) -> bool:
        return False

    def engine_options(self, shape) -> tuple[EngineOptions, float, int | None]:
        """Engine options, bytes reserved for a draft, minimum slots per layer."""
        raise NotImplementedError

    def engine_extras(self, shape) -> dict:
        """Further OffloadEngine arguments (MoE-SpeQ gives its draft side here)."""
        return {}

    # --- shared --------------------------------------------------------------------------------
    def next_layer_guess(self, layer: int, hidden) -> set[int]:
        """Layer l+1's router applied to layer l's MoE input: the experts it would pick. In a
        replay of a routing recording, `hidden` is the guess the live run recorded."""
        if isinstance(hidden, np.ndarray):
            return recorded_guess(hidden)
        ids = next_layer_ids(self.loaded, layer, hidden)
        return set() if ids is None else set(ids.flatten().tolist())

    def generate(
        self, prompt_ids, new_tokens: int, chooser: TokenChooser = GREEDY
    ) -> tuple[list[int], list[float]]:
        step_sec: list[float] = []

        def after(step):
            step_sec.append(self.engine.end_forward())
            self.steps.append(step)

        with engine_installed(self.loaded, self.engine):
            tokens = decode(
                self.loaded,
                prompt_ids,
                new_tokens,
                before_step=self.engine.begin_forward,
                on_step=after,
                record_routing=self.record_routing,
                chooser=chooser,
                record_guesses=self.record_guesses,
            )
        return tokens, step_sec

    def replay_prompt(self, trace) -> list[float]:
        """One prompt's forwards from a routing recording, through the engine this method
        built (the same calls in the same order as `generate` makes): its step seconds."""
        return replay(trace, self.engine)

    def replay(self, trace) -> list[float]:
        """Drive a fresh engine with a recorded routing trace instead of the model."""
        self.engine = OffloadEngine(
            self.costs,
            self.engine.opt,
            keep_spans=self.setup.timeline,
            futures=belady_futures(trace),
            popularity=popularity(trace),
        )
        return replay(trace, self.engine)

    def timeline(self) -> dict:
        return chrome_trace(self.engine.clock.spans, self.engine.link.history)

    def metrics(self) -> dict[str, float]:
        return self.engine.metrics()

    def details(self) -> dict:
        return {"memory_plan": self.plan, "engine": vars(self.engine.opt)}


class FullResident(EngineMethod):
    def resident(self):
        return True

    def engine_options(self, shape):
        return EngineOptions(slots_per_layer=shape.num_experts), 0.0, None


class HfOffload(EngineMethod):
    def engine_options(self, shape):
        return (
            EngineOptions(slots_per_layer=shape.num_experts, whole_layer=True),
            0.0,
            shape.num_experts,
        )


class OnDemand(EngineMethod):
    def engine_options(self, shape):
        return EngineOptions(slots_per_layer=shape.top_k, reuse=False), 0.0, None


def draft_reservation(variant: str, shape) -> float:
    """Bytes a baseline reserves for MoE-SpeQ's INT4 draft: all of them for variant `sc`
    (same expert cache as SpeQ), none for `sm` (same total memory, so more cache slots)."""
    if variant == "sc":
        return int4_expert_bytes(shape) * shape.num_experts * len(shape.moe_layers)
    return 0.0


class MixtralOffloading(EngineMethod):
    def engine_options(self, shape):
        reserved = draft_reservation(self.opt.variant, shape)
        return EngineOptions(slots_per_layer=0, policy=self.opt.policy), reserved, None


class NextLayerPrefetch(EngineMethod):
    def engine_options(self, shape):
        reserved = draft_reservation(self.opt.variant, shape)
        options = EngineOptions(slots_per_layer=0, policy=self.opt.policy, prefetch=self.opt.issue)
        return options, reserved, None


class TopK(EngineMethod):
    """Lossy: each router keeps only its K' best experts (all resident when budget_gb is null)."""

    def resident(self):
        return self.setup.budget_gb is None

    def __init__(self, setup, loaded, costs):
        opt = setup.options
        top_k = opt.chosen_top_k
        if top_k is None:
            top_k = max(1, costs.shape.top_k - 1)
        if not 1 <= top_k <= costs.shape.top_k:
            raise ConfigError(
                "method.options.top_k", top_k, f"an integer in 1..{costs.shape.top_k}"
            )
        for layer in loaded.layers if loaded is not None else []:  # none in a replay
            layer.router.top_k = top_k
        self.top_k = top_k
        super().__init__(setup, loaded, costs)

    def details(self):
        """The operating point's decode cost at K' experts, for quality-against-cost curves."""
        return super().details() | {"operating_point": decode_point(self.costs, self.top_k)}

    def engine_options(self, shape):
        return EngineOptions(slots_per_layer=0, policy=self.opt.policy), 0.0, None
