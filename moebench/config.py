"""Typed run configuration: one dataclass per Hydra config group, validated once.

Hydra composes YAML; `load_run_config` turns the composed dict into these dataclasses and
rejects unknown keys, wrong types and impossible values with a one-line `ConfigError` that
names the key. Library code below the entry point only ever sees these dataclasses.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from moebench.errors import ConfigError

FAMILIES = ("mixtral", "phimoe", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2")
MODEL_SOURCES = ("random", "proxy", "hf")
CLOCKS = ("virtual", "wall", "cuda")
DTYPES = ("float32", "bfloat16", "float16")


def _positive(key: str, value: float | int, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(key, value, "a number >= 0" if allow_zero else "a number > 0")


def _one_of(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(choices))


@dataclass
class ModelConfig:
    """Which MoE to run: a random tiny model, a trained proxy, or a real HF checkpoint."""

    name: str
    family: str
    source: str = "random"
    hf_id: str | None = None  # hub id of the real model (source=hf) or of the model proxied
    local_path: str | None = None  # a local copy of the checkpoint (source=hf)
    proxy_of: str | None = None  # name of the real model whose sizes the virtual clock charges
    dtype: str = "float32"
    arch: dict[str, Any] = field(default_factory=dict)  # HF config kwargs (random/proxy)
    train: dict[str, Any] = field(default_factory=dict)  # proxy training recipe

    def __post_init__(self) -> None:
        _one_of("model.family", self.family, FAMILIES)
        _one_of("model.source", self.source, MODEL_SOURCES)
        _one_of("model.dtype", self.dtype, DTYPES)
        if self.source == "hf" and not (self.hf_id or self.local_path):
            raise ConfigError("model.hf_id", self.hf_id, "a hub id or model.local_path")
        experts = [self.arch[k] for k in EXPERT_COUNT_KEYS if isinstance(self.arch.get(k), int)]
        top_k = self.arch.get("num_experts_per_tok")
        if experts and top_k is not None:
            _int_in("model.arch.num_experts_per_tok", top_k, 1, experts[0])


# The arch keys that hold the routed-expert count, by family.
EXPERT_COUNT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")


@dataclass
class HardwareConfig:
    """A named GPU + host link; every number carries its source in `sources`."""

    name: str
    peak_flops: float  # dense bf16 tensor FLOP/s
    hbm_bytes_per_sec: float
    h2d_bytes_per_sec: float  # measured pinned host-to-device bandwidth
    h2d_latency_sec: float  # fixed cost per copy
    launch_sec: float  # per-kernel launch overhead
    memory_gb: float
    sources: dict[str, str] = field(default_factory=dict)
    # False for a CPU "device": host and device are one memory and a copy is the compute
    # thread's own memcpy, so a copy and a kernel never overlap (engine/offload.py serializes)
    copies_overlap_compute: bool = field(default=True, metadata={"key_unless_default": True})

    def __post_init__(self) -> None:
        for key in ("peak_flops", "hbm_bytes_per_sec", "h2d_bytes_per_sec", "memory_gb"):
            _positive(f"hardware.{key}", getattr(self, key))
        for key in ("h2d_latency_sec", "launch_sec"):
            _positive(f"hardware.{key}", getattr(self, key), allow_zero=True)


@dataclass
class MethodConfig:
    """An inference method (baseline or paper system) and its knobs."""

    name: str
    budget_gb: float | None = None  # device memory budget; None = everything resident
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.budget_gb is not None:
            _positive("method.budget_gb", self.budget_gb)
        if self.name == "speq":
            _check_speq_options(self.options)


def _int_in(key: str, value: Any, low: int, high: int | None = None) -> int:
    """`value` as an int in [low, high] (high None = unbounded), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        raise ConfigError(key, value, f"an integer in {low}..{high}" if high is not None else f"an integer >= {low}")
    return value


