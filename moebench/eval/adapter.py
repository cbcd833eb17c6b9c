"""Evaluate any moebench model (and method) with lm-eval's Python API.

The model object goes to lm-eval's `HFLM` as `pretrained`; a method's engine, when given,
is installed for the duration, so an offloaded or otherwise patched model is scored exactly
as it runs. Offline tasks come from eval/tasks.py; with `include_defaults` the standard task
names resolve from the hub instead (a user option with network).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any
from unittest import mock

from moebench.models.loaded import LoadedModel


@contextlib.contextmanager
def engine_bracketed(loaded: LoadedModel, method) -> Any:
    """Install `method`'s engine and open/close an engine step around every model forward."""
    if method is None or not hasattr(method, "engine"):
        yield
        return
    from moebench.engine.experts_impl import engine_installed

    engine = method.engine

    def before(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        engine.begin_forward(int(ids.numel()), 0)

    def after(_module, _args, _output):
        engine.end_forward()

    handles = [
        loaded.model.register_forward_pre_hook(before, with_kwargs=True),
        loaded.model.register_forward_hook(after),
    ]
    try:
        with engine_installed(loaded, engine):
            yield
    finally:
        for h in handles:
            h.remove()


# lm-eval's standard errors: closed form for means (accuracy); a bootstrap of this many draws
# for the metrics it bootstraps (lambada's perplexity). DISABLE_MULTIPROC keeps that bootstrap
# in this process (lm-eval would start a pool of every core) with its fixed seeds.
STDERR_BOOTSTRAP_ITERS = 1000
SINGLE_PROCESS_BOOTSTRAP = {"DISABLE_MULTIPROC": "1"}


def per_document(samples: dict[str, list[dict]]) -> dict[str, dict[str, list]]:
    """Each task's per-document scores in doc_id order ({metric: [value per doc]}), so two
    runs on the same documents can be compared document by document (a paired interval)."""
    out = {}
    for task, rows in samples.items():
        rows = sorted(rows, key=lambda r: r["doc_id"])
        names = [m for m in rows[0].get("metrics", []) if m in rows[0]] if rows else []
        out[task] = {"doc_id": [r["doc_id"] for r in rows]} | {
            m: [list(r[m]) if isinstance(r[m], tuple | list) else r[m] for r in rows] for m in names
        }
    return out


def evaluate(
    loaded: LoadedModel,
    tasks: list[str],
    num_fewshot: int,
    limit: int | None,
    method=None,
    batch_size: int = 8,
    offline: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """lm-eval results for `tasks` on `loaded` (optionally under `method`)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    if loaded.tokenizer is None:
        from moebench.errors import UserError

        raise UserError(
            f"model {loaded.name} has no tokenizer; evaluate a proxy or a real checkpoint"
        )
    from moebench.eval.tasks import check_available, task_dir

    folder = task_dir()
    if offline:
        check_available(tasks, folder)
    manager = TaskManager(include_path=str(folder), include_defaults=not offline)
    lm = HFLM(
        pretrained=loaded.model,
        tokenizer=loaded.tokenizer,
        batch_size=batch_size,
        max_length=loaded.hf_config.max_position_embeddings,
    )
    with engine_bracketed(loaded, method), mock.patch.dict(os.environ, SINGLE_PROCESS_BOOTSTRAP):
        out = simple_evaluate(
            model=lm,
            tasks=tasks,
            num_fewshot=num_fewshot,
            limit=limit,
            task_manager=manager,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
            log_samples=True,
            bootstrap_iters=STDERR_BOOTSTRAP_ITERS,
        )
    return {
        "per_doc": per_document(out.get("samples", {})),
        "results": out["results"],
        "versions": out.get("versions", {}),
        "n-shot": out.get("n-shot", {}),
        "n-samples": out.get("n-samples", {}),
        "configs": {
            t: {
                k: str(v)
                for k, v in c.items()
                if k in ("dataset_kwargs", "metadata", "output_type")
            }
            for t, c in out.get("configs", {}).items()
        },
    }
