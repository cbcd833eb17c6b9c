"""Routing statistics by hand: window unions and a cold-start per-layer LRU."""

import math

import numpy as np

from moebench.bench.routing_stats import distinct_in_windows, layer_stats, lru_hit_frac


def test_distinct_experts_in_windows():
    ids = np.array([[0, 1], [1, 2], [3, 4]])
    assert distinct_in_windows(ids, 1) == 2
    assert distinct_in_windows(ids, 2) == (3 + 4) / 2
    assert distinct_in_windows(ids, 3) == 5


def test_lru_counts_cold_misses_and_evicts_the_least_recent_expert_not_needed_now():
    ids = np.array([[0, 1], [1, 2], [0, 2], [3, 0]])
    # 2 slots: [0,1] miss miss; [1,2]: 1 hit, 2 evicts 0; [0,2]: 0 evicts 1, 2 hit;
    # [3,0]: 3 evicts 2, 0 hit
    assert lru_hit_frac(ids, 2) == 3 / 8
    assert lru_hit_frac(ids, 4) == 4 / 8  # only the four cold misses
    assert math.isnan(lru_hit_frac(ids, 1))


def test_layer_stats_carry_the_union_curve_and_lru_hits():
    seq = np.random.default_rng(0).integers(0, 8, size=(50, 3, 2))
    stats = layer_stats([seq], 8)
    assert set(stats["distinct_experts_in_window"]) == {"1", "2", "4", "8"}
    assert stats["distinct_experts_in_window"]["8"] > stats["distinct_experts_in_window"]["1"]
    assert len(stats["lru_hit_frac"]["4"]) == 3 and 0 < stats["lru_hit_frac_mean"]["4"] < 1
