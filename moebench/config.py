"""Typed run configuration: one dataclass per Hydra config group, validated once.

Hydra composes YAML; `load_run_config` turns the composed dict into these dataclasses and
rejects unknown keys, wrong types and impossible values with a one-line `ConfigError` that
names the key. Library code below the entry point only ever sees these dataclasses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from moebench.errors import ConfigError
from moebench.models.family import FAMILIES
from moebench.typed import build, int_in, one_of, positive

FAMILY_NAMES = tuple(FAMILIES)
MODEL_SOURCES = ("random", "proxy", "hf")
DTYPES = ("float32", "bfloat16", "float16")


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
    # A proxy's training seed (source=proxy): another seed trains another proxy of the same
    # topology and recipe, which is how the spread from proxy training is measured. Left out
    # of the run key at 0, so records of the committed proxies keep their keys.
    train_seed: int = field(default=0, metadata={"key_unless_default": True})

    def __post_init__(self) -> None:
        one_of("model.family", self.family, FAMILY_NAMES)
        one_of("model.source", self.source, MODEL_SOURCES)
        one_of("model.dtype", self.dtype, DTYPES)
        if self.source == "hf" and not (self.hf_id or self.local_path):
            raise ConfigError("model.hf_id", self.hf_id, "a hub id or model.local_path")
        int_in("model.train_seed", self.train_seed, 0)
        if self.train_seed and self.source != "proxy":
            raise ConfigError("model.train_seed", self.train_seed, "0 unless model.source=proxy")
        experts = FAMILIES[self.family].expert_count(self.arch)
        top_k = self.arch.get("num_experts_per_tok")
        if isinstance(experts, int) and top_k is not None:
            int_in("model.arch.num_experts_per_tok", top_k, 1, experts)


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
    # Host work on the critical path of every MoE layer, for every method alike: reading the
    # router's choice back to the host (a device-to-host copy and a stream sync) and the
    # engine's per-layer work after it (hook, decisions, re-enqueueing), while the device waits.
    readback_sec: float = field(default=0.0, metadata={"key_unless_default": True})
    host_layer_sec: float = field(default=0.0, metadata={"key_unless_default": True})
    # A CPU only: an expert's matmul right after its copy reads it from the CPU's caches at
    # this rate (0: no such effect; a GPU's kernels read HBM either way)
    warm_bytes_per_sec: float = field(default=0.0, metadata={"key_unless_default": True})
    # False where a low-bit draft computes from dequantized bf16 weights (the CPU transport)
    low_bit_kernels: bool = field(default=True, metadata={"key_unless_default": True})

    def __post_init__(self) -> None:
        for key in ("peak_flops", "hbm_bytes_per_sec", "h2d_bytes_per_sec", "memory_gb"):
            positive(f"hardware.{key}", getattr(self, key))
        for key in (
            "h2d_latency_sec",
            "launch_sec",
            "readback_sec",
            "host_layer_sec",
            "warm_bytes_per_sec",
        ):
            positive(f"hardware.{key}", getattr(self, key), allow_zero=True)


@dataclass
class MethodConfig:
    """An inference method (baseline or paper system) and its knobs. `options` stays the
    mapping the config gave (it is part of the run key); methods/registry.py validates it
    into the method's typed options before any model is built."""

    name: str
    budget_gb: float | None = None  # device memory budget; None = everything resident
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.budget_gb is not None:
            positive("method.budget_gb", self.budget_gb)


ARRIVAL_KEYS = ("rate_per_sec", "duration_sec", "k_min_mean", "k_min_std", "slo_x_isolated")


