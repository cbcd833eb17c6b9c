"""Cloud serving under quality floors: MoE-Prism's scheduler and the FIFO / FullBatch baselines.

One GPU serves static batches one at a time (the paper's reading); prism/serving.py runs the
event loop under the virtual clock, asking `Scheduler.choose` whenever the GPU is free. Each
request carries a quality floor
k_min (sub-experts per token); a batch runs at the largest floor among its requests, at the
model's granularity (`serving_costs.Granularity`), so every request gets at least its floor.

Prism (paper section 5a, with our choices where the paper is silent):
- virtual queues Q_m, m = 1..M (M = N k'); a request joins every Q_m with m >= k_min;
- when the GPU is free and requests wait, launch in this order:
  1. timeout: the oldest waiting request has waited longer than T_max -> among the queues
     that hold it, the one of highest utility;
  2. batch full: some queue holds >= B_max requests -> the full queue of highest utility;
  3. otherwise the queue of highest utility U_m = sum tokens(R) / C(|Q_m|, m);
- a launched queue takes its B_max oldest requests; they leave every queue at once.
FIFO launches the oldest B_max waiting requests whenever the GPU is free; FullBatch waits until
B_max requests wait (and launches what is left once arrivals end).
"""

from __future__ import annotations

from dataclasses import dataclass

from moebench.prism.serving_costs import Granularity

POLICIES = ("prism", "fifo", "fullbatch")


@dataclass
class Request:
    id: int
    arrival: float
    k_min: int
    tokens: int  # prompt + output tokens: the work U_m counts
    launch: float = float("nan")
    first_token: float = float("nan")
    finish: float = float("nan")
    level: int = 0  # sub-expert level it ran at


class Scheduler:
    """Chooses the next batch when the GPU is free; None means wait for more arrivals."""

    def __init__(self, policy: str, model: Granularity, b_max: int, t_max: float):
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}")
        self.policy, self.model, self.b_max, self.t_max = policy, model, b_max, t_max

    def utility(self, queue: list[Request], m: int) -> float:
        return sum(r.tokens for r in queue) / self.model.cost(len(queue), m)

    def choose(
        self, now: float, waiting: list[Request], arrivals_done: bool
    ) -> tuple[list[Request], str] | None:
        """The requests to launch now (oldest first) and what triggered it."""
        if not waiting:
            return None
        if self.policy == "fifo":
            return waiting[: self.b_max], "free"
        if self.policy == "fullbatch":
            if len(waiting) >= self.b_max:
                return waiting[: self.b_max], "batch_full"
            return (waiting, "drain") if arrivals_done else None
        queues = {
            m: [r for r in waiting if r.k_min <= m] for m in range(1, self.model.max_level + 1)
        }
        queues = {m: q[: self.b_max] for m, q in queues.items() if q}
        oldest = waiting[0]
        if now - oldest.arrival > self.t_max:
            holding = [m for m in queues if m >= oldest.k_min]
            return queues[max(holding, key=lambda m: self.utility(queues[m], m))], "timeout"
        full = [m for m, q in queues.items() if len(q) >= self.b_max]
        candidates, trigger = (full, "batch_full") if full else (list(queues), "utility")
        return queues[max(candidates, key=lambda m: self.utility(queues[m], m))], trigger
