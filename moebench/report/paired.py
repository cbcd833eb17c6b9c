"""Ratios between two records with their paired 95% interval and verdict (bench/paired.py), as
the reports print them.

Two records pair when they decoded the same sequences: same workload, seed and (prompt, tape)
order. Their per-sequence samples (raw.per_sequence) then line up one to one. A record written
before those samples existed falls back to its per-prompt step seconds (speed only).
"""

from __future__ import annotations

import numpy as np

from moebench.bench.paired import PairedRatio, paired_ratio
from moebench.schema import RunRecord

# ratio name -> (numerator, denominator) per-sequence sample keys; each ratio is run A's
# pooled num/den over run B's
RATIOS = {
    "speed": ("decode_tokens", "decode_sec"),  # tokens/s
    "gb_per_token": ("h2d_bytes", "decode_tokens"),
    "hit_frac": ("expert_hits", "expert_needed"),
    "acceptance": ("draft_accepted", "draft_proposed"),
}
# (above 1, below 1) words for a ratio's verdict
WORDS = {
    "speed": ("faster", "slower"),
    "gb_per_token": ("more bytes", "fewer bytes"),
    "hit_frac": ("more hits", "fewer hits"),
    "acceptance": ("higher", "lower"),
}


def samples(record: RunRecord) -> dict[str, np.ndarray]:
    """The record's per-sequence samples (older records: speed samples from step seconds)."""
    raw = record.raw or {}
    if "per_sequence" in raw:
        return {k: np.asarray(v, dtype=np.float64) for k, v in raw["per_sequence"].items()}
    steps = raw.get("step_sec", [])
    return {
        "prompt": np.arange(len(steps), dtype=np.float64),
        "tape": np.zeros(len(steps)),
        "decode_sec": np.array([sum(s[1:]) for s in steps]),
        "decode_tokens": np.array([len(s) - 1 for s in steps], dtype=np.float64),
    }


def _pairing(a: RunRecord, b: RunRecord) -> tuple[dict, dict] | None:
    """Both records' samples when they decoded the same sequences, else None."""
    wa, wb = a.config.workload, b.config.workload
    if (wa, a.config.seed) != (wb, b.config.seed):
        return None
    sa, sb = samples(a), samples(b)
    same = all(np.array_equal(sa.get(k), sb.get(k)) for k in ("prompt", "tape"))
    return (sa, sb) if same and len(sa.get("prompt", [])) else None


def ratio(a: RunRecord, b: RunRecord, name: str = "speed") -> PairedRatio | None:
    """Record a's `name` ratio over record b's with its paired interval; None when the two did
    not decode the same sequences or lack the samples."""
    pair = _pairing(a, b)
    num, den = RATIOS[name]
    if pair is None or any(k not in s for s in pair for k in (num, den)):
        return None
    (sa, sb) = pair
    if not (sa[den].sum() > 0 and sb[den].sum() > 0 and sb[num].sum() > 0):
        return None
    return paired_ratio(sa[num], sa[den], sb[num], sb[den])


def cell(r: PairedRatio | None, digits: int = 3) -> str:
    """`ratio [lo, hi]`, or `-` without a pairing."""
    return "-" if r is None else r.text(digits)


def verdict(r: PairedRatio | None, name: str = "speed") -> str:
    return "-" if r is None else r.verdict(*WORDS[name])


def sequences(records: list[RunRecord]) -> str:
    """How many sequences the records' intervals resample, as a phrase."""
    counts = sorted({len(samples(r).get("prompt", [])) for r in records})
    return "/".join(str(c) for c in counts) + " sequences"
