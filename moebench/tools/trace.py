"""`python -m moebench.tools.trace`: check, describe and convert a routing trace.

    python -m moebench.tools.trace describe FILE [--slots 2,4,6]
    python -m moebench.tools.trace convert FILE OUT.npz

Reads every format of engine/trace_formats.py. `describe` validates the file and prints
its size (tokens, sequences, MoE layers, k, experts), its reuse (the share of a layer's
experts at a decode token that the previous token of the same sequence also used) and the
layer-at-once LRU and Belady hit rates at each cache size. `convert` writes it as a
moebench trace (.npz, what `workload.trace_path` replays). A malformed file ends in one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from moebench.bench.policy_gap import Streams, warm
from moebench.engine.policy import LRU, belady_misses, simulate_misses
from moebench.engine.trace_formats import load_trace
from moebench.errors import UserError


def reuse_rate(streams: Streams) -> float:
    """Mean share of a decode access's experts the same layer used one access before,
    within a sequence."""
    same = np.r_[False, streams.sequence[1:] == streams.sequence[:-1]] & streams.decode
    shares = [
        len(stream[t] & stream[t - 1]) / len(stream[t])
        for stream in streams.accesses
        for t in np.flatnonzero(same).tolist()
    ]
    return float(np.mean(shares)) if shares else float("nan")


def describe(path: Path, slots: list[int] | None) -> dict:
    trace = load_trace(path)
    streams = Streams.of(trace)
    sizes = slots or sorted({max(streams.top_k, streams.num_experts // d) for d in (4, 2)})
    out = {
        "file": str(path),
        "source": trace.source,
        "tokens": int(trace.ids.shape[0]),
        "forwards": len(trace.step_tokens),
        "sequences": streams.num_sequences,
        "moe_layers": len(trace.layers),
        "top_k": streams.top_k,
        "experts_seen": streams.num_experts,
        "reuse_rate": reuse_rate(streams),
    }
    needed = sum(len(a) for stream in streams.accesses for a in stream)
    for n in sizes:
        first = warm(n, streams.num_experts)
        lru = sum(sum(simulate_misses(s, n, LRU(), first)) for s in streams.accesses)
        belady = sum(sum(belady_misses(s, n, first)) for s in streams.accesses)
        out[f"lru_hits@{n}"] = 1 - lru / needed
        out[f"belady_hits@{n}"] = 1 - belady / needed
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m moebench.tools.trace",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    d = verbs.add_parser("describe", help="validate a trace and print what it holds")
    d.add_argument("file", type=Path)
    d.add_argument("--slots", help="cache sizes, comma-separated (default: E/4 and E/2)")
    c = verbs.add_parser("convert", help="write a trace as a moebench .npz")
    c.add_argument("file", type=Path)
    c.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.verb == "describe":
            slots = [int(s) for s in args.slots.split(",")] if args.slots else None
            for key, value in describe(args.file, slots).items():
                print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
        else:
            trace = load_trace(args.file)
            if args.out.suffix != ".npz":
                raise UserError(f"output {args.out} must end in .npz")
            trace.save(args.out)
            print(f"wrote {args.out} ({trace.ids.shape[0]} tokens, {len(trace.layers)} layers)")
    except UserError as err:
        print(f"moebench: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
