"""`python -m moebench.tools.calibrate`: measure this CPU as a hardware profile for the
virtual clock (conf/hardware/cpu.yaml), so the virtual clock can be checked against the real
transport's wall clock (`python -m moebench.tools.clock_check`).

Measured at the run's fixed thread count, in bf16 (what the cost model charges):
- copy bandwidth and per-copy latency: a least-squares line through the median time of
  `dst.copy_(src)` at several sizes (the real transport's slot copy on a CPU);
- memory bandwidth: an expert-shaped matrix-vector product at one token (memory bound);
- peak FLOP/s: the same weights against many tokens (compute bound);
- per-call overhead: a tiny matmul.
On a CPU a copy is the compute thread's own memcpy, so copies never overlap compute: the
profile says so (`copies_overlap_compute: false`) and the virtual engine serializes them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from moebench.determinism import cpu_identity, fixed_threads, numerics_state
from moebench.errors import UserError, exit_with
from moebench.paths import CONF_DIR

DTYPE = torch.bfloat16


def median_sec(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_line(
    sizes_mb=(1, 4, 16, 32, 64), repeats: int = 15, cold_mb: int = 768
) -> tuple[float, float, list]:
    """(latency s, bytes/s, points) of a slot copy. The sources rotate through `cold_mb` of
    buffers, as the host store's experts do, so no copy reads a source still in the CPU's
    caches (a reused source made the first profile's copies look ~2x faster than the engine's)."""
    points = []
    for mb in sizes_mb:
        n = int(mb * 1e6 / 2)
        sources = [torch.randn(n).to(DTYPE) for _ in range(max(2, cold_mb // mb))]
        dst = torch.empty(n, dtype=DTYPE)
        turn = iter(range(10**9))
        points.append(
            (
                n * 2,
                median_sec(lambda d=dst, s=sources, t=turn: d.copy_(s[next(t) % len(s)]), repeats),
            )
        )
    latency, bandwidth = fit_copy_line(points)
    return latency, bandwidth, points


def fit_copy_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(latency s, bytes/s) of the least-squares line seconds = latency + bytes / bandwidth.
    Times that do not grow with size (a busy machine) are no measurement: one line says so."""
    x, y = np.array([p[0] for p in points], float), np.array([p[1] for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    if slope <= 0:
        raise UserError(
            f"calibrate: copy times did not grow with size ({[f'{t:.2g}' for t in y]} s for "
            f"{[int(b) for b in x]} bytes); rerun on an idle machine"
        )
    return max(float(intercept), 0.0), float(1 / slope)


def matmul_rates(
    hidden: int, intermediate: int, repeats: int = 10, cold_mb: int = 768
) -> dict[str, float]:
    """Weight-bound rate over weights that rotate through `cold_mb` (cold, as the experts are),
    compute-bound rate, and the per-call overhead."""
    weight = torch.randn(hidden, 2 * intermediate).to(DTYPE)
    weights = [weight] + [
        torch.randn_like(weight) for _ in range(max(1, int(cold_mb * 1e6 // (weight.numel() * 2))))
    ]
    one = torch.randn(1, hidden).to(DTYPE)
    many = torch.randn(256, hidden).to(DTYPE)
    tiny_a, tiny_b = torch.randn(1, 8).to(DTYPE), torch.randn(8, 8).to(DTYPE)
    turn = iter(range(10**9))
    t_one = median_sec(lambda: one @ weights[next(turn) % len(weights)], repeats)
    t_many = median_sec(lambda: many @ weight, repeats)
    t_tiny = median_sec(lambda: tiny_a @ tiny_b, 200)
    weight_bytes = weight.numel() * 2
    return {
        "bytes_per_sec": weight_bytes / t_one,
        "flops": 2 * 256 * weight.numel() / t_many,
        "launch_sec": t_tiny,
        "t_one": t_one,
        "t_many": t_many,
    }


def measure(hidden: int, intermediate: int, threads: int) -> dict:
    with fixed_threads(threads):
        latency, bandwidth, points = copy_line()
        rates = matmul_rates(hidden, intermediate)
    cpu = cpu_identity()
    where = (
        f"{cpu['model']} (ATen {numerics_state()['aten_capability']} kernels), {threads} torch "
        f"thread(s), torch {torch.__version__}"
    )
    return {
        "name": "cpu",
        "peak_flops": rates["flops"],
        "hbm_bytes_per_sec": rates["bytes_per_sec"],
        "h2d_bytes_per_sec": bandwidth,
        "h2d_latency_sec": latency,
        "launch_sec": rates["launch_sec"],
        "memory_gb": 16,
        "copies_overlap_compute": False,
        "sources": {
            "peak_flops": f"measured: bf16 [256, {hidden}] x [{hidden}, {2 * intermediate}] "
            f"matmul, median {rates['t_many'] * 1e3:.3g} ms, on {where}",
            "hbm_bytes_per_sec": f"measured: bf16 [1, {hidden}] x [{hidden}, {2 * intermediate}] "
            f"(weight-bound, cold weights), median {rates['t_one'] * 1e3:.3g} ms, on {where}",
            "h2d_bytes_per_sec": "measured: least-squares line through median dst.copy_(src) "
            "times (cold sources) at "
            + ", ".join(f"{b / 1e6:.0f} MB {t * 1e3:.3g} ms" for b, t in points)
            + f", on {where}",
            "h2d_latency_sec": "measured: the same line's intercept",
            "launch_sec": "measured: median of a bf16 [1, 8] x [8, 8] matmul (per-call overhead)",
            "memory_gb": "not measured: a budget ceiling for this profile only",
            "copies_overlap_compute": "false: on the real CPU backend a copy is the compute "
            "thread's own memcpy",
        },
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m moebench.tools.calibrate", description=__doc__)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=3584)
    parser.add_argument(
        "--threads", type=int, default=1, help="the runs' threads (RunConfig.threads)"
    )
    parser.add_argument("--out", default=str(CONF_DIR / "hardware" / "cpu.yaml"))
    args = parser.parse_args(argv)
    try:
        profile = measure(args.hidden, args.intermediate, args.threads)
    except UserError as err:
        exit_with(err)
    header = (
        "# This machine's CPU as a hardware profile, written by `python -m "
        "moebench.tools.calibrate`\n"
        "# (rerun it on your machine before comparing the virtual clock with the wall clock).\n"
    )
    Path(args.out).write_text(header + yaml.safe_dump(profile, sort_keys=False, width=200))
    print({k: v for k, v in profile.items() if k != "sources"})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
