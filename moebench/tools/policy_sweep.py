"""`python -m moebench.tools.policy_sweep`: every expert-cache policy at four cache sizes, by
the share of LRU's miss gap to Belady it closes, on real and proxy decode routing.

Sources (one record each, results/engine_policies/<source>/result.json, no clock):
- `--trace FILE`: any routing trace (engine/trace_formats.py); by default the real
  Mixtral-8x7B HumanEval trace in ../shared/data;
- `--proxy NAME`: the proxy's sampled decode routing on the held-out workload
  (`workload=heldout_paired workload.decoding=sample`), replayed from its routing
  recording; a missing recording is made first (one live run of the proxy).

Cache sizes are shares of a layer's experts (`--fractions`), never below top-k. Tuning,
held-out split, units and intervals: bench/policy_gap.py. `python -m moebench.report`
renders reports/engine_policies.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from moebench.bench.policy_gap import Streams, Sweep, summarize
from moebench.cli import compose_run_config
from moebench.engine.policies import ONLINE
from moebench.engine.trace_formats import load_trace
from moebench.methods.registry import routing_identity
from moebench.models.catalog import real_model_shape
from moebench.recordings import find_recording, recording_key
from moebench.records import write_benchmark_record
from moebench.runner import charged_shape, decoded_for, resolve_data_path

MIXTRAL_TRACE = (
    "../shared/data/moe_routing_traces/mixtral-8x7b-instruct-v0.1-fp8/humaneval_2_routing.jsonl"
)
PROXIES = (
    "proxy_mixtral8x7b",
    "proxy_phi35moe",
    "proxy_qwen15moe",
    "proxy_dsv2lite",
    "proxy_olmoe",
    "proxy_qwen3_30b",
)
FRACTIONS = (0.25, 0.375, 0.5, 0.75)
PROXY_WORKLOAD = ["workload=heldout_paired", "workload.decoding=sample"]


def cache_sizes(num_experts: int, top_k: int, fractions) -> list[int]:
    """Slots per layer at each share of the experts, at least top-k, without repeats."""
    sizes = [max(top_k, round(f * num_experts)) for f in fractions]
    return sorted(set(sizes))


def proxy_source(name: str):
    """(streams, record identity) of a proxy's sampled held-out decode routing."""
    cfg = compose_run_config([f"model={name}", "method=full_resident", *PROXY_WORKLOAD])
    key = recording_key(cfg, routing_identity(cfg))
    recording = find_recording(key)
    if recording is None:
        print(f"policy_sweep: recording {key} (one live run of {name})")
        decoded_for(cfg)
        recording = find_recording(key)
    shape_experts = charged_shape(cfg, None).num_experts  # a proxy keeps its model's experts
    identity = {
        "model": name,
        "proxy_of": cfg.model.proxy_of,
        "charged_as": cfg.model.proxy_of,
        "weights_sha256": recording.model.get("weights_sha256"),
        "source": f"recording {key} ({cfg.workload.name}, {cfg.workload.decoding}, "
        f"{cfg.workload.num_sequences} sequences)",
    }
    return Streams.of(recording.trace, shape_experts), identity


def trace_source(path: str, charged_as: str | None):
    """A trace file's streams; `charged_as`: the catalog model it was recorded on (sizes
    the bytes a miss moves)."""
    resolved = resolve_data_path(path)
    trace = load_trace(resolved)
    real = resolved.resolve() == resolve_data_path(MIXTRAL_TRACE).resolve()
    name = "mixtral8x7b_real_humaneval" if real else Path(path).stem
    identity = {
        "model": name,
        "proxy_of": None,
        "charged_as": charged_as,
        "weights_sha256": None,
        "source": trace.source,
    }
    return Streams.of(trace), identity


def sweep_source(streams: Streams, identity: dict, fractions, results: str, args) -> Path:
    charged_as = identity["charged_as"]
    expert_bytes = real_model_shape(charged_as).expert_bytes if charged_as else None
    started = time.perf_counter()
    by_slots, raw = {}, {}
    for slots in cache_sizes(streams.num_experts, streams.top_k, fractions):
        summary = summarize(Sweep(streams, slots).sweep(ONLINE))
        summary["tuning"].pop("unit_misses")  # the held-out units carry the intervals
        raw[str(slots)] = summary["held_out"].pop("unit_misses")
        by_slots[str(slots)] = summary
        best = max(summary["policies"].items(), key=lambda kv: kv[1]["held_out"]["hits"])
        print(f"{identity['model']} {slots} slots: best held out {best[0]}")
    metrics = {
        "source": identity["source"],
        "num_experts": streams.num_experts,
        "top_k": streams.top_k,
        "moe_layers": len(streams.layers),
        "sequences": streams.num_sequences,
        "expert_bytes": expert_bytes,
        "by_slots": by_slots,
        "sweep_sec": time.perf_counter() - started,
    }
    return write_benchmark_record(
        results,
        "engine_policies",
        identity["model"],
        identity["proxy_of"],
        metrics,
        weights_sha256=identity["weights_sha256"],
        arguments=vars(args),
        clock="none",
        raw={"unit_misses": raw},
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.policy_sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--trace", action="append", help="a routing trace file (repeatable)")
    parser.add_argument(
        "--trace-model",
        help="the catalog model the --trace files were recorded on (sizes bytes per miss)",
    )
    parser.add_argument("--proxy", action="append", help="a proxy model name (repeatable)")
    parser.add_argument("--fractions", default=",".join(str(f) for f in FRACTIONS))
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    if args.trace is None and args.proxy is None:
        args.trace, args.proxy = [MIXTRAL_TRACE], list(PROXIES)
        args.trace_model = "mixtral8x7b"
    fractions = [float(f) for f in args.fractions.split(",")]
    for path in args.trace or []:
        sweep_source(*trace_source(path, args.trace_model), fractions, args.results, args)
    for name in args.proxy or []:
        sweep_source(*proxy_source(name), fractions, args.results, args)


if __name__ == "__main__":
    main()
