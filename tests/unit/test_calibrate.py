"""The CPU profile's measurements and the virtual engine's serialized copies."""

import dataclasses

import pytest

from moebench.errors import UserError
from moebench.tools.calibrate import copy_line, fit_copy_line, matmul_rates
from moebench.tools.check_model import budget_gb


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


def tiny_run(method: str, hw, steps: int = 10):
    """(tokens, decode seconds, metrics, engine) of `method` on the tiny Mixtral under `hw`."""
    import torch

    from moebench.engine.costs import CostModel
    from moebench.methods.registry import build_method
    from tests.integration.test_offload_lossless import run_config, small_budget_gb
    from tests.tiny import tiny_model

    loaded = tiny_model("mixtral")
    budget, shape = small_budget_gb(loaded)
    prompt = torch.randint(1, 96, (1, 7), generator=torch.Generator().manual_seed(5))
    m = build_method(
        run_config(method, None if method == "full_resident" else budget),
        loaded,
        CostModel(hw, shape),
    )
    tokens, seconds = m.generate(prompt, steps)
    return tokens, sum(seconds[1:]), m.metrics(), m.engine


def test_host_terms_charge_every_moe_layer_of_every_forward_the_same():
    """Read-back plus per-layer host work add exactly layers x forwards x their sum to a
    full_resident run (nothing moves, so nothing can hide them), and are counted apart from
    stalls; the tokens do not change."""
    from tests.integration.test_offload_lossless import hardware

    base = hardware()
    plain = tiny_run("full_resident", base)
    charged = tiny_run(
        "full_resident", dataclasses.replace(base, readback_sec=1e-5, host_layer_sec=3e-5)
    )
    assert plain[0] == charged[0]
    layers = len(plain[3].shape.moe_layers)
    decode_forwards = 10 - 1
    assert charged[1] - plain[1] == pytest.approx(decode_forwards * layers * 4e-5)
    assert charged[2]["host_sec"] == pytest.approx(10 * layers * 4e-5)
    assert charged[2]["stall_sec"] == plain[2]["stall_sec"]
    assert "host_sec" not in plain[2]  # records made without host terms keep their metrics


def test_a_warm_rate_charges_only_experts_copied_in_during_their_access():
    """ondemand copies every expert it runs, so each matmul is warm; full_resident copies
    none, so a warm rate cannot change it."""
    from tests.integration.test_offload_lossless import hardware

    base = dataclasses.replace(hardware(), copies_overlap_compute=False)
    warm = dataclasses.replace(base, warm_bytes_per_sec=base.hbm_bytes_per_sec * 4)
    assert tiny_run("full_resident", warm)[1] == tiny_run("full_resident", base)[1]
    cold_od, warm_od = tiny_run("ondemand", base), tiny_run("ondemand", warm)
    assert cold_od[0] == warm_od[0] and warm_od[1] < cold_od[1]


def test_without_low_bit_kernels_a_draft_expert_reads_bf16_widths():
    from moebench.engine.costs import CostModel
    from moebench.models.shape import BYTES_PER_PARAM, shape_from_hf_config
    from tests.integration.test_offload_lossless import hardware
    from tests.tiny import tiny_model

    shape = shape_from_hf_config(tiny_model("mixtral").hf_config)
    gpu = CostModel(hardware(), shape)
    cpu = CostModel(dataclasses.replace(hardware(), low_bit_kernels=False), shape)
    assert gpu.expert_kernel(1, 0.5).bytes == shape.expert_params * 0.5
    assert cpu.expert_kernel(1, 0.5).bytes == shape.expert_params * BYTES_PER_PARAM
    assert cpu.expert_kernel(1).bytes == gpu.expert_kernel(1).bytes


def test_host_line_fit_takes_the_slope_per_layer(monkeypatch):
    """The host fit is the slope of per-token time against depth, kernel time taken off."""
    from moebench.tools import calibrate, check_model

    def fake(scratch, overrides):
        layers = int(next(o for o in overrides if "num_hidden_layers" in o).split("=")[1])
        kernels = 1e-6 * layers
        return kernels if "backend=virtual" in overrides else kernels + 2e-4 + 5e-4 * layers

    monkeypatch.setattr(check_model, "run_tpot", fake)
    per_layer, per_token, points = calibrate.host_layer_line(threads=1, repeats=1)
    assert per_layer == pytest.approx(5e-4) and per_token == pytest.approx(2e-4)
    assert [n for n, _ in points] == list(calibrate.HOST_LAYERS)
