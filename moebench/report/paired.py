"""Ratios between two records with their paired 95% interval and verdict (bench/paired.py), as
the reports print them.

Two records pair when they decoded the same sequences: same workload, seed and (prompt, tape)
order. Their per-sequence samples (raw.per_sequence) then line up one to one. A record written
before those samples existed falls back to its per-prompt step seconds (speed only).
"""

from __future__ import annotations

import numpy as np

from moebench.bench.paired import PairedRatio, paired_ratio
from moebench.report.common import plt
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
    "perplexity": ("higher", "lower"),
    # the original's tokens/s over Prism's: Prism's TPOT over the original's
    "prism_latency": ("Prism slower", "Prism faster"),
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


def ratio(
    a: RunRecord, b: RunRecord, name: str = "speed", prompts: str = "all"
) -> PairedRatio | None:
    """Record a's `name` ratio over record b's with its paired interval; None when the two did
    not decode the same sequences or lack the samples. `prompts`: all, or the `tune` (first)
    or `held_out` (second) half of the workload's prompts, every tape of each."""
    pair = _pairing(a, b)
    num, den = RATIOS[name]
    if pair is None or any(k not in s for s in pair for k in (num, den)):
        return None
    if prompts != "all":
        half = a.config.workload.num_prompts // 2
        keep = (pair[0]["prompt"] < half) == (prompts == "tune")
        pair = tuple({k: v[keep] for k, v in s.items()} for s in pair)
    (sa, sb) = pair
    if not (sa[den].sum() > 0 and sb[den].sum() > 0 and sb[num].sum() > 0):
        return None
    return paired_ratio(sa[num], sa[den], sb[num], sb[den])


def interval(record: RunRecord, name: str) -> PairedRatio | None:
    """One record's pooled `name` fraction (e.g. MoE-SpeQ's acceptance) with its 95% interval
    over the sequences: the same bootstrap, against a constant."""
    num, den = RATIOS[name]
    s = samples(record)
    if num not in s or not s[den].sum() > 0:
        return None
    ones = np.ones_like(s[num])
    return paired_ratio(s[num], s[den], ones, ones)


def cell(r: PairedRatio | None, digits: int = 3) -> str:
    """`ratio [lo, hi]`, or `-` without a pairing."""
    return "-" if r is None else r.text(digits)


def verdict(r: PairedRatio | None, name: str = "speed") -> str:
    return "-" if r is None else r.verdict(*WORDS[name])


def sequences(records: list[RunRecord]) -> str:
    """How many sequences the records' intervals resample, as a phrase."""
    counts = sorted({len(samples(r).get("prompt", [])) for r in records})
    return "/".join(str(c) for c in counts) + " sequences"


# What every interval in the reports is, said once beside each table of them.
INTERVALS = (
    "each ratio is run A's pooled value over run B's on the same (prompt, tape) sequences, "
    "with its paired 95% bootstrap interval (BCa, 10,000 resamples of the sequences, the same "
    "ones for both runs; bench/paired.py); the verdict says whether the interval excludes 1."
)

# column heads of `comparison`, per ratio
HEADS = {
    "speed": "tokens/s ratio [95%]",
    "gb_per_token": "GB/token ratio [95%]",
    "hit_frac": "hit ratio [95%]",
    "acceptance": "acceptance ratio [95%]",
}


def comparison(a: RunRecord, b: RunRecord, names=("speed", "gb_per_token", "hit_frac")) -> dict:
    """Table cells comparing record a with record b: each ratio's `ratio [lo, hi]`, and the
    speed verdict."""
    return comparison_cells({name: ratio(a, b, name) for name in names})


def comparison_cells(ratios: dict[str, PairedRatio | None]) -> dict:
    """`comparison`'s cells from ratios already computed (name -> ratio)."""
    out = {}
    for name, r in ratios.items():
        out[HEADS[name]] = cell(r)
        if name == "speed":
            out["verdict"] = verdict(r, name)
    return out


def ratio_bars(ax, categories: list[str], series: dict[str, list[PairedRatio | None]]) -> None:
    """Grouped bars of ratios with their 95% intervals as error bars, and the line at 1."""
    width = 0.8 / max(1, len(series))
    x = np.arange(len(categories))
    colors = plt.get_cmap("tab20").colors
    for i, (label, ratios) in enumerate(series.items()):
        mid = np.array([r.ratio if r else np.nan for r in ratios])
        lo = np.array([r.ratio - r.lo if r else np.nan for r in ratios])
        hi = np.array([r.hi - r.ratio if r else np.nan for r in ratios])
        ax.bar(
            x + i * width,
            mid,
            width,
            yerr=np.nan_to_num(np.vstack([lo, hi])),
            capsize=2,
            label=label,
            color=colors[i % len(colors)],
        )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(x + 0.4 - width / 2, categories, fontsize=7, rotation=15, ha="right")
