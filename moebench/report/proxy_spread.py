"""reports/proxy_spread*.md: how far a headline ratio moves when the proxy is retrained with
another seed, beside the prompt interval each proxy gives it. The paired interval covers the
prompts and the sampling noise of one trained proxy; this spread is what it leaves out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from moebench.bench.paired import PairedRatio
from moebench.report.claims import twin_key
from moebench.report.common import conditions, flag_invalid, plt, save_figure
from moebench.report.paired import INTERVALS, WORDS, cell, ratio, sequences
from moebench.report.prism import gate_changes
from moebench.report.speq import decoding_label
from moebench.report.speq_beyond import BASELINE, PROXY_NAMES, variant_label
from moebench.schema import RunRecord


def _seed(r: RunRecord) -> int:
    return r.config.model.train_seed


def spread_rows(
    comparisons: dict[tuple, dict[int, PairedRatio | None]],
    words: str,
    digits: int = 3,
    interval: str = "prompt",
) -> list:
    """One row per compared pair: each training seed's `ratio [lo, hi]`, the spread of the
    ratios over seeds beside the median width of the `interval` (prompt or document) interval,
    and a verdict over seeds."""
    above, below = WORDS[words]
    rows = []
    for (point, label), by_seed in comparisons.items():
        found = {s: r for s, r in sorted(by_seed.items()) if r is not None}
        if not found:
            continue
        ratios = [r.ratio for r in found.values()]
        widths = [r.hi - r.lo for r in found.values() if not np.isnan(r.lo)]
        if all(r.lo > 1 for r in found.values()):
            verdict = f"{above} on every proxy"
        elif all(r.hi < 1 for r in found.values()):
            verdict = f"{below} on every proxy"
        elif all(r.decided for r in found.values()):
            verdict = "decided on every proxy, not the same way"
        else:
            verdict = "not decided on every proxy"
        rows.append(
            {
                "point": point,
                "comparison": label,
                **{f"train seed {s} [95%]": cell(r, digits) for s, r in found.items()},
                "training spread (max - min)": max(ratios) - min(ratios),
                f"{interval} interval width (median)": float(np.median(widths))
                if widths
                else np.nan,
                "over seeds": verdict,
            }
        )
    return rows


def _figure(comparisons, out, name: str, ylabel: str) -> str:
    labels = [f"{point}\n{label}" for point, label in comparisons]
    seeds = sorted({s for by_seed in comparisons.values() for s in by_seed})
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(labels)), 3.8))
    for i, seed in enumerate(seeds):
        ratios = [by_seed.get(seed) for by_seed in comparisons.values()]
        x = np.arange(len(labels)) + (i - (len(seeds) - 1) / 2) * 0.15
        mid = np.array([r.ratio if r else np.nan for r in ratios])
        err = np.array([[r.ratio - r.lo, r.hi - r.ratio] if r else [0, 0] for r in ratios]).T
        ax.errorbar(x, mid, yerr=np.nan_to_num(err), fmt="o", capsize=3, label=f"train seed {seed}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=7)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "figs" / f"{name}.png")
    return f"![each training seed's ratio with its 95% interval](figs/{name}.png)"


def _report(
    records, out, name, title, comparisons, words, ylabel, basis=None, digits=3, interval="prompt"
) -> list[str]:
    """The spread table and figure; `basis` says what each cell's interval resamples (the
    decode records' sequences unless given), `interval` names it in the table."""
    rows = spread_rows(comparisons, words, digits, interval)
    basis = (
        basis or f"Each cell is one trained proxy's ratio over {sequences(records)}: {INTERVALS}"
    )
    return [
        f"# {title}",
        "",
        conditions(records),
        "",
        f"{basis} "
        "`training spread` is how far the ratio moves across proxies trained with other seeds "
        f"(same topology, recipe and data); set it beside the median {interval}-interval width: "
        "where the spread is the larger, one proxy's interval overstates what is known.",
        "",
        pd.DataFrame(rows).to_markdown(index=False, floatfmt=f".{digits}f")
        if rows
        else "_no pairs_",
        "",
        _figure(comparisons, out, name, ylabel) if rows else "",
        "",
        *flag_invalid(records),
    ]


def _point(model: str, budget: float, decoding: str = "sample") -> str:
    """`Phi-3.5-MoE 36 GB`; a greedy point says so (sampled is the measurement)."""
    suffix = ", greedy" if decoding == "greedy" else ""
    return f"{PROXY_NAMES.get(model, model)} {budget:g} GB{suffix}"


def _spread_key(r: RunRecord) -> tuple:
    """Where a record sits in the spread: model, budget, decoding, training seed, variant.
    Greedy and sampled runs of one variant are separate rows: they decode other sequences."""
    budget = r.config.method.budget_gb
    return (r.model.proxy_of, budget, decoding_label(r), _seed(r), variant_label(r))


