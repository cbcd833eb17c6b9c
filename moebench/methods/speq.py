"""`speq`: MoE-SpeQ on the offload engine (speq/ holds the parts).

The device holds the non-expert weights, the KV cache, the INT4 draft of every routed expert
and as many FP16 expert slots as the budget leaves. Each cycle the draft proposes k tokens
(k from the governor), its routers fill the lookahead buffer, the orchestrator prefetches the
predicted FP16 experts, and the target verifies the k drafts in one grouped forward.
"""

from __future__ import annotations

import numpy as np
import torch

from moebench.bench.sampling import GREEDY, TokenChooser
from moebench.engine.budget import draft_expert_bytes
from moebench.engine.costs import BYTES_PER_PARAM
from moebench.engine.experts_impl import engine_installed
from moebench.engine.offload import EngineOptions
from moebench.errors import UserError
from moebench.methods.offload import EngineMethod, _option
from moebench.speq.decode import speculative_decode
from moebench.speq.draft import Draft, routing_fidelity
from moebench.speq.governor import Governor, expected_loads
from moebench.speq.orchestrator import Orchestrator
from moebench.speq.resident_draft import MISSING, ResidentDraft


def calibration_windows(loaded, count: int, length: int, seed: int, split: str = "train") -> list[torch.Tensor]:
    """Windows of the offline corpus (train split for calibration, valid for fidelity);
    seeded random ids for a model without a tokenizer."""
    gen = torch.Generator().manual_seed(seed)
    if loaded.tokenizer is None:
        return [torch.randint(0, loaded.vocab_size, (1, length), generator=gen) for _ in range(count)]
    from moebench.models.corpora import encoded_splits, load_corpus

    train, valid = encoded_splits(load_corpus(), loaded.tokenizer)
    ids = torch.from_numpy((train if split == "train" else valid).astype(np.int64))
    if len(ids) <= length:
        raise UserError(f"model {loaded.name}: its tokenizer encodes the corpus's {split} split to "
                        f"{len(ids)} tokens, fewer than the {length} MoE-SpeQ calibrates on")
    starts = torch.randint(0, len(ids) - length, (count,), generator=gen).tolist()
    return [ids[s:s + length].unsqueeze(0) for s in starts]


