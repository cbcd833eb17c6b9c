"""MoE-Prism's quality reports, from eval.json records:
- reports/prism_ppl.md: Table 2 (perplexity at equal compute, three gates, three models);
- reports/prism_points.md: the operating-point curve and its count (the "over 4x" claim);
- reports/prism_partition.md: how much the partition method matters at fixed K.
Accuracy (Table 3, and along the operating points) is in report/prism_accuracy.py.
The paper's numbers stand beside ours; definitions the paper leaves open are stated here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from moebench.report import perplexity
from moebench.report.accuracy import per_document
from moebench.report.common import flag_invalid, plt, save_figure, weights_line
from moebench.schema import RunRecord

# Table 2, WikiText PPL: model -> K -> (Original at K' = K/4, CG, LG w/o FT, LG w/ FT)
PAPER_TABLE2 = {
    "olmoe": {
        12: (15.7202, 14.8851, 15.7087, 14.6805),
        16: (12.1098, 11.9492, 12.1138, 11.8186),
        20: (10.5078, 10.5097, 10.5014, 10.4519),
        24: (9.7343, 9.7645, 9.7341, 9.7687),
    },
    "dsv2lite": {
        8: (11.1169, 11.1126, 11.1123, 11.0852),
        12: (9.9905, 10.0033, 9.9896, 9.9836),
        16: (9.6327, 9.6406, 9.6329, 9.6301),
        20: (9.4932, 9.4976, 9.4960, 9.4914),
    },
    "qwen3_30b": {
        12: (18.2259, 15.0531, 18.2300, 18.2831),
        16: (13.7355, 12.8977, 13.7187, 13.7140),
        20: (12.3119, 12.0546, 12.2981, 12.2962),
        24: (11.7772, 11.7444, 11.7743, 11.7702),
    },
}
GATES = {"CG": "cg", "LG w/o FT": "lg", "LG w/ FT": "lg_ft"}  # the order of PAPER_TABLE2's columns
TOLERANCES = (0.001, 0.005, 0.01)  # relative perplexity gains that count as "distinct"


def _ppl_rows(records: list[RunRecord]) -> pd.DataFrame:
    """One row per record; K counts sub-experts (an original model at K' experts stands at
    K = N K', N from the experiment's MoE-Prism records)."""
    n = next((r.method_details["prism"]["n"] for r in records if r.method == "prism"), 4)
    rows = []
    for r in records:
        task = perplexity.task(r)
        res = r.eval["results"].get(task, {})
        prism = r.method == "prism"
        details = r.method_details.get("prism", {})
        k = details["active_k"] if prism else n * r.options.top_k
        rows.append(
            {
                "model": r.model.proxy_of,
                "variant": details.get("gate", "LG w/o FT") if prism else "original",
                "K": k,
                "compute (experts)": k / n,
                "word ppl": res.get("word_perplexity,none", float("nan")),
                "bits/byte": res.get("bits_per_byte,none", float("nan")),
                "documents": len((per_document(r, task) or {}).get("doc_id", [])) or None,
                "partition cost": details.get("partition_cost"),
                "cg pattern": str(details.get("cg_pattern", "")),
                "hardware": r.hardware,
                "run_key": r.run_key,
            }
        )
    return pd.DataFrame(rows).sort_values(["model", "variant", "K"]).reset_index(drop=True)


def _tasks_by_model(records: list[RunRecord]) -> str:
    """`heldout_ppl_windows` for olmoe; `heldout_ppl` for dsv2lite, qwen3_30b`: which documents
    each model's rows were scored on (windows give intervals, whole works do not)."""
    models: dict[str, set[str]] = {}
    for r in records:
        models.setdefault(str(perplexity.task(r)), set()).add(r.model.proxy_of)
    return "; ".join(
        f"`{task}` for {', '.join(sorted(names))}" for task, names in sorted(models.items())
    )


def operating_points(points: list[tuple[float, float]], tolerance: float) -> int:
    """Count configurations (compute, perplexity) that are stable (lower perplexity than every
    cheaper configuration) and distinct (lower than the best cheaper one by > `tolerance`,
    relative)."""
    best, count = float("inf"), 0
    for _, ppl in sorted(points):
        if ppl < best * (1 - tolerance):
            count += 1
        best = min(best, ppl)
    return count


def _gate_changes(frame: pd.DataFrame, by_key: dict[str, RunRecord]) -> list[dict]:
    """Each gate's word perplexity over the original's at the same K, per model and K the
    paper's Table 2 has: `paired` (with its interval over documents, None where the records
    cannot be paired) and the bare ratio `plain` of the two aggregates."""
    changes = []
    for model, paper in PAPER_TABLE2.items():
        part = frame[frame["model"] == model]
        for k, (p_orig, *p_gates) in paper.items():
            orig = part[(part["variant"] == "original") & (part["K"] == k)]
            if orig.empty:
                continue
            for (gate, _), p in zip(GATES.items(), p_gates, strict=True):
                ours = part[(part["variant"] == gate) & (part["K"] == k)]
                if ours.empty:
                    continue
                changes.append(
                    {
                        "model": model,
                        "K": k,
                        "gate": gate,
                        "original": orig["word ppl"].iloc[0],
                        "paired": perplexity.ratio(
                            by_key[ours["run_key"].iloc[0]], by_key[orig["run_key"].iloc[0]]
                        ),
                        "plain": ours["word ppl"].iloc[0] / orig["word ppl"].iloc[0],
                        "paper": p / p_orig,
                    }
                )
    return changes


def gate_changes(records: list[RunRecord]) -> list[dict]:
    """`_gate_changes` straight from the records (summary.md's claims, and Table 2's
    proxy-training spread, report/proxy_spread.py)."""
    return _gate_changes(_ppl_rows(records), {r.run_key: r for r in records})


def _table2(changes: list[dict]) -> pd.DataFrame:
    """Each gate's perplexity change over the original at equal compute, ours (with its paired
    interval over documents where the records kept per-document scores) beside the paper's."""
    rows: dict[tuple[str, int], dict] = {}
    for c in changes:
        row = rows.setdefault(
            (c["model"], c["K"]),
            {
                "model": c["model"],
                "K, K'": f"{c['K']}, {c['K'] // 4}",
                "ours original": int(round(c["original"])),
            },
        )
        row[f"ours {c['gate']}"] = perplexity.change_text(c["paired"], c["plain"])
        row[f"paper {c['gate']} %"] = 100 * (c["paper"] - 1)
    return pd.DataFrame(list(rows.values())).fillna("-")  # a gate not run at that K


def _changes_figure(changes: list[dict], out) -> None:
    """Table 2 as a figure: each gate's change over the original against K, per model, with
    the paired 95% interval as error bars where the records have one; the paper's as dashes."""
    models = list(dict.fromkeys(c["model"] for c in changes))
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for i, gate in enumerate(GATES):
            rows = [c for c in changes if (c["model"], c["gate"]) == (model, gate)]
            ks = [c["K"] for c in rows]
            ours = [100 * ((c["paired"].ratio if c["paired"] else c["plain"]) - 1) for c in rows]
            bars = [
                (
                    100 * (c["paired"].ratio - c["paired"].lo),
                    100 * (c["paired"].hi - c["paired"].ratio),
                )
                if c["paired"] and not math.isnan(c["paired"].lo)
                else (0.0, 0.0)
                for c in rows
            ]
            color = f"C{i}"
            ax.errorbar(
                ks,
                ours,
                yerr=np.array(bars).T,
                marker="o",
                capsize=3,
                color=color,
                label=f"{gate} (ours)",
            )
            ax.plot(
                ks,
                [100 * (c["paper"] - 1) for c in rows],
                ls="--",
                marker="x",
                color=color,
                alpha=0.6,
                label=f"{gate} (paper)",
            )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(model)
        ax.set_xlabel("K active sub-experts (original at K / 4 experts)")
    axes[0][0].set_ylabel("perplexity change over the original (%)")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, out / "figs" / "prism_ppl_change.png")


def prism_ppl(records: list[RunRecord], out) -> list[str]:
    frame = _ppl_rows(records)
    fig, axes = plt.subplots(
        1, frame["model"].nunique(), figsize=(4 * frame["model"].nunique(), 3.4), squeeze=False
    )
    for ax, (model, part) in zip(axes[0], frame.groupby("model"), strict=True):
        for variant, rows in part.groupby("variant"):
            ax.plot(rows["compute (experts)"], rows["word ppl"], marker="o", label=variant)
        ax.set_title(model)
        ax.set_xlabel("active compute (original experts)")
        ax.set_yscale("log")
    axes[0][0].set_ylabel("held-out word perplexity")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "figs" / "prism_ppl.png")
    changes = _gate_changes(frame, {r.run_key: r for r in records})
    compare = _table2(changes)
    if changes:
        _changes_figure(changes, out)
    first = next((r for r in records if r.method == "prism"), records[0])
    opts = first.options
    commits = ", ".join(sorted({(r.git["sha"] or "none")[:10] for r in records}))
    return [
        "# MoE-Prism: perplexity at equal compute (Table 2)",
        "",
        f"**Conditions.** Proxies of {', '.join(sorted(frame['model'].unique()))}; quality by "
        f"lm-eval {first.env['versions'].get('lm_eval')} rolling word perplexity on the held-out "
        f"Shakespeare works ({_tasks_by_model(records)}; the paper uses WikiText-2, which these "
        "proxies barely model); N = 4; partition by greedy + simulated annealing on 16 x 128 "
        "calibration tokens of the training split (T0 = 100 for every model, x0.995 per "
        f"proposal, {opts.iters} proposals per expert, not the paper's 100K); CG: 4 gate "
        "neurons per sub-expert by co-activation centrality over the top 3/4 of its neurons, "
        "patterns from `prism/gates.default_pattern` (the paper's own where it gives one); LG w/ "
        f"FT: {opts.ft_steps} Adam steps at lr {opts.ft_lr} on the routers only, batch 4 x 128 "
        "tokens of the training split, K annealed linearly from min(8, 4k') to 4k', evaluated "
        f"with plain top-K; commit(s) {commits}. "
        f"{weights_line(records)}",
        "",
        frame.drop(columns=["hardware", "run_key"]).to_markdown(index=False, floatfmt=".5g"),
        "",
        *flag_invalid(records),
        "",
        "**Change against the original at equal compute** (ours on held-out text, with its "
        "paired 95% interval over the same documents and its verdict where the records kept "
        "per-document log-likelihoods of 8 or more documents; the paper's on WikiText):",
        "",
        compare.to_markdown(index=False, floatfmt=".3g") if len(compare) else "_missing points_",
        "",
        "![ppl](figs/prism_ppl.png)",
        "",
        *(
            [
                "![each gate's change over the original, 95% intervals where paired]"
                "(figs/prism_ppl_change.png)",
                "",
            ]
            if changes
            else []
        ),
    ]


def _decode_cost(record: RunRecord) -> dict[str, float]:
    """The operating point's per-token decode cost as the run recorded it (batch 1, 512 cached
    tokens, at the charged model's sizes); NaN for a record made before runs kept it."""
    point = record.method_details.get("operating_point")
    if point is None:
        return {
            "expert MB/token": float("nan"),
            "expert GFLOP/token": float("nan"),
            "modeled ms/token": float("nan"),
        }
    return {
        "expert MB/token": point["expert_mb_per_token"],
        "expert GFLOP/token": point["expert_gflop_per_token"],
        "modeled ms/token": 1e3 * point["modeled_sec_per_token"],
    }


def prism_points(records: list[RunRecord], out) -> list[str]:
    frame = _ppl_rows(records)
    by_key = {r.run_key: r for r in records}
    frame = pd.concat(
        [frame, pd.DataFrame([_decode_cost(by_key[k]) for k in frame["run_key"]])], axis=1
    )
    missing = int(frame["modeled ms/token"].isna().sum())
    placed = frame.dropna(subset=["modeled ms/token"])
    counts = []
    for variant, part in placed.groupby("variant"):
        pts = list(zip(part["modeled ms/token"], part["word ppl"], strict=True))
        counts.append(
            {
                "variant": variant,
                "configurations": len(pts),
                **{f"distinct at {t:.1%}": operating_points(pts, t) for t in TOLERANCES},
            }
        )
    counts = pd.DataFrame(
        counts, columns=["variant", "configurations", *(f"distinct at {t:.1%}" for t in TOLERANCES)]
    )
    orig = counts[counts["variant"] == "original"]
    ratio_lines = []
    for _, row in counts[counts["variant"] != "original"].iterrows() if len(orig) else []:
        ratios = [row[c] / orig[c].iloc[0] for c in counts.columns[2:]]
        ratio_lines.append(
            f"- {row['variant']}: "
            + ", ".join(f"{r:.2g}x at {t:.1%}" for r, t in zip(ratios, TOLERANCES, strict=True))
        )
    if len(placed):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for variant, part in placed.groupby("variant"):
            ax.scatter(part["modeled ms/token"], part["word ppl"], label=variant, s=14)
        ax.set_xlabel(f"modeled decode latency per token (ms, {records[0].hardware}, batch 1)")
        ax.set_ylabel("held-out word perplexity")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, out / "figs" / "prism_points.png")
    return [
        '# MoE-Prism: operating points (Fig. 9 and the "over 4x" claim)',
        "",
        f"**Conditions.** Proxy of `{frame['model'].iloc[0]}`; quality as in reports/prism_ppl.md; "
        f"cost per point from the cost model at the real model's sizes on `{records[0].hardware}` "
        "(batch-1 decode with 512 cached tokens, one fused MoE kernel per layer); commit(s) "
        f"{', '.join(sorted({(r.git['sha'] or 'none')[:10] for r in records}))}. "
        f"{weights_line(records)}",
        "",
        "**Definition (ours; the paper gives none).** Order a model's configurations by modeled "
        "latency. A configuration is a *stable* operating point when its perplexity is lower than "
        "that of every cheaper configuration (quality never gets worse as you pay more), and "
        "*distinct* when it beats the best cheaper one by more than a relative tolerance t. We "
        "count distinct, stable points at three t.",
        "",
        counts.to_markdown(index=False),
        "",
        "Ratio to the original model (the paper claims more than 4x):",
        "",
        *ratio_lines,
        "",
        *(
            [
                f"{missing} records predate run-time cost figures "
                "(method_details.operating_point); rerun them to place them on the curve.",
                "",
            ]
            if missing
            else []
        ),
        frame.drop(
            columns=["hardware", "partition cost", "cg pattern", "run_key", "documents"]
        ).to_markdown(index=False, floatfmt=".5g"),
        "",
        *flag_invalid(records),
        "",
        "![points](figs/prism_points.png)" if len(placed) else "",
        "",
        "Accuracy at a subset of these points, on held-out tasks the proxies can solve: "
        "reports/prism_points_accuracy.md.",
        "",
    ]


def prism_partition(records: list[RunRecord], out) -> list[str]:
    """reports/prism_partition.md: how much the partition method matters at fixed K."""
    rows = [
        {
            "partition": r.options.partition,
            "gate": r.method_details["prism"]["gate"],
            "K": r.options.active_k,
            "objective (mass left in the 3 smallest groups)": r.method_details["prism"].get(
                "partition_cost"
            ),
            "word ppl": r.eval["results"]["heldout_ppl"]["word_perplexity,none"],
            "bits/byte": r.eval["results"]["heldout_ppl"]["bits_per_byte,none"],
        }
        for r in records
    ]
    frame = pd.DataFrame(rows).sort_values(["gate", "K", "word ppl"]).reset_index(drop=True)
    return [
        "# MoE-Prism: partition ablation",
        "",
        f"**Conditions.** Proxy of `{records[0].model.proxy_of}`, N = 4; objective measured on the "
        "calibration activations as a fraction of each token's total L1 mass (lower concentrates "
        "more); perplexity by lm-eval `heldout_ppl`; commit(s) "
        f"{', '.join(sorted({(r.git['sha'] or 'none')[:10] for r in records}))}. "
        f"{weights_line(records)}",
        "",
        frame.to_markdown(index=False, floatfmt=".5g"),
        "",
        *flag_invalid(records),
        "",
    ]