def committed_twins(records: list[RunRecord], others: list[RunRecord]) -> list[RunRecord]:
    """Records of other experiments that ran a spread config on the committed proxy (training
    seed 0) where the spread experiment has no seed-0 run of its own: the same config, so the
    same record (the DSV2 seed-0 reruns equalled their speq_beyond twins in metrics and output
    hash), used rather than decoded again."""
    have = {twin_key(r) for r in records if _seed(r) == 0}
    wanted = {twin_key(r) for r in records} - have
    found: dict[str, RunRecord] = {}
    for r in others:
        if r.config is not None and _seed(r) == 0 and twin_key(r) in wanted:
            found.setdefault(twin_key(r), r)
    return list(found.values())


def proxy_spread(records: list[RunRecord], out, others: list[RunRecord] = ()) -> list[str]:
    """MoE-SpeQ variants over sm per point, per training seed; a seed-0 cell the experiment did
    not run comes from its twin in another experiment (`committed_twins`), and says so."""
    twins = committed_twins(records, list(others))
    by_key = {_spread_key(r): r for r in [*records, *twins]}
    comparisons: dict[tuple, dict[int, PairedRatio | None]] = {}
    sampled_first = sorted(by_key.items(), key=lambda kv: (kv[0][2] == "greedy", kv[0]))
    for (model, budget, decoding, seed, label), r in sampled_first:
        base = by_key.get((model, budget, decoding, seed, BASELINE))
        if label == BASELINE or base is None:
            continue
        point = _point(model, budget, decoding)
        comparisons.setdefault((point, f"{label} over sm"), {})[seed] = ratio(r, base)
    lines = _report(
        [*records, *twins],
        out,
        "proxy_spread",
        "Proxy-training spread: MoE-SpeQ over Mixtral-Offloading (sm)",
        comparisons,
        "speed",
        "tokens/s over sm",
    )
    if twins:
        points = sorted({_point(*_spread_key(r)[:3]) for r in twins})
        experiments = ", ".join(sorted({r.experiment for r in twins}))
        lines += [
            "",
            f"Seed 0 at {'; '.join(points)} is not a run of this experiment: it is the "
            f"committed proxy's record of the same config in {experiments} ({len(twins)} "
            "records, named in the summary).",
        ]
    return lines


def proxy_spread_prism(records: list[RunRecord], out) -> list[str]:
    """MoE-Prism's TPOT over the whole-expert LRU's per floor, per training seed."""
    by_key = {(r.hardware, r.options.slo_experts, _seed(r), r.method): r for r in records}
    comparisons: dict[tuple, dict[int, PairedRatio | None]] = {}
    for (hardware, floor, seed, method), r in sorted(by_key.items()):
        original = by_key.get((hardware, floor, seed, "topk"))
        if method != "prism" or original is None:
            continue
        point = f"{hardware} floor {floor:g}"
        comparisons.setdefault((point, "Prism TPOT over original"), {})[seed] = ratio(original, r)
    return _report(
        records,
        out,
        "proxy_spread_prism",
        "Proxy-training spread: MoE-Prism sub-expert offloading against whole-expert LRU",
        comparisons,
        "prism_latency",
        "Prism TPOT over the original's",
    )


PERPLEXITY_BASIS = (
    "Each cell is one trained proxy's word perplexity of the gate over the original model's at "
    "the same compute (K sub-experts against K / 4 experts), on the same held-out documents, "
    "with its paired 95% bootstrap interval over documents (BCa, 10,000 resamples; "
    "report/perplexity.py); below 1, the gate predicts the held-out text better."
)


def perplexity_comparisons(by_seed: dict[int, list]) -> dict[tuple, dict[int, PairedRatio]]:
    """(model and K, gate) -> {training seed: the gate's perplexity over the original's}, each
    seed's records paired among themselves as Table 2 pairs them (report/prism.gate_changes)."""
    comparisons: dict[tuple, dict[int, PairedRatio | None]] = {}
    for seed, seeded in sorted(by_seed.items()):
        for c in gate_changes(seeded):
            point = f"{PROXY_NAMES.get(c['model'], c['model'])} K = {c['K']}"
            label = f"{c['gate']} over the original (K' = {c['K'] // 4})"
            comparisons.setdefault((point, label), {})[seed] = c["paired"]
    return comparisons


def proxy_spread_prism_ppl(
    records: list[RunRecord], out, others: list[RunRecord] = ()
) -> list[str]:
    """Table 2's gate-over-original perplexity ratios per training seed: how far Prism's quality
    result moves with the proxy, beside its document interval. Seed 0 is prism_ppl's record of
    the same config (`committed_twins`) where the spread did not run it."""
    twins = committed_twins(records, list(others))
    by_seed: dict[int, list[RunRecord]] = {}
    for r in [*records, *twins]:
        by_seed.setdefault(_seed(r), []).append(r)
    lines = _report(
        [*records, *twins],
        out,
        "proxy_spread_prism_ppl",
        "Proxy-training spread: MoE-Prism's held-out perplexity (Table 2) over the original",
        perplexity_comparisons(by_seed),
        "perplexity",
        "word perplexity over the original's",
        PERPLEXITY_BASIS,
        digits=4,  # Table 2's changes are tenths of a percent
        interval="document",
    )
    if twins:
        lines += [
            "",
            f"Seed 0 is the committed proxy's record of the same config in "
            f"{', '.join(sorted({r.experiment for r in twins}))} ({len(twins)} records), not a "
            "run of this experiment.",
        ]
    return lines
