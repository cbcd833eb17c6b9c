"""Cache policies on hand-made access streams, and Belady's optimality on real traces."""

import random

import pytest

from moebench.engine.policy import LFU, LRU, Belady, LayerCache, Static, simulate_hits


def test_lru_evicts_least_recently_used():
    cache = LayerCache(2, LRU(), initial=[0, 1])
    cache.policy.used(0, 0)
    cache.policy.used(1, 1)
    cache.policy.used(0, 2)
    assert cache.make_room(3, protect=set()) == 1


def test_lfu_evicts_least_frequently_used():
    cache = LayerCache(2, LFU(), initial=[0, 1])
    for t in range(3):
        cache.policy.used(1, t)
    cache.policy.used(0, 3)
    assert cache.make_room(4, protect=set()) == 0


def test_static_keeps_the_popular_ones():
    cache = LayerCache(2, Static({0: 10.0, 1: 1.0, 2: 5.0}), initial=[0, 1])
    assert cache.make_room(0, protect=set()) == 1


def test_protected_experts_stay():
    cache = LayerCache(2, LRU(), initial=[0, 1])
    cache.policy.used(0, 0)
    assert cache.make_room(1, protect={0}) == 1


def test_belady_evicts_the_farthest_next_use():
    future = [{0}, {1}, {2}, {0}, {1}]
    cache = LayerCache(2, Belady(future), initial=[0, 1])
    assert cache.make_room(2, protect={2}) == 1  # 0 is needed at t=3, 1 at t=4


@pytest.mark.parametrize("seed", range(5))
def test_belady_never_loses_to_another_policy(seed):
    rng = random.Random(seed)
    experts, k = 8, 2
    skewed = [e for e in range(experts) for _ in range(experts - e)]
    accesses = [set(rng.sample(skewed, k)) for _ in range(300)]
    for slots in (2, 3, 5):
        best = simulate_hits(accesses, slots, Belady(accesses))
        popularity = {e: sum(e in a for a in accesses) for e in range(experts)}
        for policy in (LRU(), LFU(), Static(popularity)):
            assert best >= simulate_hits(accesses, slots, policy)


def test_cache_big_enough_for_everything_always_hits_after_warmup():
    accesses = [{0, 1}, {2, 3}, {0, 3}, {1, 2}]
    assert simulate_hits(accesses, 4, LRU(), initial=range(4)) == 1.0


def test_belady_misses_need_all_of_an_access_at_once_and_never_exceed_lru():
    from moebench.engine.policy import LRU, belady_misses, simulate_hits

    accesses = [{0, 1}, {2, 3}, {0, 1}, {2, 3}, {0, 2}]
    assert belady_misses(accesses, 2) == [2, 2, 2, 2, 1]  # {0, 2} finds 2 resident
    assert belady_misses(accesses, 4) == [2, 2, 0, 0, 0]  # only the cold misses
    assert belady_misses(accesses, 3, initial=[0, 1]) == [
        0,
        2,
        1,
        1,
        0,
    ]  # keeps 0 for the last access
    rng = __import__("random").Random(0)
    stream = [set(rng.sample(range(8), 2)) for _ in range(200)]
    lru_misses = (1 - simulate_hits(stream, 4, LRU())) * 400
    assert sum(belady_misses(stream, 4)) <= lru_misses
