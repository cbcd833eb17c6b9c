"""reports/<eval experiment>.md: lm-eval results from eval.json records."""

from __future__ import annotations

import pandas as pd

from moebench.report.common import flag_invalid, plt, save_figure, weights_line
from moebench.schema import RunRecord

HEADLINE = {
    "wikitext": "word_perplexity",
    "heldout_ppl": "word_perplexity",
    "lambada_openai": "acc",
    "piqa": "acc",
    "hellaswag": "acc_norm",
    "arc_easy": "acc",
    "arc_challenge": "acc_norm",
    "winogrande": "acc",
    "boolq": "acc",
}


def eval_report(records: list[RunRecord], out, name: str) -> list[str]:
    rows = []
    for r in records:
        for task, res in sorted(r.eval["results"].items()):
            metrics = {
                k.split(",")[0]: v
                for k, v in res.items()
                if isinstance(v, float) and "stderr" not in k
            }
            rows.append(
                {
                    "model": r.model.name,
                    "method": r.method,
                    "task": task,
                    "n": r.eval["n-samples"].get(task, {}).get("effective"),
                    "shots": r.eval["n-shot"].get(task),
                    **metrics,
                }
            )
    frame = pd.DataFrame(rows)
    acc = frame[frame["task"].map(lambda t: HEADLINE.get(t, "").startswith("acc"))]
    if len(acc):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        values = [row[HEADLINE[row["task"]]] for _, row in acc.iterrows()]
        ax.bar([f"{t}\n{m}" for t, m in zip(acc["task"], acc["model"], strict=True)], values)
        ax.set_ylabel("accuracy (headline metric)")
        ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        save_figure(fig, out / "figs" / f"{name}_accuracy.png")
    caveats = {}
    for r in records:
        for task, cfg in r.eval.get("configs", {}).items():
            text = cfg.get("metadata", "")
            if "moebench_caveat" in text and "''" not in text:
                caveats[task] = text
    c = records[0].config
    return [
        f"# Accuracy: {name}",
        "",
        f"**Conditions.** lm-eval {records[0].env['versions'].get('lm_eval')}, offline task copies "
        "from ../shared/data mirroring the standard tasks (eval/tasks.py), "
        f"{c.eval.num_fewshot}-shot, at most {c.eval.limit} documents per task; models "
        f"{', '.join(sorted({r.model.name for r in records}))}; commit(s) "
        f"{', '.join(sorted({(r.git['sha'] or 'none')[:10] for r in records}))}. "
        f"{weights_line(records)}",
        "",
        frame.to_markdown(index=False, floatfmt=".4g"),
        "",
        *flag_invalid(records),
        "",
        "Caveats: boolq's local copy has no passages (question-only prompts); wikitext is rebuilt "
        "from the non-empty lines of the raw test split; hellaswag contexts come from a text "
        "export. Proxies are tiny models trained on Shakespeare: expect chance-level "
        "multiple-choice accuracy.",
        "",
        f"![accuracy](figs/{name}_accuracy.png)" if len(acc) else "",
    ]
