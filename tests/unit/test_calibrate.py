"""The CPU profile's measurements and the virtual engine's serialized copies."""

import dataclasses

import pytest

from moebench.errors import UserError
from moebench.tools.calibrate import copy_line, fit_copy_line, matmul_rates
from moebench.tools.clock_check import budget_gb


def test_copy_line_recovers_latency_and_bandwidth():
    points = [(b, 2e-6 + b / 8e9) for b in (1e6, 4e6, 16e6)]
    latency, bandwidth = fit_copy_line(points)
    assert latency == pytest.approx(2e-6) and bandwidth == pytest.approx(8e9)


def test_copy_times_that_do_not_grow_with_size_are_one_line_not_a_profile():
    with pytest.raises(UserError, match="idle machine"):
        fit_copy_line([(1e6, 3e-4), (2e6, 2e-4), (4e6, 1e-4)])


def test_measurements_are_timed_points_and_positive_rates():
    """Not a speed check (a busy machine times anything): only that each size is timed."""
    try:
        _, _, points = copy_line(sizes_mb=(1, 2, 4), repeats=3, cold_mb=16)
    except UserError:  # the machine was too busy for a line; the points were still taken
        points = None
    assert points is None or (len(points) == 3 and all(t > 0 for _, t in points))
    rates = matmul_rates(64, 128, repeats=3, cold_mb=4)
    assert rates["flops"] > 0 and rates["bytes_per_sec"] > 0 and rates["launch_sec"] > 0


def test_clock_check_budgets_grow_with_the_slots():
    assert budget_gb(2, 40) < budget_gb(3, 40) < budget_gb(5, 40)


def test_copies_that_do_not_overlap_compute_serialize_on_the_virtual_clock():
    import torch

    from moebench.engine.costs import CostModel
    from moebench.methods.registry import build_method
    from tests.integration.test_offload_lossless import hardware, run_config, small_budget_gb
    from tests.tiny import tiny_model

    loaded = tiny_model("mixtral")
    budget, shape = small_budget_gb(loaded)
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(5))
    out = {}
    for overlap in (True, False):
        hw = dataclasses.replace(hardware(), copies_overlap_compute=overlap)
        m = build_method(run_config("next_layer_prefetch", budget), loaded, CostModel(hw, shape))
        tokens, steps = m.generate(prompt, 10)
        out[overlap] = (tokens, sum(steps[1:]), m.metrics())
    assert out[True][0] == out[False][0]
    assert out[False][1] > out[True][1]  # a prefetch no longer hides behind compute
    serial = out[False][2]
    assert serial["stall_sec"] > 0
