"""Run-level metrics from per-step times; every key carries its unit."""

from __future__ import annotations

import hashlib
import json

import numpy as np


def latency_metrics(step_sec_per_prompt: list[list[float]]) -> dict[str, float]:
    """TTFT from each prefill, TPOT from each decode step, tokens/s over decode time."""
    ttft = [steps[0] for steps in step_sec_per_prompt]
    tpot = [s for steps in step_sec_per_prompt for s in steps[1:]]
    decode_sec = float(sum(tpot))
    out = {
        "ttft_sec_mean": float(np.mean(ttft)),
        "e2e_sec_total": float(sum(ttft) + decode_sec),
        "decode_steps": len(tpot),
    }
    if tpot:
        out |= {
            "tpot_sec_p50": float(np.percentile(tpot, 50)),
            "tpot_sec_p90": float(np.percentile(tpot, 90)),
            "tpot_sec_mean": float(np.mean(tpot)),
            "tokens_per_sec": len(tpot) / decode_sec if decode_sec > 0 else float("inf"),
        }
    return out


def output_sha256(outputs: list[list[int]]) -> str:
    """Hash of every generated token id: equal hashes mean identical outputs."""
    return hashlib.sha256(json.dumps(outputs).encode()).hexdigest()


def bound_metrics(metrics: dict[str, float], h2d_bytes_per_sec: float) -> dict[str, float]:
    """Achieved TPOT against the run's physical bounds, all per emitted token (a MoE-SpeQ
    cycle emits several): the compute bound (the run's own decode kernels, drafts included,
    with every copy free) and an I/O bound that does not flatter the method (the bytes a
    clairvoyant Belady cache with the same slots would still move for the experts these
    forwards needed); the run's own missed bytes are a second, weaker I/O figure. TPOT over
    the larger bound is >= 1 unless the clock is wrong."""
    tokens = metrics.get("decode_steps", 0)
    if not tokens or "tpot_sec_mean" not in metrics or "decode_compute_sec_total" not in metrics:
        return {}
    compute = metrics["decode_compute_sec_total"] / tokens
    belady = metrics["decode_belady_bytes_total"] / h2d_bytes_per_sec / tokens
    own = metrics["decode_missed_bytes_total"] / h2d_bytes_per_sec / tokens
    bound = max(compute, belady)
    return {
        "bound_compute_sec_per_token": compute,
        "bound_io_belady_sec_per_token": belady,
        "bound_io_own_misses_sec_per_token": own,
        "bound_sec_per_token": bound,
        "h2d_gb_per_token": metrics.get("h2d_bytes", 0.0) / 1e9 / tokens,
        "tpot_over_bound_ratio": metrics["tpot_sec_mean"] / bound if bound > 0 else float("nan"),
    }
