"""GB budgets become expert slots, with the conversion shown and impossible ones refused."""

import pytest

from moebench.engine.budget import int4_expert_bytes, plan_slots
from moebench.errors import UserError
from moebench.models.catalog import real_model_shape


def test_phi_on_a_24gb_budget():
    shape = real_model_shape("phi35moe")
    plan = plan_slots(shape, 24.0, max_tokens=512)
    fixed = plan["non_expert_gb"] + plan["kv_cache_gb"]
    expected = int((24.0 - fixed) * 1e9 // shape.expert_bytes) // 32
    assert plan["slots_per_layer"] == expected >= 2
    assert plan["expert_mb"] == pytest.approx(157.3, rel=1e-3)


def test_no_budget_means_everything_resident():
    shape = real_model_shape("qwen15moe")
    assert plan_slots(shape, None, 512)["slots_per_layer"] == 60


def test_draft_bytes_shrink_the_cache():
    shape = real_model_shape("dsv2lite")
    draft = int4_expert_bytes(shape) * 64 * 26
    assert (
        plan_slots(shape, 24.0, 512, draft)["slots_per_layer"]
        < plan_slots(shape, 24.0, 512)["slots_per_layer"]
    )


def test_too_small_budget_names_the_minimum():
    shape = real_model_shape("phi35moe")
    with pytest.raises(
        UserError,
        match=r"method.budget_gb=4.0 is too small: 2 expert slots per layer need at least "
        r"1[0-9].\d\d GB",
    ):
        plan_slots(shape, 4.0, 512)


def test_int4_copy_is_a_quarter_plus_scales():
    shape = real_model_shape("phi35moe")
    assert int4_expert_bytes(shape) == pytest.approx(shape.expert_bytes / 4 * (1 + 4 / 128))


def test_fewer_draft_bits_take_fewer_bytes_and_buy_fp16_slots():
    from moebench.engine.budget import draft_expert_bytes, int4_expert_bytes, plan_slots
    from moebench.models.catalog import real_model_shape

    shape = real_model_shape("phi35moe")
    assert draft_expert_bytes(shape, 4) == int4_expert_bytes(shape)
    assert (
        draft_expert_bytes(shape, 2) < draft_expert_bytes(shape, 3) < draft_expert_bytes(shape, 4)
    )
    all_experts = shape.num_experts * len(shape.moe_layers)
    slots = {
        b: plan_slots(shape, 36, 512, draft_bytes=draft_expert_bytes(shape, b) * all_experts)[
            "slots_per_layer"
        ]
        for b in (2, 4)
    }
    assert slots[2] > slots[4]