@dataclass
class WorkloadConfig:
    """What is generated: prompts, their lengths and how many new tokens (greedy)."""

    name: str
    prompts: str = (
        "synthetic"  # synthetic | heldout (offline corpus) | trace (replay) | poisson (serving)
    )
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
    temperature: float = field(
        default=1.0, metadata={"key_unless_default": True, "key_if": "sampling"}
    )
    top_k: int | None = field(
        default=None, metadata={"key_unless_default": True, "key_if": "sampling"}
    )
    # Noise tapes per prompt when sampling: each prompt is decoded once per tape (tape t of
    # prompt i reads the noise keyed by (seed, i, t)), so intervals cover the sampling noise
    # as well as the prompts. Greedy decoding has no tape and decodes each prompt once.
    tapes: int = field(default=1, metadata={"key_unless_default": True, "key_if": "sampling"})

    @property
    def kind(self) -> str:
        """What `prompts` makes of a run: decode (the model generates from prompts), replay
        (a routing trace drives the engine) or serving (Poisson arrivals, no model)."""
        return {"poisson": "serving", "trace": "replay"}.get(self.prompts, "decode")

    @property
    def sampling(self) -> bool:
        """Whether tokens are sampled (temperature and top_k only matter then)."""
        return self.decoding == "sample"

    @property
    def tapes_used(self) -> int:
        """How many times each prompt is decoded: once per noise tape, once when greedy."""
        return self.tapes if self.sampling else 1

    @property
    def num_sequences(self) -> int:
        """Decoded sequences per run: every prompt on every tape used."""
        return self.num_prompts * self.tapes_used

    def __post_init__(self) -> None:
        for key in ("num_prompts", "prompt_len", "new_tokens", "tapes"):
            value = getattr(self, key)
            if value <= 0:
                raise ConfigError(f"workload.{key}", value, "an integer > 0")
        one_of("workload.decoding", self.decoding, ("greedy", "sample"))
        if not self.temperature > 0:
            raise ConfigError("workload.temperature", self.temperature, "a number > 0")
        if self.top_k is not None:
            int_in("workload.top_k", self.top_k, 1)
        if self.kind == "replay" and not self.trace_path:
            raise ConfigError(
                "workload.trace_path", self.trace_path, "a routing trace file (prompts=trace)"
            )
        if self.kind == "serving":
            for key in ARRIVAL_KEYS:
                value = self.arrivals.get(key)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ConfigError(
                        f"workload.arrivals.{key}", value, "a number > 0 (prompts=poisson)"
                    )
            unknown = sorted(set(self.arrivals) - set(ARRIVAL_KEYS))
            if unknown:
                raise ConfigError(
                    f"workload.arrivals.{unknown[0]}",
                    self.arrivals[unknown[0]],
                    "one of the keys " + ", ".join(ARRIVAL_KEYS),
                )


@dataclass
class EvalConfig:
    """Accuracy tasks run through lm-eval (empty list = no accuracy run)."""

    name: str = "none"
    tasks: list[str] = field(default_factory=list)
    num_fewshot: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        positive("eval.num_fewshot", self.num_fewshot, allow_zero=True)
        if self.limit is not None:
            positive("eval.limit", self.limit)


@dataclass
class LoggerConfig:
    """Where a copy of each record goes besides result.json (`none` or `wandb`)."""

    name: str = "none"
    mode: str = "offline"  # wandb: offline (default) | online
    project: str = "moebench"

    def __post_init__(self) -> None:
        one_of("logger.name", self.name, ("none", "wandb"))
        one_of("logger.mode", self.mode, ("offline", "online"))


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
    results_dir: str = "results"
    force: bool = False
    timeline: bool = False
    record_trace: bool = False
    # replay the point's routing recording when one exists (recordings.py); false: run live
    replay: bool = True
    # torch intra-op threads for the run: fixed, so a record's bits do not depend on the core
    # count (kept in env.torch_threads of every record, not in the run key)
    threads: int = 1
    # Which transport moves experts (engine/transport.py): the virtual clock's model, or real
    # copies into a device slot pool timed by the wall clock (CPU) or CUDA events (GPU).
    backend: str = field(default="virtual", metadata={"key_unless_default": True})
    device: str = field(default="auto", metadata={"key_unless_default": True})

    def __post_init__(self) -> None:
        positive("seed", self.seed, allow_zero=True)
        int_in("threads", self.threads, 1)
        one_of("backend", self.backend, ("virtual", "real"))
        one_of("device", self.device, ("auto", "cpu", "cuda"))
        if self.backend == "real" and self.kind == "serving":
            raise ConfigError(
                "backend",
                self.backend,
                "virtual for a serving simulation (workload.prompts=poisson)",
            )

    @property
    def kind(self) -> str:
        """What the run does, which decides how the runner drives its method: `accuracy`
        (lm-eval tasks), `serving` (a simulation, no model), `replay` (a routing trace
        drives the engine, no model) or `decode` (the model generates)."""
        return "accuracy" if self.eval.tasks else self.workload.kind


# Keys that say where or how a run is kept, not what it computes: left out of its run_key.
NON_IDENTITY_KEYS = (
    "results_dir",
    "force",
    "logger",
    "timeline",
    "record_trace",
    "threads",
    "replay",
)


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
