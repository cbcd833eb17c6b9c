"""Where run records live and how they are written: one `result.json` (or `eval.json`) per
run, the single source of truth for every number. Their type is schema.RunRecord.

A record is written atomically (temporary file + rename), so a crash leaves either the old
state or a complete record, never half of one. Its directory is named by the run key: a
hash of everything that decides the result, so a rerun of the same config is skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import platform
import subprocess
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from moebench.config import (
    NON_IDENTITY_KEYS,
    RunConfig,
    to_dict,
    unset_late_fields,
)
from moebench.paths import atomic_file
from moebench.schema import (
    EVAL_FILE,
    RESULT_FILE,
    RETIRED_CONFIG,
    RecordModel,
    RunRecord,
    Validity,
)

FAILURE_FILE = "failed.json"
LIBRARIES = ("moebench", "torch", "transformers", "datasets", "lm_eval", "hydra-core", "wandb")


def identity(cfg: RunConfig) -> dict[str, Any]:
    """The part of the config that decides the result (no paths, logger or overwrite flag)."""
    data = unset_late_fields(cfg, to_dict(cfg)) | RETIRED_CONFIG
    for key in NON_IDENTITY_KEYS:
        data.pop(key, None)
    return data


def run_key(cfg: RunConfig) -> str:
    """Readable and unique: method, model, hardware, seed, then a hash of the identity."""
    digest = hashlib.sha256(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()
    return f"{cfg.method.name}-{cfg.model.name}-{cfg.hardware.name}-s{cfg.seed}-{digest[:10]}"


def run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.results_dir) / cfg.experiment / run_key(cfg)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON whole or not at all (paths.atomic_file)."""
    with atomic_file(path) as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the checkout moebench runs from (None outside git); results/
    and reports/ are data, so uncommitted records do not make a run dirty."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    sha = git("rev-parse", "HEAD")
    # dirty = the code differs from the commit; records and reports being written do not count
    status = git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results", ":!reports"
    )
    return {"sha": sha, "dirty": None if status is None else bool(status)}


def environment() -> dict[str, Any]:
    """Library versions and the device the run saw."""
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    import torch

    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"cpu ({platform.machine()})"
    )
    from moebench.determinism import cpu_identity, numerics_state

    return {
        "python": platform.python_version(),
        "versions": versions,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu_identity(),
        "numerics": numerics_state(),
    }


def make_record(
    cfg: RunConfig,
    clock: str,
    metrics: dict[str, Any],
    validity: dict[str, Any],
    wall_sec: float,
    identity_of_weights: dict[str, Any] | None = None,
    **results: Any,
) -> RunRecord:
    """The record of a configured run: its config, model, clock and environment, plus what
    it measured (`results`: method_details, raw, output_sha256, eval, replayed_from)."""
    model = RecordModel(
        name=cfg.model.name,
        family=cfg.model.family,
        proxy_of=cfg.model.proxy_of,
        source=cfg.model.source,
        **(identity_of_weights or {}),
    )
    return RunRecord(
        run_key=run_key(cfg),
        experiment=cfg.experiment,
        method=cfg.method.name,
        model=model,
        hardware=cfg.hardware.name,
        clock=clock,
        metrics=metrics,
        validity=Validity(**validity),
        git=git_state(),
        env=environment(),
        config=cfg,
        workload={"name": cfg.workload.name, "version": cfg.workload.version},
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        wall_sec=wall_sec,
        **results,
    )


def write_record(path: Path, record: RunRecord) -> None:
    """The one way a record reaches disk (atomically)."""
    write_json_atomic(path, record.to_dict())


def write_failure(directory: Path, err: BaseException) -> Path:
    """Leave a marker that says why the run died (never a result.json)."""
    path = directory / FAILURE_FILE
    write_json_atomic(
        path,
        {
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exception(err),
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    return path


def record_file(cfg: RunConfig) -> str:
    """eval.json for accuracy runs (eval.tasks set), result.json for speed runs."""
    return EVAL_FILE if cfg.eval.tasks else RESULT_FILE


def write_benchmark_record(
    results_dir: str | Path,
    experiment: str,
    model: str,
    proxy_of: str | None,
    metrics: dict[str, Any],
    valid: bool = True,
    weights_sha256: str | None = None,
    arguments: dict[str, Any] | None = None,
    clock: str = "wall",
    raw: dict[str, Any] | None = None,
) -> Path:
    """A command-line benchmark's record (no Hydra config; `arguments` are its command
    line's): results/<experiment>/<model>/. `clock`: wall (a CPU benchmark) or none (a
    clock-free count); `raw`: its per-unit samples."""
    record = RunRecord(
        run_key=f"{experiment}-{model}",
        experiment=experiment,
        method=experiment,
        model=RecordModel(name=model, proxy_of=proxy_of, weights_sha256=weights_sha256),
        hardware="cpu" if clock == "wall" else "none",
        clock=clock,
        metrics=metrics,
        raw=raw,
        validity=Validity(valid, [] if valid else ["output differs from greedy"]),
        git=git_state(),
        env=environment(),
        benchmark=arguments,
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    path = Path(results_dir) / experiment / model / RESULT_FILE
    write_record(path, record)
    scalars = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in scalars.items()})
    print(f"wrote {path}")
    return path
