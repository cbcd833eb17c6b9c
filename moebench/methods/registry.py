"""The method registry: each name maps to its options dataclass, the kinds of run it can do
and the class that runs it.

`check_method(run)` validates a run's method before anything heavy happens (the command
line calls it right after composing the config), and `build_method(run, loaded, costs)`
makes the method from the same validated options. Classes are named as "module:Class" and
imported only when built, so this module stays light.

To add a method: write its options dataclass in methods/options.py, its class (usually an
`EngineMethod` subclass in methods/), and one `MethodEntry` line below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from moebench.config import RunConfig, WorkloadConfig
from moebench.errors import ConfigError
from moebench.methods.options import (
    CloudOptions,
    EngineMethodOptions,
    MixtralOffloadingOptions,
    NextLayerPrefetchOptions,
    PrismOptions,
    SpeqOptions,
    TopKOptions,
)
from moebench.typed import build

MODEL_RUNS = ("decode", "replay", "accuracy")
# How a config asks for each kind of run (RunConfig.kind), for error messages.
KIND_SETTINGS = {
    "decode": "workload.prompts=synthetic, heldout or shared:NAME",
    "replay": "workload.prompts=trace",
    "serving": "workload.prompts=poisson",
    "accuracy": "eval.tasks set",
}


@dataclass(frozen=True)
class MethodEntry:
    """What the registry knows about one method."""

    options: type  # the options dataclass (methods/options.py)
    runs: str  # "module:Class" that runs it, imported on first use
    kinds: tuple[str, ...] = MODEL_RUNS  # run kinds it supports (RunConfig.kind)
    summary: str = ""
    # replaying a routing recording still builds the model (the method's details need it)
    replay_needs_model: bool = False


METHODS: dict[str, MethodEntry] = {
    "full_resident": MethodEntry(
        EngineMethodOptions,
        "moebench.methods.offload:FullResident",
        summary="every expert on the device: the compute bound",
    ),
    "hf_offload": MethodEntry(
        EngineMethodOptions,
        "moebench.methods.offload:HfOffload",
        summary="a layer's experts all move when it runs",
    ),
    "ondemand": MethodEntry(
        EngineMethodOptions,
        "moebench.methods.offload:OnDemand",
        summary="each needed expert loads when its layer runs, no reuse",
    ),
    "mixtral_offloading": MethodEntry(
        MixtralOffloadingOptions,
        "moebench.methods.offload:MixtralOffloading",
        summary="per-layer expert cache (LRU by default)",
    ),
    "next_layer_prefetch": MethodEntry(
        NextLayerPrefetchOptions,
        "moebench.methods.offload:NextLayerPrefetch",
        kinds=("decode", "accuracy"),  # guesses need hidden states
        summary="LRU cache plus a next-layer router guess",
    ),
    "topk": MethodEntry(
        TopKOptions,
        "moebench.methods.offload:TopK",
        summary="fewer active experts than trained (lossy)",
    ),
    "speq": MethodEntry(
        SpeqOptions,
        "moebench.methods.speq:SpeQ",
        kinds=("decode", "accuracy"),
        summary="MoE-SpeQ: INT4 draft, lookahead prefetch, verification",
    ),
    "prism": MethodEntry(
        PrismOptions,
        "moebench.methods.prism:Prism",
        summary="MoE-Prism: sub-experts, re-gated, at K active",
        replay_needs_model=True,  # its partition statistics come from the carved model
    ),
    "cloud": MethodEntry(
        CloudOptions,
        "moebench.methods.cloud:CloudServing",
        kinds=("serving",),
        summary="MoE-Prism's serving scheduler or a baseline (simulation)",
    ),
}


@dataclass(frozen=True)
class MethodSetup:
    """What a method is built from: its validated options and the parts of the run it may
    read (never the whole RunConfig)."""

    name: str
    options: Any  # the method's options dataclass
    budget_gb: float | None  # device memory budget; None = everything resident
    workload: WorkloadConfig
    kind: str  # decode | replay | accuracy | serving
    seed: int = 0
    backend: str = "virtual"  # virtual | real (engine/transport.py)
    device: str = "auto"
    timeline: bool = False  # keep every span for a Chrome trace
    record_trace: bool = False  # keep every forward's routing
    recording: bool = False  # this live run writes the point's routing recording


def method_entry(name: str) -> MethodEntry:
    """The registry entry for `name`, else a one-line error listing the methods."""
    if name not in METHODS:
        raise ConfigError("method", name, "one of " + ", ".join(sorted(METHODS)))
    return METHODS[name]


def options_of(name: str, options: dict[str, Any]) -> Any:
    """`options` (a config's plain mapping) validated into `name`'s options dataclass."""
    return build(method_entry(name).options, dict(options), "method.options")


def check_method(run: RunConfig) -> Any:
    """Validate the run's method: a known name, its options, and a run kind it supports.
    Returns the typed options. Cheap: no model is built."""
    entry = method_entry(run.method.name)
    options = options_of(run.method.name, run.method.options)
    if run.kind not in entry.kinds:
        able = sorted(n for n, e in METHODS.items() if run.kind in e.kinds)
        ways = "; ".join(f"{k}: {KIND_SETTINGS[k]}" for k in entry.kinds)
        raise ConfigError(
            "method",
            run.method.name,
            f"a method that can run a {run.kind} run ({', '.join(able)}), or a run "
            f"{run.method.name} can do ({ways})",
        )
    check_run = getattr(options, "check_run", None)
    if check_run is not None:
        check_run(run.kind)
    return options


def routing_identity(run: RunConfig) -> dict[str, Any] | None:
    """What decides the routing of `run`, for its routing recording (recordings.py); None
    when it runs live (`live_reason` says why)."""
    if run.kind != "decode" or live_reason(run) is not None:
        return None
    return check_method(run).routing_identity()


def live_reason(run: RunConfig) -> str | None:
    """Why a decode run must run the model rather than replay its point's recording; None
    when it can replay (or is not a decode)."""
    if run.kind != "decode":
        return None
    if not run.replay:
        return "replay=false"
    if run.backend != "virtual":
        return f"backend={run.backend}: a real clock is measured, not replayed"
    options = check_method(run)
    if options.routing_identity() is None:
        return getattr(options, "live_reason", f"{run.method.name} routing is not recorded")
    return None


def setup_for(run: RunConfig, recording: bool = False) -> MethodSetup:
    """The MethodSetup of a run (validating its method first)."""
    return MethodSetup(
        name=run.method.name,
        options=check_method(run),
        budget_gb=run.method.budget_gb,
        workload=run.workload,
        kind=run.kind,
        seed=run.seed,
        backend=run.backend,
        device=run.device,
        timeline=run.timeline,
        record_trace=run.record_trace,
        recording=recording,
    )


def build_method(run: RunConfig, loaded, costs, recording: bool = False):
    """The method object for `run`, on a loaded model (None for a replay or a serving run)
    and the cost model its clock charges; `recording`: it records the point's routing."""
    setup = setup_for(run, recording)
    module, _, cls = method_entry(run.method.name).runs.partition(":")
    return getattr(importlib.import_module(module), cls)(setup, loaded, costs)
