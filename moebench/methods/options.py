"""Every method's options as a typed dataclass: the one place their defaults are written.

`method.options` in a config is a plain mapping (and stays one in the run key, so a default
added here never changes an older record's key). `methods/registry.py` validates it into
the method's dataclass before any model is built: an unknown key, a wrong type or a value
out of range ends in one line naming `method.options.<key>`. Reports read defaults from
here too (`options_of`). A default that depends on the model (e.g. topk's K' = k - 1) is
None here and resolved by the method, which records what it used in `method_details`.

This module imports nothing heavy: the command line loads it before torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from moebench.engine.policy_names import ALL as POLICY_NAMES
from moebench.errors import ConfigError
from moebench.typed import int_in, positive

Variant = Literal["sm", "sc"]
# every cache policy's name (engine/policy_names.py): static and belady need the whole
# trace (a replay), lookahead is MoE-SpeQ's drafted-routing eviction
PolicyName = Literal[POLICY_NAMES]
# the model's own routing, whatever the cache holds: every cache method shares its recording
TARGET_ROUTING = {"routing": "target"}
SPEQ_TRANSCRIPT = "speq_transcript"  # a MoE-SpeQ cycle transcript, not a routing recording


@dataclass(frozen=True)
class EngineMethodOptions:
    """Options every offload-engine method takes."""

    # one launch per MoE layer for all its routed experts (a grouped GEMM), not one per expert
    fused_experts: bool = False

    def routing_identity(self) -> dict[str, Any] | None:
        """What, besides the model and workload, decides the routing this method's runs see:
        runs that agree on it share one routing recording (recordings.py). None: the routing
        depends on what is resident, so the method always runs the model."""
        return TARGET_ROUTING


@dataclass(frozen=True)
class CachedMethodOptions(EngineMethodOptions):
    """Options of a method that keeps experts in per-layer device slots."""

    # which resident expert leaves when a slot is needed (engine/policies.py); static and
    # belady need the future: a known trace (workload.prompts=trace)
    policy: PolicyName = "lru"
    drafts: ClassVar[bool] = False  # only a drafting method has routing to look ahead on

    def check_run(self, kind: str) -> None:
        if self.policy in ("static", "belady") and kind != "replay":
            raise ConfigError(
                "method.options.policy",
                self.policy,
                "an online policy (static and belady need a known trace: workload.prompts=trace)",
            )
        if self.policy == "lookahead" and not self.drafts:
            raise ConfigError(
                "method.options.policy", self.policy, "an online policy (lookahead is MoE-SpeQ's)"
            )


@dataclass(frozen=True)
class MixtralOffloadingOptions(CachedMethodOptions):
    """Per-layer expert cache (Eliseev & Mazur 2023) under a replacement policy."""

    # sm: same total memory as MoE-SpeQ (no draft reserved, so more slots); sc: same expert
    # cache as MoE-SpeQ (the INT4 draft's bytes are reserved)
    variant: Variant = "sm"


@dataclass(frozen=True)
class NextLayerPrefetchOptions(CachedMethodOptions):
    """mixtral_offloading plus layer l+1's router applied to layer l's hidden state."""

    variant: Variant = "sm"
    issue: Literal["sooner", "later"] = "sooner"  # before layer l's experts, or after them


@dataclass(frozen=True)
class TopKOptions(CachedMethodOptions):
    """Lossy: each router keeps only its K' best experts."""

    top_k: int | None = None  # None: one fewer than the model was trained with
    slo_experts: float | None = None  # a quality floor in experts; K' is it rounded up

    @property
    def chosen_top_k(self) -> int | None:
        """K': the quality floor rounded up, else as given; None means one fewer than trained."""
        if self.slo_experts is not None:
            return math.ceil(self.slo_experts - 1e-9)
        return self.top_k

    def routing_identity(self) -> dict[str, Any]:
        return {"routing": "topk", "top_k": self.chosen_top_k}  # K' alone decides the routing

    def __post_init__(self) -> None:
        if self.top_k is not None:
            int_in("method.options.top_k", self.top_k, 1)
        if self.slo_experts is not None:
            positive("method.options.slo_experts", self.slo_experts)


