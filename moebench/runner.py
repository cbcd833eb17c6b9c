"""Run one configured experiment point: model -> method -> workload -> record.

The entry point (`__main__`) validates the config; this module does the work and owns the
record lifecycle: skip if done, failure marker on a crash, atomic write on success.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from moebench.bench.metrics import latency_metrics, output_sha256
from moebench.bench.workloads import make_prompts
from moebench.config import RunConfig
from moebench.engine.costs import CostModel, ModelShape, shape_from_hf_config
from moebench.errors import ConfigError, UserError
from moebench.methods import METHODS
from moebench.models.build import LoadedModel, build_model
from moebench.records import (
    FAILURE_FILE,
    RESULT_FILE,
    header,
    run_dir,
    write_failure,
    write_json_atomic,
)
from moebench.sinks import mirror


def charged_shape(cfg: RunConfig, loaded: LoadedModel) -> ModelShape:
    """Sizes the clock charges: the real model a proxy stands for, else the model itself."""
    if cfg.model.proxy_of is None:
        return shape_from_hf_config(loaded.hf_config)
    from moebench.models.catalog import real_model_shape

    return real_model_shape(cfg.model.proxy_of)


def judge(cfg: RunConfig, outputs: list[list[int]], metrics: dict[str, Any]) -> dict[str, Any]:
    """A run is valid when every prompt got all its tokens and every metric is finite."""
    reasons = []
    short = [i for i, out in enumerate(outputs) if len(out) != cfg.workload.new_tokens]
    if short:
        reasons.append(f"prompts {short} produced fewer than {cfg.workload.new_tokens} tokens")
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        reasons.append(f"non-finite metrics: {bad}")
    return {"valid": not reasons, "reasons": reasons}


def execute(cfg: RunConfig) -> Path | None:
    """Run `cfg` unless its record exists; return the record path (None when skipped)."""
    out_dir = run_dir(cfg)
    result_path = out_dir / RESULT_FILE
    if result_path.exists() and not cfg.force:
        print(f"moebench: skip {result_path} (exists; force=true reruns)")
        return None
    if cfg.method.name not in METHODS:
        raise ConfigError("method", cfg.method.name, "one of " + ", ".join(sorted(METHODS)))
    (out_dir / FAILURE_FILE).unlink(missing_ok=True)
    try:
        record = _run(cfg)
    except UserError:
        raise
    except BaseException as err:
        marker = write_failure(out_dir, err)
        print(f"moebench: run failed; see {marker}")
        raise
    write_json_atomic(result_path, record)
    print(f"moebench: wrote {result_path}")
    mirror(cfg.logger, record, out_dir)
    return result_path


def _run(cfg: RunConfig) -> dict[str, Any]:
    wall_start = time.perf_counter()
    loaded = build_model(cfg.model)
    costs = CostModel(cfg.hardware, charged_shape(cfg, loaded))
    method = METHODS[cfg.method.name](cfg, loaded, costs)
    prompts = make_prompts(cfg.workload, loaded, cfg.seed)
    outputs, step_sec = [], []
    for prompt in tqdm(prompts, desc=f"{cfg.method.name} {cfg.model.name}", unit="prompt",
                       disable=len(prompts) < 2):
        tokens, steps = method.generate(prompt, cfg.workload.new_tokens)
        outputs.append(tokens)
        step_sec.append(steps)
    metrics = latency_metrics(step_sec) | method.metrics()
    record = header(cfg, method.clock_label)
    record |= {
        "model": record["model"] | {"weights_sha256": loaded.weights_sha256},
        "metrics": metrics,
        "raw": {"step_sec": step_sec},
        "output_sha256": output_sha256(outputs),
        "validity": judge(cfg, outputs, metrics),
        "wall_sec": time.perf_counter() - wall_start,
    }
    return record
