"""The cost model's terms measured on the GPU at hand, beside the profile's values (issue 24).

    .venv/bin/python -m pytest -q tests/gpu/test_gpu_cost_terms.py -m gpu -s

One prepared command, about a minute: pinned host-to-device bandwidth and per-copy latency,
kernel launch, the routing read-back (a [1, k] index tensor to the host after a router-sized
kernel, which drains the stream), and the engine's per-layer host work on the real transport
(the wall time per MoE layer of a tiny model, whose kernels cost microseconds). Each test
prints the measured value beside the closest profile in conf/hardware (or `--profile` via
MOEBENCH_GPU_PROFILE) and the sourced host terms, and fails only when a measurement is off
by more than 4x, so the run always ends with every number printed.
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
import torch
import yaml

from moebench.paths import CONF_DIR
from moebench.tools.calibrate import median_sec

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

DEV = torch.device("cuda")
FAR = 4.0  # a measurement this many times off its profile value fails


def profile() -> dict:
    """The profile named by MOEBENCH_GPU_PROFILE, else the one whose name the device's
    contains, else the A100 (the MoE-SpeQ paper's machine)."""
    name = os.environ.get("MOEBENCH_GPU_PROFILE")
    device = torch.cuda.get_device_name(DEV).lower()
    if name is None:
        name = next(
            (
                p.stem
                for p in sorted((CONF_DIR / "hardware").glob("*.yaml"))
                if p.stem.split("_")[0] in device
            ),
            "a100_40g_pcie4",
        )
    data = yaml.safe_load((CONF_DIR / "hardware" / f"{name}.yaml").read_text())
    host = yaml.safe_load((CONF_DIR / "hardware" / "host_terms.yaml").read_text())
    return data | {k: data.get(k) or host[k] for k in ("readback_sec", "host_layer_sec")}


def cuda_median(fn, repeats: int = 50) -> float:
    """Median seconds of `fn` by CUDA events, after a warm-up."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def report(name: str, measured: float, modeled: float, unit: str, scale: float) -> None:
    print(
        f"\n[cost terms] {name}: measured {measured * scale:.4g} {unit}, profile "
        f"{modeled * scale:.4g} {unit} (measured/profile {measured / modeled:.3g})"
    )
    assert modeled / FAR <= measured <= modeled * FAR, name


def test_pinned_copy_bandwidth_and_latency():
    sizes = [1 << 20, 16 << 20, 64 << 20]
    points = []
    for size in sizes:
        src = torch.empty(size, dtype=torch.uint8, pin_memory=True)
        dst = torch.empty(size, dtype=torch.uint8, device=DEV)
        points.append((size, cuda_median(lambda d=dst, s=src: d.copy_(s, non_blocking=True))))
    (x0, t0), (x1, t1) = points[1], points[2]
    bandwidth = (x1 - x0) / (t1 - t0)
    tiny_dst, tiny_src = torch.empty(4, device=DEV), torch.empty(4, pin_memory=True)
    small = cuda_median(lambda: tiny_dst.copy_(tiny_src, non_blocking=True))
    hw = profile()
    report("h2d bandwidth", bandwidth, hw["h2d_bytes_per_sec"], "GB/s", 1e-9)
    print(
        f"[cost terms] h2d latency (a 16-byte copy): measured {small * 1e6:.3g} us, profile "
        f"{hw['h2d_latency_sec'] * 1e6:.3g} us"
    )


def test_kernel_launch():
    a, b = torch.randn(1, 8, device=DEV), torch.randn(8, 8, device=DEV)
    torch.cuda.synchronize()
    n = 1000
    start = time.perf_counter()
    for _ in range(n):
        a @ b
    torch.cuda.synchronize()
    report("launch", (time.perf_counter() - start) / n, profile()["launch_sec"], "us", 1e6)


def test_routing_read_back():
    """A router-sized matmul, top-k, and the indices to the host: the sync an offloading
    engine pays at every MoE layer, less the same work left on the device."""
    hidden, experts = 4096, 16
    x = torch.randn(1, hidden, device=DEV, dtype=torch.bfloat16)
    router = torch.randn(experts, hidden, device=DEV, dtype=torch.bfloat16)

    def choose():
        return torch.topk(x @ router.T, 2, dim=-1).indices

    queued = median_sec(choose, 200)
    synced = median_sec(lambda: choose().tolist(), 200)
    report("read-back sync", max(synced - queued, 1e-7), profile()["readback_sec"], "us", 1e6)


def test_engine_host_work_per_layer(tmp_path):
    """Wall time per decode token of a tiny Mixtral on the real CUDA transport at 2 and 8
    layers: the slope is one MoE layer's host work (hook, read-back, engine)."""
    from moebench.cli import compose_run_config
    from moebench.runner import execute

    def tpot(layers: int) -> float:
        cfg = compose_run_config(
            [
                f"results_dir={tmp_path}",
                "+experiment=engine_clock_check",
                "model=clock_check_mixtral",
                "model.arch.hidden_size=64",
                "model.arch.intermediate_size=128",
                f"model.arch.num_hidden_layers={layers}",
                "hardware=a100_40g_pcie4",
                "workload=debug",
                "workload.num_prompts=2",
                "workload.new_tokens=24",
                "method=mixtral_offloading",
                "method.budget_gb=null",
                "backend=real",
                "device=cuda",
                "force=true",
            ]
        )
        import json

        return json.loads(execute(cfg).read_text())["metrics"]["tpot_sec_mean"]

    per_layer = (tpot(8) - tpot(2)) / 6
    hw = profile()
    report(
        "host work per MoE layer (with its read-back)",
        per_layer,
        hw["host_layer_sec"] + hw["readback_sec"],
        "us",
        1e6,
    )