def _check_speq_options(options: dict[str, Any]) -> None:
    """MoE-SpeQ's draft-length and draft-width knobs, checked before any model is built."""
    k_min = _int_in("method.options.k_min", options.get("k_min", 1), 1)
    k_max = options.get("k_max", 8)
    if isinstance(k_max, int) and not isinstance(k_max, bool) and 1 <= k_max < k_min:
        raise ConfigError("method.options.k_max", k_max, f"an integer >= method.options.k_min ({k_min})")
    _int_in("method.options.k_max", k_max, 1)
    if options.get("fixed_k") is not None:
        _int_in("method.options.fixed_k", options["fixed_k"], 1, k_max)
    _int_in("method.options.draft_bits", options.get("draft_bits", 4), 2, 8)
    _one_of("method.options.draft", options.get("draft", "int4"), ("int4", "int4_cached", "resident"))
    _one_of("method.options.governor", options.get("governor", "roofline"), ("roofline", "bytes"))
    _one_of("method.options.ttft_profile", options.get("ttft_profile", "offline"), ("online", "offline"))
    _one_of("method.options.verify", options.get("verify", "grouped"), ("grouped", "sequential"))
    if options.get("draft_slots") is not None:
        _int_in("method.options.draft_slots", options["draft_slots"], 1)
    _one_of("method.options.draft_missing", options.get("draft_missing", "renormalize"), ("renormalize", "drop"))


ARRIVAL_KEYS = ("rate_per_sec", "duration_sec", "k_min_mean", "k_min_std", "slo_x_isolated")


@dataclass
class WorkloadConfig:
    """What is generated: prompts, their lengths and how many new tokens (greedy)."""

    name: str
    prompts: str = "synthetic"  # synthetic | heldout (offline corpus) | trace (replay) | poisson (serving)
    trace_path: str | None = None  # routing trace to replay (prompts=trace)
    num_prompts: int = 1
    prompt_len: int = 16
    new_tokens: int = 16
    version: int = 1
    # Serving simulation (prompts=poisson): rate_per_sec, duration_sec, k_min_mean, k_min_std,
    # slo_x_isolated. Left out of the run key while empty, so older records keep their keys.
    arrivals: dict[str, Any] = field(default_factory=dict, metadata={"key_only_if_set": True})
    # How tokens are chosen (bench/sampling.py): greedy, or an exact sample at `temperature`
    # (optionally among the top_k logits) from a noise tape keyed by (seed, prompt, position).
    # Left out of the run key at their defaults, so greedy records keep their keys.
    decoding: str = field(default="greedy", metadata={"key_unless_default": True})
    temperature: float = field(default=1.0, metadata={"key_unless_default": True, "key_if": "sampling"})
    top_k: int | None = field(default=None, metadata={"key_unless_default": True, "key_if": "sampling"})

    @property
    def sampling(self) -> bool:
        """Whether tokens are sampled (temperature and top_k only matter then)."""
        return self.decoding == "sample"

    def __post_init__(self) -> None:
        for key in ("num_prompts", "prompt_len", "new_tokens"):
            value = getattr(self, key)
            if value <= 0:
                raise ConfigError(f"workload.{key}", value, "an integer > 0")
        _one_of("workload.decoding", self.decoding, ("greedy", "sample"))
        if not self.temperature > 0:
            raise ConfigError("workload.temperature", self.temperature, "a number > 0")
        if self.top_k is not None:
            _int_in("workload.top_k", self.top_k, 1)
        if self.prompts == "trace" and not self.trace_path:
            raise ConfigError("workload.trace_path", self.trace_path, "a routing trace file (prompts=trace)")
        if self.prompts == "poisson":
            for key in ARRIVAL_KEYS:
                value = self.arrivals.get(key)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ConfigError(f"workload.arrivals.{key}", value, "a number > 0 (prompts=poisson)")
            unknown = sorted(set(self.arrivals) - set(ARRIVAL_KEYS))
            if unknown:
                raise ConfigError(f"workload.arrivals.{unknown[0]}", self.arrivals[unknown[0]],
                                  "one of the keys " + ", ".join(ARRIVAL_KEYS))


@dataclass
class EvalConfig:
    """Accuracy tasks run through lm-eval (empty list = no accuracy run)."""

    name: str = "none"
    tasks: list[str] = field(default_factory=list)
    num_fewshot: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        _positive("eval.num_fewshot", self.num_fewshot, allow_zero=True)
        if self.limit is not None:
            _positive("eval.limit", self.limit)


@dataclass
class LoggerConfig:
    """Where a copy of each record goes besides result.json (`none` or `wandb`)."""

    name: str = "none"
    mode: str = "offline"  # wandb: offline (default) | online
    project: str = "moebench"

    def __post_init__(self) -> None:
        _one_of("logger.name", self.name, ("none", "wandb"))
        _one_of("logger.mode", self.mode, ("offline", "online"))


