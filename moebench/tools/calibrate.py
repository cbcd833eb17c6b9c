"""`python -m moebench.tools.calibrate`: measure this CPU as a hardware profile for the
virtual clock (conf/hardware/cpu.yaml), so the virtual clock can be checked against the real
transport's wall clock (`python -m moebench.tools.clock_check`).

Measured at the run's fixed thread count, in bf16 (what the cost model charges):
- copy bandwidth and per-copy latency: a least-squares line through the median time of
  `dst.copy_(src)` at several sizes (the real transport's slot copy on a CPU);
- memory bandwidth: the experts function's rate inside the model, timed by the real transport
  over the decode steps of a 2-layer model at the check's width (cold; isolated kernels over
  the same weights ran faster than inside the model, so the isolated rate is only a source);
- peak FLOP/s: the same weights against many tokens (compute bound);
- per-call overhead: a tiny matmul;
- the warm rate: the same for `ondemand`, whose every expert is read right after its copy;
- per-layer host work: the wall time per decode token, less the modeled kernels, of a random
  Mixtral at the check's hidden size with 128-wide experts (so expert reads and copies are
  negligible) on the real transport at 1, 2, 4 and 8 layers; the slope of that line is the
  host's work per layer (the model's modules, the engine's hook and bookkeeping, and what the
  roofline misses of attention at that width). A CPU has no device to read routing back
  from, so its read-back is 0.
The machine's memory bandwidth drifts (a shared VM's neighbours), so every quantity is the
median over `--rounds` interleaved rounds, and the profile's sources give the spread.
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
        sources = [torch.randn(n).to(DTYPE) for _ in range(max(2, int(cold_mb // mb)))]
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


def expert_forward(x: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    """One routed expert as the model's experts function runs it: F.linear over the fused
    gate_up [2I, H] and down [H, I] weights (laid out as the model holds them; a transposed
    layout runs other kernels at another rate)."""
    gate, up = torch.nn.functional.linear(x, gate_up).chunk(2, dim=-1)
    return torch.nn.functional.linear(torch.nn.functional.silu(gate) * up, down)


def matmul_rates(
    hidden: int, intermediate: int, repeats: int = 10, cold_mb: int = 768, top_k: int = 2
) -> dict[str, float]:
    """Weight-bound rate of one expert's forward over experts that rotate through `cold_mb`
    (cold, as the experts are), the same right after `top_k` experts were copied in (as a
    demand miss leaves them), compute-bound rate, and the per-call overhead."""

    def expert():
        return (
            torch.randn(2 * intermediate, hidden).to(DTYPE),
            torch.randn(hidden, intermediate).to(DTYPE),
        )

    weight_bytes = 3 * hidden * intermediate * 2
    experts = [expert() for _ in range(max(2, int(cold_mb * 1e6 // weight_bytes)))]
    slots = [tuple(torch.empty_like(w) for w in experts[0]) for _ in range(top_k)]
    one = torch.randn(1, hidden).to(DTYPE)
    many = torch.randn(256, hidden).to(DTYPE)
    tiny_a, tiny_b = torch.randn(1, 8).to(DTYPE), torch.randn(8, 8).to(DTYPE)
    turn = iter(range(10**9))
    t_one = median_sec(lambda: expert_forward(one, *experts[next(turn) % len(experts)]), repeats)
    warm = []
    for _ in range(repeats):
        for slot in slots:  # the layer's copies land first, then its kernels run
            for dst, src in zip(slot, experts[next(turn) % len(experts)], strict=True):
                dst.copy_(src)
        start = time.perf_counter()
        for slot in slots:
            expert_forward(one, *slot)
        warm.append((time.perf_counter() - start) / top_k)
    t_many = median_sec(lambda: expert_forward(many, *experts[0]), repeats)
    t_tiny = median_sec(lambda: tiny_a @ tiny_b, 200)
    return {
        "bytes_per_sec": weight_bytes / t_one,
        "warm_bytes_per_sec": weight_bytes / statistics.median(warm),
        "flops": 2 * 256 * 3 * hidden * intermediate / t_many,
        "launch_sec": t_tiny,
        "t_one": t_one,
        "t_warm": statistics.median(warm),
        "t_many": t_many,
    }


HOST_LAYERS = (1, 2, 4, 8)


def host_layer_line(threads: int, hidden: int = 64, repeats: int = 2) -> tuple[float, float, list]:
    """(seconds per layer, seconds per token, points) of the host's own work per decode token:
    a random Mixtral with 128-wide experts on the real transport at several depths, the
    virtual clock's kernel time taken off each point. At the clock check's `hidden` the fit
    also takes in what the roofline misses of attention at that width (CPU kernels on
    small matrices), but none of the check's experts or copies."""
    import tempfile

    from moebench.tools.check_model import run_tpot

    points = []
    with tempfile.TemporaryDirectory() as scratch:
        for layers in HOST_LAYERS:
            tiny = [
                f"model.arch.hidden_size={hidden}",
                "model.arch.intermediate_size=128",
                f"model.arch.num_hidden_layers={layers}",
                "method=full_resident",
                f"threads={threads}",
                "++hardware.host_layer_sec=0",
                "++hardware.readback_sec=0",
                "++hardware.warm_bytes_per_sec=0",
                "force=true",
            ]
            kernels = run_tpot(scratch, [*tiny, "backend=virtual"])
            wall = statistics.median(
                run_tpot(scratch, [*tiny, "backend=real", "device=cpu"]) for _ in range(repeats)
            )
            points.append((layers, wall - kernels))
    x, y = np.array([p[0] for p in points], float), np.array([p[1] for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    return max(float(slope), 0.0), float(intercept), points


def in_situ_expert_rates(threads: int, layers: int = 2) -> dict[str, float]:
    """Bytes/s of the experts function as the model runs it on the real transport, from the
    transport's own timing of its decode steps: cold (`full_resident`, every expert read from
    memory) and warm (`ondemand`, every expert read right after its copy). A model of the
    clock check's width but `layers` deep, so no checked config is the one fitted. An
    isolated F.linear or grouped_mm over the same weights ran ~1.45x faster here than the
    same kernels inside the model, so the model's own timing is the one that counts."""
    import json
    import tempfile

    from moebench.tools.check_model import budget_gb, run

    rates = {}
    with tempfile.TemporaryDirectory() as scratch:
        for key, method, budget in (
            ("cold", "full_resident", "null"),
            ("warm", "ondemand", budget_gb(2, 64)),
        ):
            record = json.loads(
                run(
                    scratch,
                    [
                        f"model.arch.num_hidden_layers={layers}",
                        f"method={method}",
                        f"method.budget_gb={budget}",
                        f"threads={threads}",
                        "backend=real",
                        "device=cpu",
                        "force=true",
                    ],
                ).read_text()
            )
            m, plan = record["metrics"], record["method_details"]["memory_plan"]
            top_k = record["config"]["model"]["arch"].get("num_experts_per_tok", 2)
            read = m["decode_steps"] * layers * top_k * plan["expert_mb"] * 1e6
            rates[key] = read / m["wall_experts_sec"]
    return rates


def spread(values: list[float], scale: float, unit: str) -> str:
    """`median (min-max over n rounds)` of one measured quantity, for its source line."""
    v = sorted(x * scale for x in values)
    middle = statistics.median(v)
    return f"median {middle:.3g} {unit} (range {v[0]:.3g}-{v[-1]:.3g} over {len(v)} rounds)"


def measure(hidden: int, intermediate: int, threads: int, rounds: int = 5) -> dict:
    copies, rate_rounds = [], []
    # copies at about an expert's size (a line through small copies extrapolated badly here)
    expert_mb = 3 * hidden * intermediate * 2 / 1e6
    with fixed_threads(threads):
        for _ in range(rounds):  # interleaved, so a drift of the machine reaches every quantity
            copies.append(copy_line(sizes_mb=(expert_mb / 2, expert_mb, 2 * expert_mb), repeats=9))
            rate_rounds.append(matmul_rates(hidden, intermediate))
    host_layer, host_token, host_points = host_layer_line(threads, hidden)
    in_situ = in_situ_expert_rates(threads)
    latency = statistics.median(c[0] for c in copies)
    bandwidth = statistics.median(c[1] for c in copies)
    points = [
        (size, statistics.median(c[2][i][1] for c in copies))
        for i, (size, _) in enumerate(copies[0][2])
    ]
    rates = {k: statistics.median(r[k] for r in rate_rounds) for k in rate_rounds[0]}
    cpu = cpu_identity()
    where = (
        f"{cpu['model']} (ATen {numerics_state()['aten_capability']} kernels), {threads} torch "
        f"thread(s), torch {torch.__version__}"
    )
    return {
        "name": "cpu",
        "peak_flops": rates["flops"],
        "hbm_bytes_per_sec": in_situ["cold"],
        "h2d_bytes_per_sec": bandwidth,
        "h2d_latency_sec": latency,
        "launch_sec": rates["launch_sec"],
        "memory_gb": 16,
        "copies_overlap_compute": False,
        "readback_sec": 0.0,
        "host_layer_sec": host_layer,
        "warm_bytes_per_sec": in_situ["warm"],
        "low_bit_kernels": False,
        "sources": {
            "peak_flops": f"measured: one expert's forward (bf16 gate_up [{2 * intermediate}, "
            f"{hidden}], down [{hidden}, {intermediate}]) on 256 tokens, median "
            f"{rates['t_many'] * 1e3:.3g} ms, on {where}",
            "hbm_bytes_per_sec": "measured in situ: the real transport's own timing of the "
            "experts function over its decode steps, full_resident on a 2-layer model of this "
            f"width (isolated, one expert's F.linear forward on cold weights took "
            f"{spread([r['t_one'] for r in rate_rounds], 1e3, 'ms')}, i.e. "
            f"{rates['bytes_per_sec'] / 1e9:.3g} GB/s), on {where}",
            "h2d_bytes_per_sec": "measured: least-squares line through median dst.copy_(src) "
            "times (cold sources) at "
            + ", ".join(f"{b / 1e6:.0f} MB {t * 1e3:.3g} ms" for b, t in points)
            + f"; bandwidth {spread([c[1] for c in copies], 1e-9, 'GB/s')}, on {where}",
            "h2d_latency_sec": "measured: the same line's intercept",
            "launch_sec": "measured: median of a bf16 [1, 8] x [8, 8] matmul (per-call overhead)",
            "memory_gb": "not measured: a budget ceiling for this profile only",
            "copies_overlap_compute": "false: on the real CPU backend a copy is the compute "
            "thread's own memcpy",
            "readback_sec": "0: on a CPU the routing is already in host memory (no sync)",
            "host_layer_sec": "measured: slope of wall-minus-modeled-kernel time per decode token "
            f"of a random Mixtral (hidden {hidden}, experts 128 wide) on the real transport "
            "against its depth, "
            + ", ".join(f"{n} layers {t * 1e3:.3g} ms" for n, t in host_points)
            + f" (intercept {host_token * 1e3:.3g} ms per token, not charged), on {where}",
            "warm_bytes_per_sec": "measured in situ: the same, ondemand (every expert read right "
            "after its copy; isolated: "
            f"{spread([r['t_warm'] for r in rate_rounds], 1e3, 'ms')}), on {where}",
            "low_bit_kernels": "false: the CPU transport runs a low-bit draft from its "
            "dequantized bf16 weights, so its kernels read bf16 widths",
        },
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m moebench.tools.calibrate", description=__doc__)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=3584)
    parser.add_argument(
        "--threads", type=int, default=1, help="the runs' threads (RunConfig.threads)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    parser.add_argument("--out", default=str(CONF_DIR / "hardware" / "cpu.yaml"))
    args = parser.parse_args(argv)
    try:
        profile = measure(args.hidden, args.intermediate, args.threads, args.rounds)
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
