import pytest

from moebench.engine.clock import VirtualClock
from moebench.engine.costs import CostModel, Kernel
from moebench.models.shape import shape_from_hf_config


def test_compute_waits_for_copy_and_counts_the_stall():
    from moebench.engine.link import Link

    clock, link = VirtualClock(), Link()
    landed = link.demand((0, 1), issued=0.0, seconds=2.0).end
    clock.compute("attention", 0.5)
    end = clock.compute("expert", 1.0, after=landed)
    assert end == 3.0
    assert clock.stall_sec == pytest.approx(1.5)
    assert clock.compute_busy_sec == 1.5 and link.busy_sec == 2.0


def test_kernel_cost_is_roofline_plus_launch(a100):
    costs = CostModel(a100, None)
    compute_bound = Kernel("k", flops=312e12, bytes=1.0)
    memory_bound = Kernel("k", flops=1.0, bytes=1555e9)
    assert costs.kernel_sec(compute_bound) == pytest.approx(1.0 + 5e-6)
    assert costs.kernel_sec(memory_bound) == pytest.approx(1.0 + 5e-6)
    assert costs.transfer_sec(25e9) == pytest.approx(1.0 + 7e-6)


def test_shape_reads_phimoe_defaults():
    import transformers

    shape = shape_from_hf_config(transformers.PhimoeConfig())
    assert (shape.num_layers, shape.num_experts, shape.top_k) == (32, 16, 2)
    assert shape.expert_bytes == 3 * 4096 * 6400 * 2  # 157.3 MB, related-systems.md section 8
    assert len(shape.moe_layers) == 32


def test_shape_reads_deepseek_dense_first_layer():
    import transformers

    cfg = transformers.DeepseekV2Config(
        first_k_dense_replace=1, num_hidden_layers=27, n_routed_experts=64, num_experts_per_tok=6
    )
    shape = shape_from_hf_config(cfg)
    assert shape.moe_layers[0] == 1 and len(shape.moe_layers) == 26
