"""The papers' claims beside ours, each ours with its paired 95% interval and verdict: the
section of reports/summary.md a reader checks first."""

from __future__ import annotations

import json

import pandas as pd

from moebench.records import identity
from moebench.report.accuracy import HELDOUT_TASKS, SHORT_NAMES, difference
from moebench.report.paired import INTERVALS, cell, ratio, verdict
from moebench.report.prism import PAPER_TABLE2, gate_changes
from moebench.report.prism_accuracy import paper_gains
from moebench.report.prism_offload import PAPER_CHANGE
from moebench.report.speq import PAPER_FIG13, budget_levels, decoding_label
from moebench.report.speq_beyond import BASELINE, PROXY_NAMES, variant_label
from moebench.schema import RunRecord

SPEQ_EXPERIMENTS = ("speq_phi", "speq_qwen", "speq_dsv2")
# the same comparisons on proxies retrained with other seeds (not part of make reproduce)
SPREAD_EXPERIMENTS = ("proxy_spread", "proxy_spread_prism")
PRISM_MODELS = PROXY_NAMES | {"olmoe": "OLMoE", "qwen3_30b": "Qwen3-30B-A3B"}


def twin_key(r: RunRecord) -> str:
    """What a record ran, less its experiment and its proxy's training seed: a run of the
    same config on a proxy trained with another seed has the same key."""
    data = identity(r.config)
    data.pop("experiment", None)
    data["model"] = {k: v for k, v in data["model"].items() if k != "train_seed"}
    return json.dumps(data, sort_keys=True)


def by_training_seed(records: list[RunRecord]) -> dict[str, dict[int, RunRecord]]:
    """Records of the spread experiments: twin key -> {training seed: record}."""
    out: dict[str, dict[int, RunRecord]] = {}
    for r in records:
        out.setdefault(twin_key(r), {})[r.config.model.train_seed] = r
    return out


def training_spread(a, b, spread, own: str, words: str = "speed", prompts: str = "all") -> str:
    """The claim's ratio on every retrained proxy that ran both sides: its range over the
    training seeds and on how many the verdict is the claim's own verdict `own` ("-" without
    two seeds). The claim's own records stand for their seed where the spread lacks it."""
    side_a = {a.config.model.train_seed: a} | spread.get(twin_key(a), {})
    side_b = {b.config.model.train_seed: b} | spread.get(twin_key(b), {})
    found = {
        s: ratio(side_a[s], side_b[s], prompts=prompts)
        for s in sorted(side_a.keys() & side_b.keys())
    }
    found = {s: r for s, r in found.items() if r is not None}
    if len(found) < 2:
        return "-"
    ratios = [r.ratio for r in found.values()]
    same = sum(verdict(r, words) == own for r in found.values())
    return (
        f"{min(ratios):.3f}-{max(ratios):.3f} over seeds {', '.join(map(str, found))}; "
        f"{own} on {same} of {len(found)}"
    )


def _sampled(records: list[RunRecord]) -> list[RunRecord]:
    return [r for r in records if r.config.workload.sampling]


def speq_claims(by_experiment: dict[str, list[RunRecord]], spread) -> list[dict]:
    """MoE-SpeQ (the paper's design) over Mixtral-Offloading with the same memory (the paper's
    Fig. 13 bars), per model and budget, sampled decoding."""
    rows = []
    for name in SPEQ_EXPERIMENTS:
        records = _sampled(by_experiment.get(name, []))
        levels = budget_levels(records)
        for budget, level in levels.items():
            at = [r for r in records if r.config.method.budget_gb == budget]
            sm = next((r for r in at if variant_label(r) == BASELINE), None)
            speq = next((r for r in at if r.method == "speq"), None)
            if sm is None or speq is None:
                continue
            model = speq.model.proxy_of
            paper = PAPER_FIG13.get(model, {}).get(level, {})
            rows.append(
                _row(
                    f"MoE-SpeQ over Mixtral-Offloading (sm), {PROXY_NAMES.get(model, model)} "
                    f"{budget:g} GB ({level})",
                    name,
                    paper["speq"] / paper[BASELINE] if paper else float("nan"),
                    speq,
                    sm,
                    spread,
                )
            )
    return rows


def speq_beyond_claims(records: list[RunRecord], spread) -> list[dict]:
    """The fastest MoE-SpeQ variant over sm at every speq_beyond point (sampled)."""
    rows = []
    points = sorted({(r.model.proxy_of, r.config.method.budget_gb) for r in _sampled(records)})
    for model, budget in points:
        at = [
            r
            for r in _sampled(records)
            if (r.model.proxy_of, r.config.method.budget_gb) == (model, budget)
        ]
        sm = next((r for r in at if variant_label(r) == BASELINE), None)
        speq = [r for r in at if r.method == "speq"]
        if sm is None or not speq:
            continue
        # chosen on the first half of the prompts, reported on the other half: the best of
        # eight picked and reported on the same prompts would flatter itself
        tuned = {id(r): ratio(r, sm, prompts="tune") for r in speq}
        half = sm.config.workload.num_prompts // 2
        best = max(speq, key=lambda r: tuned[id(r)].ratio if tuned[id(r)] else float("-inf"))
        rows.append(
            _row(
                f"fastest MoE-SpeQ variant over sm, {PROXY_NAMES.get(model, model)} {budget:g} GB: "
                f"{variant_label(best)} (chosen on prompts 0-{half - 1}, reported on the others)",
                "speq_beyond",
                float("nan"),
                best,
                sm,
                spread,
                prompts="held_out",
            )
        )
    return rows