@dataclass(frozen=True)
class SpeqOptions(CachedMethodOptions):
    """MoE-SpeQ: the draft, the governor and the verification (speq/)."""

    # the FP16 cache's eviction: lookahead (the paper's, by the drafted routing), or any
    # online policy (transition and learned also keep what the draft names first)
    policy: PolicyName = "lookahead"
    drafts: ClassVar[bool] = True

    quant: Literal["gptq", "rtn"] = "gptq"  # gptq (calibrated, the paper) | rtn (ablation)
    draft_bits: int = 4  # fewer bits: a worse draft, charged at its true size
    # int4: every INT4 expert on the device (the paper); int4_cached: INT4 experts in host
    # memory behind `draft_slots` device slots per layer; resident: the target drafts on its
    # resident FP16 experts, no INT4 copies held
    draft: Literal["int4", "int4_cached", "resident"] = "int4"
    draft_slots: int | None = None  # int4_cached: None = min(2 x top_k, experts)
    draft_missing: Literal["renormalize", "drop"] = "renormalize"  # resident: unheld experts
    k_min: int = 1
    k_max: int = 8
    fixed_k: int | None = None  # an integer fixes k (the governor ablation)
    ttft_budget_sec: float | None = 0.5  # the paper's example TTFT budget; caps k (k_SLO)
    # roofline (the paper) | bytes (seconds per emitted token with every byte a cycle moves)
    governor: Literal["roofline", "bytes"] = "roofline"
    # online: k_SLO re-derived every cycle; offline: once, before the first token.
    # None: roofline's default is online, bytes' is offline
    ttft_profile: Literal["online", "offline"] | None = None
    prefetch: Literal[True, False, "next_token"] = True  # False: the "w/o async prefetch" ablation
    grouped_verify: bool = True  # False: one expert kernel per token (ablation)
    # grouped: one target forward over all k+1 (the paper); sequential: one per drafted
    # token, stopping at the first rejection
    verify: Literal["grouped", "sequential"] = "grouped"

    def routing_identity(self) -> dict[str, Any] | None:
        """What decides the models' computation besides the point: the draft's weights and the
        verify chunking. Its recording is a cycle transcript (speq/transcript.py), replayed by
        runs whose governor picks the same k every cycle; int4 and int4_cached compute the same
        draft and share it. A resident draft computes on what is cached: live (None)."""
        if self.draft == "resident":
            return None
        return {
            "routing": SPEQ_TRANSCRIPT,
            "quant": self.quant,
            "draft_bits": self.draft_bits,
            "verify": self.verify,
        }

    @property
    def live_reason(self) -> str:
        return "MoE-SpeQ's resident draft computes on the resident experts: it needs the cache"

    def __post_init__(self) -> None:
        int_in("method.options.k_min", self.k_min, 1)
        int_in("method.options.k_max", self.k_max, self.k_min)
        if self.fixed_k is not None:
            int_in("method.options.fixed_k", self.fixed_k, 1, self.k_max)
        int_in("method.options.draft_bits", self.draft_bits, 2, 8)
        if self.draft_slots is not None:
            int_in("method.options.draft_slots", self.draft_slots, 1)
        if self.ttft_budget_sec is not None:
            positive("method.options.ttft_budget_sec", self.ttft_budget_sec)

    @property
    def resolved_ttft_profile(self) -> str:
        """The TTFT profile the governor runs: as given, else its objective's default."""
        if self.ttft_profile is not None:
            return self.ttft_profile
        return "offline" if self.governor == "bytes" else "online"


@dataclass(frozen=True)
class PrismOptions(CachedMethodOptions):
    """MoE-Prism: N sub-experts per expert, a partition, a gate, K active sub-experts."""

    n: int = 4
    partition: Literal["anneal", "random", "contiguous", "kmeans"] = "anneal"
    k_cost: int | None = None  # the objective's K smallest group masses; None = n - 1
    iters: int = 300  # simulated-annealing proposals per expert (paper: 100K on GPUs)
    gate: Literal["lg", "cg", "lg_ft"] = "lg"  # LG w/o FT | Complex Gate | LG with router FT
    cg_pattern: list[int] | None = None  # cg: sub-experts per ranked expert (None: a default)
    ft_steps: int = 200  # lg_ft: Adam steps on the routers only
    ft_lr: float = 1e-3
    active_k: int | None = None  # sub-experts per token; None = n x the original top-k
    slo_experts: float | None = None  # a quality floor in experts; active_k = n x it, rounded up

    def routing_identity(self) -> dict[str, Any]:
        """The carved model's sub-expert routing: every option but the kernel launch mode."""
        options = asdict(self)
        options.pop("fused_experts")
        options.pop("policy")  # what stays resident does not change the routing
        return {"routing": "prism", **options}

    def __post_init__(self) -> None:
        int_in("method.options.n", self.n, 1)
        int_in("method.options.iters", self.iters, 0)
        int_in("method.options.ft_steps", self.ft_steps, 1)
        positive("method.options.ft_lr", self.ft_lr)
        if self.k_cost is not None:
            int_in("method.options.k_cost", self.k_cost, 1, self.n)
        if self.active_k is not None:
            int_in("method.options.active_k", self.active_k, 1)
        if self.slo_experts is not None:
            positive("method.options.slo_experts", self.slo_experts)

    @property
    def resolved_k_cost(self) -> int:
        return self.n - 1 if self.k_cost is None else self.k_cost


@dataclass(frozen=True)
class CloudOptions:
    """MoE-Prism's quality-constrained serving scheduler, or a baseline (a simulation)."""

    policy: Literal["prism", "fifo", "fullbatch"] = "prism"
    # prism: the carved model runs any m sub-experts; original: m rounds up to whole experts
    granularity: Literal["prism", "original"] = "prism"
    n: int = 4  # sub-experts per expert
    b_max: int = 64  # the batch-full trigger, and every policy's largest batch
    t_max_x_slo: float = 0.5  # timeout trigger: the oldest request's wait, as a share of the SLO

    def __post_init__(self) -> None:
        int_in("method.options.n", self.n, 1)
        int_in("method.options.b_max", self.b_max, 1)
        positive("method.options.t_max_x_slo", self.t_max_x_slo)