@dataclass
class RunConfig:
    """One run: the config groups plus the top-level knobs."""

    model: ModelConfig
    hardware: HardwareConfig
    method: MethodConfig
    workload: WorkloadConfig
    eval: EvalConfig
    logger: LoggerConfig
    experiment: str = "adhoc"
    seed: int = 0
    clock: str = "virtual"
    results_dir: str = "results"
    force: bool = False
    timeline: bool = False
    record_trace: bool = False
    # torch intra-op threads for the run: fixed, so a record's bits do not depend on the core
    # count (kept in env.torch_threads of every record, not in the run key)
    threads: int = 1
    # Which transport moves experts (engine/transport.py): the virtual clock's model, or real
    # copies into a device slot pool timed by the wall clock (CPU) or CUDA events (GPU).
    backend: str = field(default="virtual", metadata={"key_unless_default": True})
    device: str = field(default="auto", metadata={"key_unless_default": True})

    def __post_init__(self) -> None:
        _one_of("clock", self.clock, CLOCKS)
        _positive("seed", self.seed, allow_zero=True)
        _int_in("threads", self.threads, 1)
        _one_of("backend", self.backend, ("virtual", "real"))
        _one_of("device", self.device, ("auto", "cpu", "cuda"))
        if self.backend == "real" and self.method.name == "cloud":
            raise ConfigError("backend", self.backend, "virtual for method=cloud (a serving simulation)")
        serving = self.workload.prompts == "poisson"
        if serving != (self.method.name == "cloud"):  # a serving simulation needs both, and no model
            raise ConfigError("workload.prompts" if self.method.name == "cloud" else "method",
                              self.workload.prompts if self.method.name == "cloud" else self.method.name,
                              "poisson with method=cloud" if self.method.name == "cloud"
                              else "cloud for workload.prompts=poisson")


# Keys that say where or how a run is kept, not what it computes: left out of its run_key.
NON_IDENTITY_KEYS = ("results_dir", "force", "logger", "timeline", "record_trace", "threads")


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any]:
    """Check (and lightly coerce int -> float) a value against a simple type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            ok, coerced = _type_ok(value, arm)
            if ok:
                return True, coerced
        return False, value
    if hint is type(None):
        return value is None, value
    if hint is Any:
        return True, value
    if origin is list:
        return isinstance(value, list), value
    if origin is dict:
        return isinstance(value, dict), value
    if hint is float:
        if isinstance(value, bool):
            return False, value
        return isinstance(value, (int, float)), float(value) if isinstance(value, (int, float)) else value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    return isinstance(value, hint), value


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))


def build(cls: type, data: Any, prefix: str) -> Any:
    """Make dataclass `cls` from a plain dict, naming `prefix.key` in every error."""
    if not isinstance(data, dict):
        raise ConfigError(prefix, data, f"a mapping of {cls.__name__} fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(key, data[unknown[0]], "one of the keys " + ", ".join(fields))
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if no_default:
                raise ConfigError(key, None, "a value (this key is required)")
            continue
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = build(hint, data[name], key)
            continue
        ok, value = _type_ok(data[name], hint)
        if not ok:
            raise ConfigError(key, data[name], _type_name(hint))
        kwargs[name] = value
    return cls(**kwargs)


def load_run_config(data: dict[str, Any]) -> RunConfig:
    """Validate a composed config dict (Hydra's, resolved) into a `RunConfig`."""
    return build(RunConfig, data, "")


def to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The config as plain JSON-ready data (what records store)."""
    return dataclasses.asdict(cfg)


def unset_late_fields(cfg: Any, data: dict[str, Any]) -> dict[str, Any]:
    """`data` (= asdict(cfg)) without fields marked key_only_if_set that are still empty, or
    key_unless_default that hold their default, recursively: a field added after records
    exist must not change their run keys."""
    out = dict(data)
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.metadata.get("key_only_if_set") and not value:
            out.pop(f.name, None)
        elif f.metadata.get("key_unless_default") and value == f.default:
            out.pop(f.name, None)
        elif "key_if" in f.metadata and not getattr(cfg, f.metadata["key_if"]):
            out.pop(f.name, None)  # e.g. a temperature under greedy decoding changes nothing
        elif dataclasses.is_dataclass(value):
            out[f.name] = unset_late_fields(value, data[f.name])
    return out
