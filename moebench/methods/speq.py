"""`speq`: MoE-SpeQ on the offload engine (speq/ holds the parts).

The device holds the non-expert weights, the KV cache, the INT4 draft of every routed expert
and as many FP16 expert slots as the budget leaves. Each cycle the draft proposes k tokens
(k from the governor), its routers fill the lookahead buffer, the orchestrator prefetches the
predicted FP16 experts, and the target verifies the k drafts in one grouped forward.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from moebench.bench.sampling import GREEDY, TokenChooser
from moebench.engine.budget import draft_expert_bytes
from moebench.engine.experts_impl import engine_installed
from moebench.engine.offload import EngineOptions
from moebench.errors import ConfigError
from moebench.methods.offload import EngineMethod
from moebench.models.corpora import calibration_windows
from moebench.models.shape import BYTES_PER_PARAM
from moebench.speq.cycle_costs import CycleCosts
from moebench.speq.decode import speculative_decode
from moebench.speq.draft import Draft, routing_fidelity
from moebench.speq.draft_side import DraftSide
from moebench.speq.governor import Governor
from moebench.speq.transcript import SequenceTranscript, TranscriptRecorder, replay_sequence


class SpeQ(EngineMethod):
    def __init__(self, setup, loaded, costs):
        super().__init__(setup, loaded, costs)
        opt = self.opt
        if self.draft_source == "resident":
            self.draft = self.engine.draft.resident  # the target on its resident FP16 experts
            self.fidelity = None  # measured during the run (it depends on what is resident)
        else:
            self.draft = Draft(
                loaded,
                opt.quant,
                calibration=calibration_windows(loaded, 16, 128, seed=1),
                bits=opt.draft_bits,
            )
            self.fidelity = routing_fidelity(
                loaded, self.draft, calibration_windows(loaded, 4, 128, 2, "valid")
            )
        if self.draft_source == "int4_cached":
            if not self.engine.transport.models_draft_copies:
                raise ConfigError(
                    "method.options.draft",
                    "int4_cached",
                    "int4 or resident on backend=real (the real transport keeps the draft's "
                    "experts on the device; int4_cached is modeled on backend=virtual only)",
                )
            self.plan["draft_slots_per_layer"] = self.draft_slots
        self.plan["int4_share_of_expert_memory"] = self._int4_share()
        self.orchestrator = self.engine.draft.orchestrator
        self.cycle_costs = CycleCosts(
            costs, self.engine, self.plan["slots_per_layer"], self.sequential_verify
        )
        self.t_draft_token = self.cycle_costs.draft_token_sec
        cc = self.cycle_costs
        self.governor = Governor(
            t_draft=cc.draft_sec,
            t_verify=cc.verify_sec,
            t_pcie_new=cc.pcie_new_sec,
            t_pcie_init=costs.transfer_sec(costs.shape.expert_bytes),
            k_min=opt.k_min,
            k_max=opt.k_max,
            ttft_budget_sec=opt.ttft_budget_sec,
            fixed_k=opt.fixed_k,
            objective=opt.governor,
            t_io=cc.cycle_io_sec,
            overlap=bool(costs.hw.copies_overlap_compute),
            verify_stops_early=self.sequential_verify,
            ttft_profile=opt.resolved_ttft_profile,
        )
        cc.start_run()  # after the offline profile
        self.cycles = []
        self._verify_steps = None  # verify forwards so far in the current cycle (None outside one)
        # The first live run of a point writes its cycle transcript (speq/transcript.py);
        # record_trace writes the target's forwards from it (Transcript.target_trace).
        self.record_routing = False  # no per-step Steps: the transcript holds the routing
        self._transcribes = setup.recording or setup.record_trace
        self.transcript = None  # the recorder, from the first live sequence (`generate`)

    def engine_extras(self, shape) -> dict:
        """The draft side the engine runs: how draft kernels are charged, an offloaded draft's
        INT4 cache, a resident draft's routing, and the orchestrator's prefetch mode."""
        bits = self.opt.draft_bits
        if self.draft_source == "resident":
            per_param = BYTES_PER_PARAM  # the draft reads FP16 slots
        else:  # charged at its true size (budget.draft_expert_bytes)
            per_param = draft_expert_bytes(shape, bits) / shape.expert_params
        cached = self.draft_source == "int4_cached"
        return {
            "draft": DraftSide(
                per_param,
                self.opt.prefetch,
                cache_slots=self.draft_slots if cached else None,
                cache_expert_bytes=draft_expert_bytes(shape, bits) if cached else 0.0,
                resident_of=self.loaded if self.draft_source == "resident" else None,
                missing=self.opt.draft_missing,
            )
        }

    @property
    def draft_source(self) -> str:
        """`int4`: every INT4 expert on the device (paper); `int4_cached`: INT4 experts in host
        memory behind `draft_slots` device slots per layer; `resident`: the target on its
        resident FP16 experts drafts, no INT4 copies held."""
        return self.opt.draft

    @cached_property
    def draft_slots(self) -> int:
        shape = self.costs.shape
        slots = self.opt.draft_slots
        if slots is None:
            slots = min(2 * shape.top_k, shape.num_experts)
        if not shape.top_k <= slots <= shape.num_experts:
            raise ConfigError(
                "method.options.draft_slots",
                slots,
                f"an integer in {shape.top_k}..{shape.num_experts}",
            )
        return slots

    def _int4_share(self) -> float:
        """Share of the device's expert memory (INT4 draft + FP16 slots) that the draft holds."""
        fp16 = (
            self.plan["slots_per_layer"]
            * len(self.costs.shape.moe_layers)
            * self.costs.shape.expert_bytes
            / 1e9
        )
        return (
            self.plan["draft_gb"] / (self.plan["draft_gb"] + fp16)
            if self.plan["draft_gb"] + fp16
            else 0.0
        )

    def engine_options(self, shape):
        held = {"int4": shape.num_experts, "int4_cached": self.draft_slots, "resident": 0}[
            self.draft_source
        ]
        draft_bytes = draft_expert_bytes(shape, self.opt.draft_bits) * held * len(shape.moe_layers)
        options = EngineOptions(
            slots_per_layer=0, policy=self.opt.policy, grouped=self.opt.grouped_verify
        )
        return options, draft_bytes, None

    @property
    def sequential_verify(self) -> bool:
        """`verify=sequential`: one target forward per drafted token, stopping at the first
        rejection (only a token's own experts need slots at once), instead of one grouped
        forward over all k+1 (`verify=grouped`, the paper)."""
        return self.opt.verify == "sequential"

    # --- decode-loop hooks ---------------------------------------------------------------------
    def begin_forward(self, tokens, context):
        if self._verify_steps is not None:  # a verify forward of the current cycle
            if self.sequential_verify:  # a grouped verify's lookahead is the whole buffer
                self.orchestrator.verifying(self._verify_steps)
            self._verify_steps += 1
        self.engine.begin_forward(tokens, context)
        if self.transcript:
            self.transcript.begin_forward(tokens, context, draft=False)

    def end_forward(self):
        seconds = self.engine.end_forward()
        if self.transcript:
            self.transcript.end_forward()
        return seconds

    def begin_cycle(self, k):
        self._cycle_start = self.engine.now()
        self._verify_steps = 0
        self._cycle_mark = self.cycle_costs.mark()
        self.orchestrator.begin_cycle(k, self.t_draft_token)

    def begin_draft_forward(self, context):
        self.engine.begin_forward(1, context, draft=True)
        if self.transcript:
            self.transcript.begin_forward(1, context, draft=True)

    def end_draft_forward(self, i):
        self.engine.end_forward()
        if self.transcript:
            self.transcript.end_forward()
        self.orchestrator.after_draft_token(i)

    def end_cycle(self, k, accepted):
        seconds = self.engine.now() - self._cycle_start
        self._verify_steps = None
        self.governor.observe(k, accepted)
        self.cycle_costs.observe(k, accepted, self._cycle_mark)
        if self.transcript:
            self.transcript.end_cycle(k, accepted)
        return seconds

    def generate(self, prompt_ids, new_tokens, chooser: TokenChooser = GREEDY):
        if self._transcribes and self.transcript is None:  # live only: a replay reads one
            self.transcript = TranscriptRecorder(self.engine)
        if self.transcript:
            self.transcript.begin_sequence()
        with engine_installed(self.loaded, self.engine):
            result = speculative_decode(
                self.loaded,
                self.draft,
                prompt_ids,
                new_tokens,
                self.governor.choose,
                hooks=self,
                chooser=chooser,
                sequential_verify=self.sequential_verify,
            )
        if self.transcript:
            self.transcript.end_sequence(result.tokens)
        self.cycles += result.cycles
        return result.tokens, self._step_seconds(result.cycles, result.prefill_sec, new_tokens)

    def replay_transcript(self, seq: SequenceTranscript, layers, new_tokens: int):
        """One sequence from a cycle transcript instead of the models: the same hook and
        engine calls as `generate` (raises TranscriptMismatch at another k)."""
        cycles, prefill_sec = replay_sequence(
            seq,
            layers,
            self,
            self.engine,
            self.governor.choose,
            new_tokens,
            self.sequential_verify,
        )
        self.cycles += cycles
        return seq.tokens, self._step_seconds(cycles, prefill_sec, new_tokens)

    @staticmethod
    def _step_seconds(cycles, prefill_sec: float, new_tokens: int) -> list[float]:
        """Per emitted token: a cycle's time is spread over the tokens it adds."""
        step_sec = [prefill_sec]
        for cycle in cycles:
            kept = min(cycle.accepted + 1, new_tokens - len(step_sec))
            step_sec += [cycle.seconds / kept] * kept
        return step_sec

    def metrics(self):
        out = self.engine.metrics()
        accepted = [c.accepted for c in self.cycles]
        ks = [c.k for c in self.cycles]
        # [k_max] per draft position: cycles that reached it and cycles that accepted it
        reached = np.zeros(self.governor.k_max)
        taken = np.zeros(self.governor.k_max)
        for c in self.cycles:
            for j in range(min(c.k, c.accepted + 1)):
                reached[j] += 1
                taken[j] += j < c.accepted
        verify = [s for s in self.engine.stats.steps if not s.draft and not s.prefill]
        layers = len(self.costs.shape.moe_layers)
        out |= {
            "accept_len_tokens_mean": float(np.mean(accepted)) if accepted else 0.0,
            "tokens_per_cycle_mean": float(np.mean(accepted) + 1) if accepted else 0.0,
            "draft_accept_frac": float(sum(accepted) / sum(ks)) if ks else 0.0,
            "k_tokens_mean": float(np.mean(ks)) if ks else 0.0,
            "cycles": len(self.cycles),
            "distinct_experts_per_verify_layer": float(np.mean([s.needed for s in verify]) / layers)
            if verify
            else 0.0,
            **{
                f"accept_frac_pos{j + 1}": float(taken[j] / reached[j])
                for j in range(len(reached))
                if reached[j]
            },
            **{f"draft_{k}": float(v) for k, v in (self.fidelity or self.draft.fidelity()).items()},
        }
        if self.engine.draft.cache is not None:
            draft = self.engine.draft.cache.metrics()
            out["decode_belady_bytes_total"] += draft.pop("draft_belady_bytes")
            out |= draft
        return out

    def details(self):
        return super().details() | {
            "governor": {
                "k_min": self.governor.k_min,
                "k_max": self.governor.k_max,
                "ttft_budget_sec": self.governor.ttft_budget_sec,
                "ema": self.governor.ema,
                "prior": self.governor.prior,
                "objective": self.governor.objective,
                "ttft_profile": self.governor.ttft_profile,
                "k_slo": self.governor.k_slo(),
                "offline_profile_sec": self.governor.profile_sec,
                "k_chosen": self.governor.history[:512],
            },
            "draft": {
                "quant": self.draft.method,
                "group": self.draft.group,
                "bits": self.draft.bits,
                "source": self.draft_source,
                "missing": getattr(self.draft, "missing", None),
            },
        }
