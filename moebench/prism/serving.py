"""The serving simulator: Poisson arrivals with quality floors, the event loop that serves them
static batch by static batch under a scheduler (prism/scheduler.py), and latency metrics.

Arrivals: exponential gaps at `rate_per_sec` for `duration_sec`; each request's floor is
k_min = clip(int(Normal(k_min_mean, k_min_std)), 1, M) sub-experts, as in the MoE-Prism
authors' later workload generator (the v1 paper gives no distribution). The latency SLO is
`slo_x_isolated` times the end-to-end latency of one request alone at the highest level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from moebench.config import WorkloadConfig
from moebench.prism.scheduler import Request, Scheduler


@dataclass
class Launch:
    time: float
    level: int
    requests: list[Request] = field(default_factory=list)
    trigger: str = "utility"


def simulate(requests: list[Request], scheduler: Scheduler) -> list[Launch]:
    """Serve `requests` (sorted by arrival) to completion; fills in each request's times."""
    model = scheduler.model
    launches: list[Launch] = []
    waiting: list[Request] = []
    now, i = 0.0, 0
    while i < len(requests) or waiting:
        while i < len(requests) and requests[i].arrival <= now:
            waiting.append(requests[i])
            i += 1
        choice = scheduler.choose(now, waiting, arrivals_done=i == len(requests))
        if choice is None:
            if i == len(requests):
                raise RuntimeError("scheduler waits with no arrivals left")  # a policy bug
            now = requests[i].arrival
            continue
        batch, trigger = choice
        level = model.level(max(r.k_min for r in batch))
        prefill, decode = model.batch_sec(len(batch), level)
        chosen = {r.id for r in batch}
        waiting = [r for r in waiting if r.id not in chosen]
        for r in batch:
            r.launch, r.first_token, r.finish, r.level = (
                now,
                now + prefill,
                now + prefill + decode,
                level,
            )
        launches.append(Launch(now, level, batch, trigger))
        now += prefill + decode
    return launches


def poisson_requests(cfg: WorkloadConfig, max_level: int, seed: int) -> list[Request]:
    a = cfg.arrivals
    rng = np.random.default_rng(seed)
    count = int(rng.poisson(a["rate_per_sec"] * a["duration_sec"]))
    times = np.sort(rng.uniform(0.0, a["duration_sec"], count))  # Poisson process, given the count
    floors = np.clip(rng.normal(a["k_min_mean"], a["k_min_std"], count).astype(int), 1, max_level)
    tokens = cfg.prompt_len + cfg.new_tokens
    return [
        Request(i, float(t), int(k), tokens)
        for i, (t, k) in enumerate(zip(times, floors, strict=True))
    ]


def _percentiles(name: str, values: np.ndarray) -> dict[str, float]:
    return {f"{name}_p{q}": float(np.percentile(values, q)) for q in (50, 90, 99)} | {
        f"{name}_mean": float(values.mean())
    }


def serving_metrics(
    requests: list[Request],
    launches: list[Launch],
    duration: float,
    slo_sec: float,
    new_tokens: int,
) -> dict[str, float]:
    """Throughput, goodput at the SLO, latency percentiles, and compute spent above the floors."""
    arrival = np.array([r.arrival for r in requests])
    first = np.array([r.first_token for r in requests])
    finish = np.array([r.finish for r in requests])
    e2e = finish - arrival
    tpot = (finish - first) / max(new_tokens - 1, 1)
    sizes = np.array([len(b.requests) for b in launches])
    triggers = {
        t: sum(b.trigger == t for b in launches)
        for t in ("timeout", "batch_full", "utility", "free", "drain")
    }
    return {
        "requests": len(requests),
        "throughput_rps": len(requests) / float(finish.max()),
        "goodput_rps": float((e2e <= slo_sec).sum()) / duration,
        "slo_attainment_frac": float((e2e <= slo_sec).mean()),
        "slo_sec": slo_sec,
        **_percentiles("ttft_sec", first - arrival),
        **_percentiles("tpot_sec", tpot),
        **_percentiles("e2e_sec", e2e),
        "batches": len(launches),
        "batch_size_mean": float(sizes.mean()),
        "level_over_floor_mean": float(np.mean([r.level - r.k_min for r in requests])),
        "makespan_sec": float(finish.max()),
        **{f"launches_{t}": n for t, n in triggers.items() if n},
    }
