"""The CPU profile's measurements and the virtual engine's serialized copies."""

import dataclasses

from moebench.bench.calibrate import copy_line, matmul_rates
from moebench.bench.clock_check import budget_gb


def test_copy_line_and_matmul_rates_are_positive_and_physical():
    latency, bandwidth, points = copy_line(sizes_mb=(1, 2, 4), repeats=3, cold_mb=16)
    assert latency >= 0 and 1e8 < bandwidth < 1e12 and len(points) == 3
    rates = matmul_rates(64, 128, repeats=3, cold_mb=4)
    assert rates["flops"] > 0 and rates["bytes_per_sec"] > 0 and rates["launch_sec"] > 0


def test_clock_check_budgets_grow_with_the_slots():
    assert budget_gb(2, 40) < budget_gb(3, 40) < budget_gb(5, 40)


def test_copies_that_do_not_overlap_compute_serialize_on_the_virtual_clock():
    import torch

    from moebench.engine.costs import CostModel
    from moebench.methods import METHODS
    from tests.integration.test_offload_lossless import hardware, run_config, small_budget_gb
    from tests.tiny import tiny_model

    loaded = tiny_model("mixtral")
    budget, shape = small_budget_gb(loaded)
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(5))
    out = {}
    for overlap in (True, False):
        hw = dataclasses.replace(hardware(), copies_overlap_compute=overlap)
        m = METHODS["next_layer_prefetch"](run_config("next_layer_prefetch", budget), loaded, CostModel(hw, shape))
        tokens, steps = m.generate(prompt, 10)
        out[overlap] = (tokens, sum(steps[1:]), m.metrics())
    assert out[True][0] == out[False][0]
    assert out[False][1] > out[True][1]  # a prefetch no longer hides behind compute
    serial = out[False][2]
    assert serial["stall_sec"] > 0
