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


def bound_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The achieved TPOT against the run's physical bounds: the larger of compute-only time
    and the time to move the missed bytes over the link (>= 1 unless the model is wrong)."""
    bound = max(metrics.get("bound_compute_sec_per_step", 0.0), metrics.get("bound_transfer_sec_per_step", 0.0))
    if bound <= 0 or "tpot_sec_mean" not in metrics:
        return {}
    return {"bound_sec_per_step": bound, "tpot_over_bound_ratio": metrics["tpot_sec_mean"] / bound}
