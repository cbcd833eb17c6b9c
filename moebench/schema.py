"""The one record type: `RunRecord`, what every result.json and eval.json holds.

Runs and benchmarks build a RunRecord (records.py) and write it with `to_dict`; reports,
regress and compare_records read them back with `load_records` as RunRecords, so they use
typed fields (`r.config.method.budget_gb`, `r.options.variant`, `r.model.proxy_of`) and
never dig through nested dicts. A record written by an older schema is migrated on load
(`migrate`); one from a newer moebench, or a file that is not a record, fails in one line.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from moebench.config import RunConfig, load_run_config, to_dict
from moebench.errors import UserError

SCHEMA_VERSION = 2
RESULT_FILE = "result.json"
EVAL_FILE = "eval.json"  # accuracy records: lm-eval results instead of timings
# Keys removed from RunConfig, with the one value each ever took: migration drops them, and
# run keys (records.identity) still hash them, so older records keep their run keys.
RETIRED_CONFIG = {"clock": "virtual"}  # schema 1 kept `clock`, which no run ever read
# schema 1 -> 2: metric keys gained their units
RENAMED_METRICS = {
    "slo_attainment": "slo_attainment_frac",
    "accept_len_mean": "accept_len_tokens_mean",
    "k_mean": "k_tokens_mean",
}


@dataclass
class RecordModel:
    """Which model (and weights) a record ran."""

    name: str
    family: str | None = None
    proxy_of: str | None = None  # the real model whose sizes the virtual clock charged
    source: str | None = None  # random | proxy | hf
    weights_sha256: str | None = None  # the tensors' hash (None for a replay or a simulation)
    checkpoint: dict[str, Any] | None = None  # a real checkpoint's files and hub revision

    @property
    def sha256(self) -> str | None:
        """The weights' identity: the tensors' hash, else the checkpoint's."""
        return self.weights_sha256 or (self.checkpoint or {}).get("sha256")


@dataclass
class Validity:
    valid: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class RunRecord:
    """One run: what ran (config, model, hardware), what it measured and by which clock."""

    run_key: str
    experiment: str
    method: str
    model: RecordModel
    hardware: str
    clock: str  # virtual | wall | cuda | none (accuracy only)
    metrics: dict[str, Any]
    validity: Validity
    git: dict[str, Any]
    env: dict[str, Any]
    config: RunConfig | None = None  # None for a command-line benchmark (see `benchmark`)
    workload: dict[str, Any] | None = None  # name and version, for grouping
    method_details: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    wall_sec: float | None = None
    raw: dict[str, Any] | None = None  # per-step samples and side files
    replayed_from: str | None = None  # the routing trace or recording a replay ran
    # why a decode run ran the model instead of replaying (it recorded the point, replay=false,
    # a real clock, or a method whose routing is not recorded); None for a replay
    live_reason: str | None = None
    output_sha256: str | None = None  # hash of every generated token
    eval: dict[str, Any] | None = None  # lm-eval's output (accuracy runs)
    benchmark: dict[str, Any] | None = None  # a command-line benchmark's own arguments
    schema_version: int = SCHEMA_VERSION
    path: str | None = field(default=None, metadata={"stored": False})  # where it was loaded from

    @cached_property
    def options(self) -> Any:
        """The method's typed options (defaults filled in from methods/options.py)."""
        from moebench.methods.registry import options_of

        if self.config is None:
            raise UserError(
                f"record {self.path or self.run_key} has no config (a benchmark record)"
            )
        return options_of(self.config.method.name, self.config.method.options)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready record; optional fields that are empty are left out."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not f.metadata.get("stored", True) or value is None:
                continue
            if isinstance(value, RunConfig):
                value = to_dict(value)
            elif dataclasses.is_dataclass(value):
                value = {k: v for k, v in dataclasses.asdict(value).items() if v is not None}
            out[f.name] = value
        return json.loads(json.dumps(out))  # plain data only (tuples become lists)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | None = None) -> RunRecord:
        """A stored record (any schema up to this one) as a RunRecord."""
        where = path or data.get("run_key", "a record")
        data = migrate(data, where)
        names = {f.name for f in dataclasses.fields(cls) if f.metadata.get("stored", True)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserError(
                f"{where}: unknown record key {unknown[0]!r} (schema "
                f"{data['schema_version']}); one of {', '.join(sorted(names))}"
            )
        try:
            model = RecordModel(**data["model"])
            validity = Validity(**data["validity"])
            config = load_run_config(data["config"]) if data.get("config") else None
            fields = {k: v for k, v in data.items() if k not in ("model", "validity", "config")}
            return cls(model=model, validity=validity, config=config, path=path, **fields)
        except (KeyError, TypeError) as err:
            raise UserError(f"{where}: not a moebench record ({err})") from None


def migrate(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A stored record's data in today's schema: retired config keys dropped, metric keys
    renamed. A record without a schema_version is schema 1 (command-line benchmarks)."""
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UserError(
            f"{where}: schema_version {version!r} is newer than this moebench reads "
            f"({SCHEMA_VERSION}); update moebench"
        )
    data = dict(data)
    if version < 2:
        if data.get("config"):
            data["config"] = migrate_config(data["config"])
        data["metrics"] = {RENAMED_METRICS.get(k, k): v for k, v in data.get("metrics", {}).items()}
        data["schema_version"] = 2
    return data


def migrate_config(data: dict[str, Any]) -> dict[str, Any]:
    """A stored config (any schema) as today's RunConfig reads it: retired keys dropped."""
    return {k: v for k, v in data.items() if k not in RETIRED_CONFIG}


def load_record(path: str | Path) -> RunRecord:
    """One record file as a RunRecord (a bad file fails in one line naming it)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: cannot read a record ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a moebench record (not a JSON object)")
    return RunRecord.from_dict(data, str(path))


def load_records(
    results_dir: str | Path, names: tuple[str, ...] = (RESULT_FILE, EVAL_FILE)
) -> list[RunRecord]:
    """Every record under `results_dir`, in path order."""
    paths = sorted(p for name in names for p in Path(results_dir).rglob(name))
    return [load_record(p) for p in paths]