class SpeQ(EngineMethod):
    def __init__(self, run, loaded, costs):
        super().__init__(run, loaded, costs)
        opt = run.method.options
        quant = _option(run, "quant", "gptq", ("gptq", "rtn"))
        bits = int(opt.get("draft_bits", 4))  # charged at its true size (budget.draft_expert_bytes)
        if self.resident_draft:
            self.engine.int4_bytes_per_param = BYTES_PER_PARAM  # the draft reads FP16 slots
            self.draft = ResidentDraft(loaded, self.engine, _option(run, "draft_missing", "renormalize", MISSING))
            self.fidelity = None  # measured during the run (it depends on what is resident)
        else:
            self.engine.int4_bytes_per_param = draft_expert_bytes(costs.shape, bits) / costs.shape.expert_params
            self.draft = Draft(loaded, quant, calibration=calibration_windows(loaded, 16, 128, seed=1), bits=bits)
            self.fidelity = routing_fidelity(loaded, self.draft, calibration_windows(loaded, 4, 128, 2, "valid"))
        self.orchestrator = Orchestrator(self.engine, phases=bool(opt.get("prefetch", True)))
        self.engine.draft_listener = self.orchestrator.on_draft_layer
        self.t_draft_token = self._draft_token_sec()
        self.miss_rate = 0.5  # EMA of the share of verify-time experts not resident when needed
        self.governor = Governor(
            t_draft=lambda k: k * self.t_draft_token, t_verify=self._verify_sec,
            t_pcie_new=self._pcie_new_sec,
            t_pcie_init=costs.transfer_sec(costs.shape.expert_bytes),
            k_min=int(opt.get("k_min", 1)), k_max=int(opt.get("k_max", 8)),
            ttft_budget_sec=opt.get("ttft_budget_sec", 0.5),
            fixed_k=opt.get("fixed_k"))
        self.cycles = []

    @property
    def resident_draft(self) -> bool:
        """`draft=resident`: the target on its resident experts drafts, no INT4 copies held."""
        return _option(self.run, "draft", "int4", ("int4", "resident")) == "resident"

    def engine_options(self, shape):
        bits = int(self.run.method.options.get("draft_bits", 4))
        per_expert = 0.0 if self.resident_draft else draft_expert_bytes(shape, bits)
        draft_bytes = per_expert * shape.num_experts * len(shape.moe_layers)
        grouped = bool(self.run.method.options.get("grouped_verify", True))
        return EngineOptions(slots_per_layer=0, policy="lookahead", grouped=grouped), draft_bytes, None

    # --- profiled costs (from the cost model: compute only, experts resident) ------------------
    def _non_expert_layer_sec(self, n: int) -> float:
        """Attention, router and shared experts of one MoE layer for n tokens."""
        c, s = self.costs, self.costs.shape
        per_layer = c.kernel_sec(c.attention_kernel(n, 256)) + c.kernel_sec(c.router_kernel(n))
        if s.shared_intermediate:
            per_layer += c.kernel_sec(c.mlp_kernel(n, s.shared_intermediate, "shared"))
        return per_layer

    def _draft_token_sec(self) -> float:
        c, s = self.costs, self.costs.shape
        per_layer = self._non_expert_layer_sec(1)
        expert = c.kernel_sec(c.expert_kernel(1, bytes_per_param=self.engine.int4_bytes_per_param))
        return len(s.moe_layers) * (per_layer + s.top_k * expert) + c.kernel_sec(c.lm_head_kernel(1))

    def _distinct(self, n: int) -> float:
        """Expected distinct experts per layer among n tokens (independent top-k routing)."""
        s = self.costs.shape
        return s.num_experts * (1 - (1 - s.top_k / s.num_experts) ** n)

    def _pcie_new_sec(self, k: int) -> float:
        """Eq. 3's T_pcie,new: the experts a verify of k+1 tokens needs (their union grows
        sublinearly in k) that are not resident, at the observed miss rate, plus what thrashes
        when the union outgrows the slots (governor.expected_loads), over the link."""
        c = self.costs
        per_layer = expected_loads(self._distinct(k + 1), self.plan["slots_per_layer"], self.miss_rate)
        new = per_layer * len(c.shape.moe_layers)
        return c.hw.h2d_latency_sec + new * c.shape.expert_bytes / c.hw.h2d_bytes_per_sec

    def _verify_sec(self, n: int) -> float:
        c, s = self.costs, self.costs.shape
        distinct = self._distinct(n)
        per_layer = self._non_expert_layer_sec(n)
        per_layer += distinct * c.kernel_sec(c.expert_kernel(max(1, round(n * s.top_k / distinct))))
        return len(s.moe_layers) * per_layer + c.kernel_sec(c.lm_head_kernel(1))

    # --- decode-loop hooks ---------------------------------------------------------------------
    def begin_forward(self, tokens, context):
        self.engine.mode = "target"
        self.engine.begin_forward(tokens, context)

    def end_forward(self):
        return self.engine.end_forward()

    def begin_cycle(self, k):
        self._cycle_start = self.engine.now()
        self.orchestrator.begin_cycle(k, self.t_draft_token)

    def begin_draft_forward(self, context):
        self.engine.mode = "draft"
        self.engine.begin_forward(1, context)

    def end_draft_forward(self, i):
        self.engine.end_forward()
        self.engine.mode = "target"
        self.orchestrator.after_draft_token(i)

    def end_cycle(self, k, accepted):
        step = self.engine._step
        self.engine.end_forward()  # the verify forward
        seconds = self.engine.now() - self._cycle_start
        self.governor.observe(k, accepted)
        if step.needed:
            self.miss_rate = 0.7 * self.miss_rate + 0.3 * (1 - step.hits / step.needed)
        return seconds

    def generate(self, prompt_ids, new_tokens, chooser: TokenChooser = GREEDY):
        with engine_installed(self.loaded, self.engine):
            result = speculative_decode(self.loaded, self.draft, prompt_ids, new_tokens,
                                        self.governor.choose, hooks=self, chooser=chooser)
        self.cycles += result.cycles
        step_sec = [result.prefill_sec]
        for cycle in result.cycles:  # a cycle's time is spread over the tokens it adds to the output
            kept = min(cycle.accepted + 1, new_tokens - len(step_sec))
            step_sec += [cycle.seconds / kept] * kept
        return result.tokens, step_sec

    def metrics(self):
        out = self.engine.metrics()
        accepted = [c.accepted for c in self.cycles]
        ks = [c.k for c in self.cycles]
        reached = np.zeros(8)
        taken = np.zeros(8)
        for c in self.cycles:
            for j in range(min(c.k, c.accepted + 1)):
                reached[j] += 1
                taken[j] += j < c.accepted
        verify = [s for s in self.engine.stats.steps if not s.draft and not s.prefill]
        layers = len(self.costs.shape.moe_layers)
        out |= {
            "accept_len_mean": float(np.mean(accepted)) if accepted else 0.0,
            "tokens_per_cycle_mean": float(np.mean(accepted) + 1) if accepted else 0.0,
            "draft_accept_frac": float(sum(accepted) / sum(ks)) if ks else 0.0,
            "k_mean": float(np.mean(ks)) if ks else 0.0,
            "cycles": len(self.cycles),
            "distinct_experts_per_verify_layer": float(np.mean([s.needed for s in verify]) / layers) if verify else 0.0,
            **{f"accept_frac_pos{j + 1}": float(taken[j] / reached[j]) for j in range(8) if reached[j]},
            **{f"draft_{k}": float(v) for k, v in (self.fidelity or self.draft.fidelity()).items()},
        }
        return out

    def details(self):
        return super().details() | {"governor": {"k_min": self.governor.k_min, "k_max": self.governor.k_max,
                                                 "ttft_budget_sec": self.governor.ttft_budget_sec,
                                                 "ema": self.governor.ema, "prior": self.governor.prior,
                                                 "k_chosen": self.governor.history[:512]},
                                    "draft": {"quant": self.draft.method, "group": self.draft.group,
                                              "bits": self.draft.bits,
                                              "source": "resident" if self.resident_draft else "int4",
                                              "missing": getattr(self.draft, "missing", None)}}
