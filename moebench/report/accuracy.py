"""Accuracy as the reports print it: a task's accuracy with lm-eval's standard error, and the
difference between two records on the same documents with a paired 95% interval.

Two records pair on a task when both kept per-document scores (eval.per_doc) for the same
documents: the same doc ids of a task file with the same content hash (generated tasks carry
`moebench_docs_sha256` in their metadata). Pairing removes document difficulty, so a 2-point
difference that two independent standard errors of 1.4 cannot separate often can be.
"""

from __future__ import annotations

import ast

from moebench.bench.paired import PairedDifference, paired_difference
from moebench.eval.heldout_tasks import CHOICES, GENERATORS
from moebench.schema import RunRecord

HELDOUT_TASKS = tuple(GENERATORS)
SHORT_NAMES = {"heldout_word_order": "word order", "heldout_function_word": "function word"}
CHANCE = 1 / CHOICES


def accuracy(record: RunRecord, task: str, metric: str = "acc") -> tuple[float, float] | None:
    """(accuracy, lm-eval's standard error) of `task`, None when the record lacks it."""
    res = record.eval["results"].get(task) if record.eval else None
    if not res or f"{metric},none" not in res:
        return None
    se = res.get(f"{metric}_stderr,none")
    return res[f"{metric},none"], se if isinstance(se, float) else float("nan")


def cell(record: RunRecord, task: str, metric: str = "acc") -> str:
    """`72.5 ± 1.4` (percent, ± one standard error), or `-`."""
    value = accuracy(record, task, metric)
    return "-" if value is None else f"{100 * value[0]:.1f} ± {100 * value[1]:.1f}"


def task_metadata(record: RunRecord, task: str, key: str):
    """A task config's metadata entry (the adapter keeps the metadata as its dict's repr)."""
    text = record.eval.get("configs", {}).get(task, {}).get("metadata", "")
    return ast.literal_eval(text).get(key) if text else None


def context_free(record: RunRecord, task: str) -> float | None:
    """What word frequency alone scores on a generated task (its metadata), else None."""
    return task_metadata(record, task, "moebench_context_free_acc")


def frequency_baselines(records: list[RunRecord], tasks: list[str]) -> str:
    """`word order 25.0%, function word 27.0%`: each task's context-free score, from the
    first record that ran it."""
    return ", ".join(
        f"{SHORT_NAMES[t]} {100 * v:.1f}%"
        for t in tasks
        if (v := context_free(next(r for r in records if accuracy(r, t)), t)) is not None
    )


def per_document(record: RunRecord, task: str) -> dict | None:
    """The per-document scores lm-eval logged for `task` (eval.per_doc), None without them."""
    return record.eval.get("per_doc", {}).get(task) if record.eval else None


def paired_documents(a: RunRecord, b: RunRecord, task: str) -> tuple[dict, dict] | None:
    """Both records' per-document scores of `task` when they scored the same documents (the
    same doc ids of a task file with the same content hash), else None."""
    docs_a, docs_b = per_document(a, task), per_document(b, task)
    if not docs_a or not docs_b or docs_a["doc_id"] != docs_b["doc_id"]:
        return None
    sha = "moebench_docs_sha256"
    if task_metadata(a, task, sha) != task_metadata(b, task, sha):
        return None
    return docs_a, docs_b


def difference(
    a: RunRecord, b: RunRecord, task: str, metric: str = "acc"
) -> PairedDifference | None:
    """Record a's accuracy minus record b's on the same documents, with a paired interval;
    None when the two did not score the same documents."""
    paired = paired_documents(a, b, task)
    return None if paired is None else paired_difference(paired[0][metric], paired[1][metric])


def same_documents_scores(a: RunRecord, b: RunRecord, task: str) -> bool:
    """Whether two records scored every document of `task` identically (lossless check)."""
    docs_a, docs_b = per_document(a, task), per_document(b, task)
    return bool(docs_a and docs_b) and docs_a == docs_b
