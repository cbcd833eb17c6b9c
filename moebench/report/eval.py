"""reports/<eval experiment>.md: lm-eval results from eval.json records."""

from __future__ import annotations

import pandas as pd

from moebench.report.accuracy import (
    CHANCE,
    HELDOUT_TASKS,
    SHORT_NAMES,
    accuracy,
    cell,
    frequency_baselines,
)
from moebench.report.common import flag_invalid, plt, save_figure, weights_line
from moebench.schema import RunRecord

HEADLINE = {
    "wikitext": "word_perplexity",
    "heldout_ppl": "word_perplexity",
    "heldout_ppl_windows": "word_perplexity",
    "lambada_openai": "acc",
    "piqa": "acc",
    "hellaswag": "acc_norm",
    "arc_easy": "acc",
    "arc_challenge": "acc_norm",
    "winogrande": "acc",
    "boolq": "acc",
    **dict.fromkeys(HELDOUT_TASKS, "acc"),
}


def heldout_table(records: list[RunRecord]) -> list[str]:
    """The generated held-out tasks, one row per record: accuracy with lm-eval's standard
    error and how many standard errors it stands above chance."""
    with_tasks = [r for r in records if any(accuracy(r, t) for t in HELDOUT_TASKS)]
    if not with_tasks:
        return []
    rows = []
    for r in sorted(with_tasks, key=lambda r: (r.model.name, r.method)):
        row = {"model": r.model.name, "method": r.method}
        for task in HELDOUT_TASKS:
            value = accuracy(r, task)
            row[f"{SHORT_NAMES[task]} acc % ± se"] = cell(r, task)
            row[f"{SHORT_NAMES[task]} SEs above chance"] = (
                (value[0] - CHANCE) / value[1] if value and value[1] > 0 else float("nan")
            )
        rows.append(row)
    return [
        "## The held-out tasks (what a proxy can solve)",
        "",
        "Multiple choice generated from the held-out works no proxy trained on "
        "(eval/heldout_tasks.py, 1000 documents each, 0-shot): the real next line against "
        "three copies with two adjacent words swapped (`word order`), and the next function "
        f"word against three others (`function word`). Chance is {100 * CHANCE:.0f}%; word "
        f"frequency alone scores {frequency_baselines(with_tasks, list(HELDOUT_TASKS))}.",
        "",
        pd.DataFrame(rows).to_markdown(index=False, floatfmt=".1f"),
        "",
        "## Standard tasks",
        "",
    ]


def eval_report(records: list[RunRecord], out, name: str) -> list[str]:
    rows = []
    for r in records:
        for task, res in sorted(r.eval["results"].items()):
            if task in HELDOUT_TASKS:
                continue
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
    acc = frame
    if rows:
        acc = frame[frame["task"].map(lambda t: HEADLINE.get(t, "").startswith("acc"))]
    if len(acc):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        values = [row[HEADLINE[row["task"]]] for _, row in acc.iterrows()]
        ax.bar([f"{t}\n{m}" for t, m in zip(acc["task"], acc["model"], strict=True)], values)
        ax.set_ylabel("accuracy (headline metric)")
        ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        save_figure(fig, out / "figs" / f"{name}_accuracy.png")
    standard = [r for r in records if set(r.eval["results"]) - set(HELDOUT_TASKS)]
    limits = sorted({str(r.config.eval.limit) for r in standard})
    return [
        f"# Accuracy: {name}",
        "",
        f"**Conditions.** lm-eval {records[0].env['versions'].get('lm_eval')}, "
        f"{records[0].config.eval.num_fewshot}-shot; models "
        f"{', '.join(sorted({r.model.name for r in records}))}; commit(s) "
        f"{', '.join(sorted({(r.git['sha'] or 'none')[:10] for r in records}))}. "
        f"{weights_line(records)}",
        "",
        *heldout_table(records),
        *(
            [
                "Offline task copies from ../shared/data mirroring the standard tasks "
                f"(eval/tasks.py), at most {', '.join(limits)} documents per task. They ask for "
                "knowledge a Shakespeare-sized proxy lacks: expect chance-level multiple-choice "
                "accuracy from a proxy; they are meant for real checkpoints.",
                "",
                frame.to_markdown(index=False, floatfmt=".4g"),
                "",
                "Caveats: boolq's local copy has no passages (question-only prompts); wikitext "
                "is rebuilt from the non-empty lines of the raw test split; hellaswag contexts "
                "come from a text export.",
                "",
            ]
            if rows
            else []
        ),
        *flag_invalid(records),
        "",
        f"![accuracy](figs/{name}_accuracy.png)" if len(acc) else "",
    ]
