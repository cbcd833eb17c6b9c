"""`full_resident`: every weight on the device. The compute bound and the output reference.

Nothing moves over the host link; each forward call is charged on the virtual clock as the
kernels the real model would run for the routing the proxy actually chose.
"""

from __future__ import annotations

from moebench.bench.decode import Step, greedy_decode
from moebench.engine.clock import VirtualClock
from moebench.engine.costs import CostModel


def charge_forward(clock: VirtualClock, costs: CostModel, step: Step) -> float:
    """Charge one forward call's kernels on the compute stream; return its duration."""
    shape, start = costs.shape, clock.now
    tokens = step.tokens_in
    moe_layers = set(shape.moe_layers)
    for layer in range(shape.num_layers):
        clock.compute("attention", costs.kernel_sec(costs.attention_kernel(tokens, step.context)))
        if layer not in moe_layers:
            clock.compute("mlp", costs.kernel_sec(costs.mlp_kernel(tokens, shape.dense_intermediate, "mlp")))
            continue
        clock.compute("router", costs.kernel_sec(costs.router_kernel(tokens)))
        if shape.shared_intermediate:
            shared = costs.mlp_kernel(tokens, shape.shared_intermediate, "shared")
            clock.compute("shared", costs.kernel_sec(shared))
        ids = step.routing[layer].flatten().tolist()
        for expert in sorted(set(ids)):
            clock.compute(f"expert {layer}.{expert}", costs.kernel_sec(costs.expert_kernel(ids.count(expert))))
    clock.compute("lm_head", costs.kernel_sec(costs.lm_head_kernel(1)))
    return clock.now - start


class FullResident:
    """All experts resident: charge compute only."""

    clock_label = "virtual"

    def __init__(self, run, loaded, costs: CostModel):
        self.loaded, self.costs = loaded, costs
        self.clock = VirtualClock(keep_spans=run.timeline)

    def generate(self, prompt_ids, new_tokens: int) -> tuple[list[int], list[float]]:
        """Greedy tokens and the virtual seconds of each forward call (prefill first)."""
        step_sec: list[float] = []
        tokens = greedy_decode(
            self.loaded, prompt_ids, new_tokens,
            on_step=lambda step: step_sec.append(charge_forward(self.clock, self.costs, step)),
        )
        return tokens, step_sec

    def metrics(self) -> dict[str, float]:
        return {"h2d_bytes": 0, "stall_sec": self.clock.stall_sec, "expert_hit_frac": 1.0}
