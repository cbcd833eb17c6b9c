"""The Speculative Governor: pick the draft length k each cycle on the amortization
roofline (paper Eqs. 1-5).

    Theta(k)   = tokens(k) / T_cycle(k)
    tokens(k)  = 1 + sum_{i<=k} prod_{j<=i} p_j     (accepted drafts, plus the token the
                                                    target always adds; the paper's Eq. 2
                                                    counts only the accepted drafts)
    T_cycle(k) = max(T_draft(k), T_pcie_init) + T_pcie_new(k) + T_verify(k + 1)
    k*         = argmax over k in [k_min, k_SLO]

p_j is an exponential moving average of "draft token j accepted given the ones before it
were". k_SLO is the largest k whose cycle fits the TTFT budget. Costs are functions, so the
same governor runs on the virtual clock's cost model or on profiled GPU timings.

`objective="bytes"` (ours, not the paper's): when the host-to-device link is the bottleneck
the cycle's copies decide its length, so k* minimises the expected seconds per emitted token

    sec_per_token(k) = max(T_io(k), T_draft(k) + T_verify(k + 1)) / tokens(k)

(the sum instead of the max where copies cannot overlap compute), with T_io(k) the link time
of every byte the cycle is expected to move: the union of the k+1 verified tokens' missing
experts including what thrashes (or, for a one-by-one verify, each verified token's own
misses), plus an offloaded draft's own misses.
`ttft_profile="offline"` takes k_SLO as the paper does: once, from a profile of the cycle
time per k made before the first token (prior acceptance and miss rate), and recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


def expected_loads(distinct: float, slots: float, miss_rate: float) -> float:
    """Experts one verify must copy into one layer. Eq. 3 assumes the union of the k+1
    tokens' experts fits the cache; when it does not (DeepSeek-V2-Lite at 16 GB: ~6.8 distinct
    of 13 slots is fine, k = 8 on Phi with 2-3 slots is not), the union beyond the slots is
    loaded whatever was resident, and each such load evicts an expert that must come back
    for the next cycle. The part that fits misses at the observed rate."""
    over = max(0.0, distinct - slots)
    return miss_rate * min(distinct, slots) + 2.0 * over


@dataclass
class Governor:
    t_draft: Callable[[int], float]  # seconds to draft k tokens
    t_verify: Callable[[int], float]  # seconds to verify n = k + 1 tokens
    t_pcie_new: Callable[[int], float]  # seconds of synchronous I/O for new experts at k
    t_pcie_init: float = 0.0  # the first mandatory expert fetch
    k_min: int = 1
    k_max: int = 8
    ttft_budget_sec: float | None = None
    ema: float = 0.3  # weight of the newest observation
    prior: float = 0.9  # acceptance assumed before anything is observed
    fixed_k: int | None = None  # ablation: never adapt
    objective: str = (
        "roofline"  # "roofline" (paper: tokens per cycle second) | "bytes" (seconds per token)
    )
    t_io: Callable[[int, float], float] | None = (
        None  # bytes objective: (k, expected tokens) -> link seconds
    )
    overlap: bool = True  # copies overlap compute (False: a CPU, where they serialize)
    verify_stops_early: bool = False  # a one-by-one verify runs as many forwards as it emits tokens
    ttft_profile: str = (
        "online"  # "online": k_SLO from the current costs each cycle | "offline": once (paper)
    )
    p: list[float] = field(default_factory=list)
    history: list[int] = field(default_factory=list)
    profile_sec: dict[int, float] = field(
        default_factory=dict
    )  # the offline profile: k -> cycle seconds

    def __post_init__(self):
        self.p = [self.prior] * self.k_max
        if self.ttft_profile == "offline":
            self.profile_sec = {k: self.cycle_sec(k) for k in range(self.k_min, self.k_max + 1)}

    def tokens(self, k: int) -> float:
        total, survive = 1.0, 1.0
        for j in range(k):
            survive *= self.p[j]
            total += survive
        return total

    def cycle_sec(self, k: int) -> float:
        if self.objective == "bytes":
            verified = self.tokens(k) if self.verify_stops_early else k + 1
            io, compute = self.t_io(k, self.tokens(k)), self.t_draft(k) + self.t_verify(verified)
            return max(io, compute) if self.overlap else io + compute
        return max(self.t_draft(k), self.t_pcie_init) + self.t_pcie_new(k) + self.t_verify(k + 1)

    def throughput(self, k: int) -> float:
        return self.tokens(k) / self.cycle_sec(k)

    def sec_per_token(self, k: int) -> float:
        return self.cycle_sec(k) / self.tokens(k)

    def intensity(self, k: int, bytes_of_io: Callable[[int], float]) -> float:
        """Eq. 1 with S_token = 1: accepted tokens per synchronous I/O byte."""
        io = bytes_of_io(k)
        return (self.tokens(k) - 1) / io if io > 0 else float("inf")

    def k_slo(self) -> int:
        """Largest k whose whole cycle fits the TTFT budget (at least k_min)."""
        if self.ttft_profile == "offline":
            return self._largest_fitting(self.profile_sec)
        return self._largest_fitting(
            {k: self.cycle_sec(k) for k in range(self.k_min, self.k_max + 1)}
        )

    def _largest_fitting(self, cycle_sec: dict[int, float]) -> int:
        if self.ttft_budget_sec is None:
            return self.k_max
        fits = [k for k, sec in cycle_sec.items() if sec <= self.ttft_budget_sec]
        return max(fits) if fits else self.k_min

    def choose(self) -> int:
        if self.fixed_k is not None:
            k = self.fixed_k
        else:
            candidates = range(self.k_min, self.k_slo() + 1)
            if self.objective == "bytes":
                k = min(candidates, key=lambda c: (self.sec_per_token(c), c))
            else:
                k = max(candidates, key=lambda c: (self.throughput(c), -c))
        self.history.append(k)
        return k

    def observe(self, k: int, accepted: int) -> None:
        """Update p_j for every position whose outcome was observed in a cycle of length k."""
        for j in range(min(k, accepted + 1)):
            outcome = 1.0 if j < accepted else 0.0
            self.p[j] = (1 - self.ema) * self.p[j] + self.ema * outcome
