"""C(batch, m): modeled seconds to serve one static batch at m active sub-experts per token.

MoE-Prism's cloud scheduler (paper section 5a) weighs queues by a one-time cost table
C(batch size, m). Without a GPU we build it from the cost model at the real model's sizes:
one fused MoE kernel per layer (as vLLM's fused_moe), which reads every sub-expert that at
least one token of the step uses (expected count under uniform routing, E'(1 - (1 - m/E')^T))
and does 2 m P_sub FLOPs per token. A batch is served statically: one prefill of all its
prompts, then `new_tokens - 1` decode iterations at growing context.

The original model is the same computation at whole-expert granularity: a request asking for
m sub-experts' worth of compute runs at ceil(m / N) experts.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache

from moebench.engine.costs import CostModel, Kernel
from moebench.models.shape import BYTES_PER_PARAM, ModelShape


def carved_shape(shape: ModelShape, n: int) -> ModelShape:
    """The sizes of the Prism model: experts x N, top-k x N, expert width / N (shared experts
    and everything else unchanged)."""
    return dataclasses.replace(
        shape,
        num_experts=shape.num_experts * n,
        top_k=shape.top_k * n,
        expert_intermediate=shape.expert_intermediate // n,
    )


class ServingCosts:
    """Batch service times of one model shape on one hardware profile."""

    def __init__(self, costs: CostModel, prompt_len: int, new_tokens: int):
        self.costs, self.prompt_len, self.new_tokens = costs, prompt_len, new_tokens
        self.shape = costs.shape

    def step_sec(
        self, tokens: int, seqs: int, attended_pairs: float, kv_read: float, active: int
    ) -> float:
        """One forward over `tokens` tokens of `seqs` sequences with `active` routed experts
        per token; `attended_pairs` query-key pairs and `kv_read` cached tokens read."""
        s, c = self.shape, self.costs
        kv = s.kv_elems_per_token
        attention = Kernel(
            "attention",
            2 * s.attention_params * tokens + 2 * attended_pairs * kv,
            (s.attention_params + kv_read * kv) * BYTES_PER_PARAM,
        )
        touched = s.num_experts * (1 - (1 - active / s.num_experts) ** tokens)
        moe = Kernel("fused_moe", 2 * s.expert_params * active * tokens, touched * s.expert_bytes)
        per_moe_layer = c.kernel_sec(moe) + c.kernel_sec(c.router_kernel(tokens))
        if s.shared_intermediate:
            per_moe_layer += c.kernel_sec(c.mlp_kernel(tokens, s.shared_intermediate, "shared"))
        dense_layers = s.num_layers - len(s.moe_layers)
        dense = (
            c.kernel_sec(c.mlp_kernel(tokens, s.dense_intermediate, "dense"))
            if dense_layers
            else 0.0
        )
        return (
            s.num_layers * c.kernel_sec(attention)
            + len(s.moe_layers) * per_moe_layer
            + dense_layers * dense
            + c.kernel_sec(c.lm_head_kernel(seqs))
        )

    @cache  # noqa: B019 - one table per instance, lives as long as the run
    def batch_sec(self, batch: int, active: int) -> tuple[float, float]:
        """(prefill seconds, decode seconds) for `batch` requests at `active` experts per token."""
        p = self.prompt_len
        prefill = self.step_sec(batch * p, batch, batch * p * (p + 1) / 2, batch * p, active)
        decode = sum(
            self.step_sec(batch, batch, batch * (p + i), batch * (p + i), active)
            for i in range(1, self.new_tokens)
        )
        return prefill, decode


class Granularity:
    """How a request's quality floor (sub-experts) becomes an operating point of one model.

    `prism`: the carved model runs at exactly m sub-experts. `original`: the original model
    runs at ceil(m / N) whole experts, i.e. m rounded up to a multiple of N."""

    def __init__(self, kind: str, costs: CostModel, n: int, prompt_len: int, new_tokens: int):
        self.kind, self.n = kind, n
        self.max_level = costs.shape.top_k * n
        shape = carved_shape(costs.shape, n) if kind == "prism" else costs.shape
        self.table = ServingCosts(CostModel(costs.hw, shape), prompt_len, new_tokens)

    def level(self, m: int) -> int:
        """The sub-expert level a floor of m actually runs at."""
        return m if self.kind == "prism" else self.n * math.ceil(m / self.n)

    def batch_sec(self, batch: int, m: int) -> tuple[float, float]:
        level = self.level(m)
        return self.table.batch_sec(batch, level if self.kind == "prism" else level // self.n)

    def cost(self, batch: int, m: int) -> float:
        """C(batch, m): total seconds to serve the batch."""
        return sum(self.batch_sec(batch, m))


def decode_point(costs: CostModel, active: int, context: int = 512) -> dict[str, float]:
    """What one batch-1 decode token costs at `active` routed experts per MoE layer, with
    `context` cached tokens, at the charged model's sizes: the bytes and FLOPs of its active
    experts and the modeled latency. A quality run records it (method_details), so MoE-Prism's
    operating-point curve is drawn from records alone."""
    shape, table = costs.shape, ServingCosts(costs, prompt_len=context, new_tokens=2)
    moe = len(shape.moe_layers)
    return {
        "active_experts": active,
        "context_tokens": context,
        "expert_mb_per_token": active * shape.expert_bytes * moe / 1e6,
        "expert_gflop_per_token": 2 * active * shape.expert_params * moe / 1e9,
        "modeled_sec_per_token": table.step_sec(1, 1, context, context, active),
    }
