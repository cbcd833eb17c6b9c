"""Carving is exact: with all N sub-experts of each chosen expert active, the carved model
reproduces the original outputs."""

import pytest
import torch

from moebench.prism.carve import CARVABLE, carve, expert_activations, partition_experts, set_active
from tests.tiny import tiny_model


@pytest.mark.parametrize("family", CARVABLE)
@pytest.mark.parametrize("method", ["anneal", "random"])
def test_carved_model_reproduces_the_original(family, method):
    loaded = tiny_model(family)
    windows = [
        torch.randint(1, 96, (1, 24), generator=torch.Generator().manual_seed(s)) for s in range(3)
    ]
    acts = expert_activations(loaded, windows)
    parts, _ = partition_experts(loaded, acts, n=4, k=3, method=method, iters=30)
    carved = carve(loaded, parts, 4)
    x = torch.randint(1, 96, (2, 11), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        want = loaded.model(input_ids=x).logits
        got = carved.model(input_ids=x).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    k = loaded.hf_config.num_experts_per_tok
    assert carved.hf_config.num_experts_per_tok == 4 * k
    assert carved.layers[0].num_experts == 4 * loaded.layers[0].num_experts


def test_fewer_active_sub_experts_change_the_output():
    loaded = tiny_model("olmoe")
    parts, _ = partition_experts(loaded, {}, n=4, k=3, method="random", iters=0)
    carved = carve(loaded, parts, 4)
    x = torch.randint(1, 96, (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = carved.model(input_ids=x).logits
        set_active(carved, 5)
        fewer = carved.model(input_ids=x).logits
    assert not torch.allclose(full, fewer)


def test_narrow_sub_experts_still_run():
    """Width 24 / 4 = 6 float32 neurons: 24-byte rows, which torch's grouped_mm rejects, so
    each sub-expert gets two zero neurons (still exact)."""
    loaded = tiny_model("qwen3_moe", moe_intermediate_size=24)
    parts, _ = partition_experts(loaded, {}, n=4, k=3, method="random", iters=0)
    carved = carve(loaded, parts, 4)
    assert carved.hf_config.moe_intermediate_size == 8
    x = torch.randint(1, 96, (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(
            carved.model(input_ids=x).logits, loaded.model(input_ids=x).logits, rtol=1e-4, atol=1e-5
        )


def test_contiguous_needs_no_calibration_and_stays_contiguous():
    from moebench.prism.partition import contiguous_partition

    loaded = tiny_model("olmoe")
    parts, _ = partition_experts(loaded, {}, n=4, k=3, method="contiguous", iters=0)
    width = loaded.layers[0].experts.down_proj.shape[-1]
    assert all(
        torch.equal(g, contiguous_partition(width, 4))
        for per in parts.values()
        for g in per.values()
    )