def prism_offload_claims(records: list[RunRecord], spread) -> list[dict]:
    """MoE-Prism's sub-expert offloading against the whole-expert LRU at fractional quality
    floors (sampled): TPOT ratio, the paper's -10.36% as 0.896."""
    rows = []
    pairs: dict[tuple, dict[str, RunRecord]] = {}
    for r in _sampled(records):
        floor = r.options.slo_experts
        if floor % 1:
            pairs.setdefault((r.hardware, floor), {})[r.method] = r
    for (hardware, floor), pair in sorted(pairs.items()):
        if {"prism", "topk"} <= set(pair):
            rows.append(
                _row(
                    f"MoE-Prism TPOT over the original's (whole-expert LRU), {hardware}, "
                    f"floor {floor:g} experts",
                    "prism_offload",
                    1 + PAPER_CHANGE / 100,
                    pair["topk"],
                    pair["prism"],
                    spread,
                    "prism_latency",
                )
            )
    return rows


def prism_accuracy_claims(records: list[RunRecord]) -> list[dict]:
    """Table 3: MoE-Prism LG w/ FT at K = 12 minus the original at K' = 3 (equal compute), in
    accuracy points on each held-out task, paired over the same documents. The paper's
    numbers are on other tasks (Winogrande, ARC-C, BoolQ), so they stand as context only."""
    ft = next((r for r in records if r.method == "prism" and r.options.gate == "lg_ft"), None)
    base = next((r for r in records if r.method == "topk" and r.options.top_k == 3), None)
    if ft is None or base is None:
        return []
    paper = paper_gains()
    rows = []
    for task in HELDOUT_TASKS:
        diff = difference(ft, base, task)
        if diff is None:
            continue
        rows.append(
            {
                "claim": f"MoE-Prism LG w/ FT K=12 minus the original K'=3, {SHORT_NAMES[task]} "
                "accuracy (points; matches or beats)",
                "experiment": "prism_accuracy",
                "decoding": "-",
                "paper": paper,
                "ours [95%]": diff.text(),
                "verdict": diff.verdict(),
                "sequences": f"{diff.n} documents",
                "training seeds": "-",
            }
        )
    return rows


def prism_ppl_claims(records: list[RunRecord]) -> list[dict]:
    """Table 2 at each model's lowest K, where the paper's gates differ most: CG and LG w/o FT
    word perplexity over the original's at equal compute (K' = K / 4 experts), paired over the
    same held-out documents (an interval needs the windowed task's per-document scores)."""
    rows = []
    for c in gate_changes(records) if records else []:
        if c["K"] != min(PAPER_TABLE2[c["model"]]) or c["gate"] == "LG w/ FT":
            continue
        paired = c["paired"]
        rows.append(
            {
                "claim": f"MoE-Prism {c['gate']} perplexity over the original's at equal "
                f"compute, {PRISM_MODELS[c['model']]} K={c['K']} (K'={c['K'] // 4})",
                "experiment": "prism_ppl",
                "decoding": "-",
                "paper": f"{c['paper']:.3f} (WikiText)",
                "ours [95%]": paired.text(3 if abs(paired.ratio - 1) > 1e-3 else 7)
                if paired
                else f"{c['plain']:.3f} [no interval]",
                "verdict": paired.verdict("higher", "lower") if paired else "-",
                "sequences": f"{paired.n} documents" if paired else "no per-document scores",
                "training seeds": "-",
            }
        )
    return rows


def _row(claim, experiment, paper, a, b, spread, words="speed", prompts="all") -> dict:
    r = ratio(a, b, prompts=prompts)
    return {
        "claim": claim,
        "experiment": experiment,
        "decoding": decoding_label(a),
        "paper": f"{paper:.3f}" if paper == paper else "-",
        "ours [95%]": cell(r),
        "verdict": verdict(r, words),
        "sequences": r.n if r else "-",
        "training seeds": training_spread(a, b, spread, verdict(r, words), words, prompts),
    }


def claims_lines(by_experiment: dict[str, list[RunRecord]]) -> list[str]:
    spread = by_training_seed(
        [r for name in SPREAD_EXPERIMENTS for r in by_experiment.get(name, [])]
    )
    rows = (
        speq_claims(by_experiment, spread)
        + speq_beyond_claims(by_experiment.get("speq_beyond", []), spread)
        + prism_offload_claims(by_experiment.get("prism_offload", []), spread)
        + prism_accuracy_claims(by_experiment.get("prism_accuracy", []))
        + prism_ppl_claims(by_experiment.get("prism_ppl", []))
    )
    if not rows:
        return []
    return [
        "## Claims: the papers' and ours",
        "",
        "The speed ratios (tokens/s; for MoE-Prism, TPOT, below 1 = faster) are on the "
        f"virtual clock: {INTERVALS} The accuracy rows are differences in points over the "
        "same documents, with a paired bootstrap interval; the perplexity rows are word "
        "perplexity ratios over the same held-out documents (below 1 = better). "
        "The papers give no intervals. "
        "Proxy-training spread is not in these intervals: `training seeds` gives the same "
        "comparison's range on proxies retrained with other seeds (`+experiment=proxy_spread`, "
        "`proxy_spread_prism`; reports/proxy_spread*.md) and on how many of them the verdict "
        "holds, where those runs exist.",
        "",
        pd.DataFrame(rows).to_markdown(index=False),
        "",
    ]
