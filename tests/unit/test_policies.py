"""Every cache policy: valid victims, never better than Belady, and the behaviour each is
known for on the access pattern it was designed for."""

import random
import typing

import pytest

from moebench.engine.policies import ALL, NEEDS_TRACE, ONLINE, make_policy
from moebench.engine.policy import (
    LRU,
    Belady,
    CachePolicy,
    HorizonOracle,
    belady_misses,
    simulate_misses,
)
from moebench.engine.policy_predictive import Learned, ReuseModel, fit_reuse_model, reuse_rows
from moebench.methods.options import PolicyName


def misses(name, stream, slots, experts=16, **params):
    policy = make_policy(name, slots, experts, params)
    return sum(simulate_misses(stream, slots, policy, range(slots)))


def random_stream(seed, n=300, experts=8, k=2):
    rng = random.Random(seed)
    hot = [0, 1, 2]
    return [
        set(rng.sample(hot, 1) + rng.sample(range(experts), k - 1))
        if rng.random() < 0.6
        else set(rng.sample(range(experts), k))
        for _ in range(n)
    ]


def test_every_policy_an_option_can_name_is_built():
    """A name added to engine/policy_names.py without its class fails here, not in a run."""
    for name in typing.get_args(PolicyName):
        policy = make_policy(name, 4, 8, future=[{0}], popularity={0: 1.0})
        assert isinstance(policy, CachePolicy), name
    assert set(NEEDS_TRACE) < set(ALL) and set(ONLINE) < set(ALL)
    with pytest.raises(ValueError, match="unknown cache policy"):
        make_policy("mru", 4, 8)


class Checked(CachePolicy):
    """Wraps a policy and fails if it ever names a victim outside the candidates."""

    def __init__(self, inner):
        self.inner = inner

    def begin_access(self, needed, time):
        self.inner.begin_access(needed, time)

    def used(self, expert, time):
        self.inner.used(expert, time)

    def admitted(self, expert, time):
        self.inner.admitted(expert, time)

    def victim(self, candidates, time):
        candidates = set(candidates)
        out = self.inner.victim(candidates, time)
        assert out in candidates
        return out


@pytest.mark.parametrize("name", ONLINE)
@pytest.mark.parametrize("slots", [2, 3, 5])
def test_online_policies_pick_valid_victims_and_never_beat_belady(name, slots):
    for seed in range(4):
        stream = random_stream(seed)
        policy = Checked(make_policy(name, slots, 8))
        got = sum(simulate_misses(stream, slots, policy, range(slots)))
        assert got >= sum(belady_misses(stream, slots, range(slots))), (name, seed)


def test_scan_resistant_policies_keep_the_hot_set_lru_flushes():
    """A hot pair used twice, then two one-time experts, over and over: LRU evicts the
    hot pair for the scan; ARC, LIRS, S3-FIFO, LFUDA and LFRU keep it."""
    stream = []
    for i in range(50):
        stream += [{0}, {1}, {0}, {1}, {2 + (2 * i) % 10}, {3 + (2 * i) % 10}]
    lru = misses("lru", stream, 3)
    for name in ("arc", "lirs", "s3fifo", "lfuda", "lfru", "least_stale"):
        assert misses(name, stream, 3) < 0.6 * lru, name


def test_transition_learns_a_routing_cycle_that_defeats_lru():
    """Five experts in a cycle through four slots: LRU always evicts the next one needed;
    the transition counts learn which one follows and keep it (at least every other time)."""
    stream = [{i % 5} for i in range(200)]
    assert misses("lru", stream, 4, experts=5) > 190
    assert misses("transition", stream, 4, experts=5) < 0.55 * 200


def test_lfuda_ages_out_a_formerly_hot_expert():
    """Expert 0 is used 50 times, then never again while 1..3 rotate through 3 slots: plain
    LFU keeps 0 forever (almost every access misses); LFUDA's capped, decayed counts let
    it go."""
    stream = [{0}] * 50 + [{1 + i % 3} for i in range(300)]
    assert misses("lfu", stream, 3) > 100
    assert misses("lfuda", stream, 3) < 20


def test_the_next_token_oracle_sits_between_lru_and_belady():
    for seed in range(3):
        stream = random_stream(seed)
        lru = sum(simulate_misses(stream, 4, LRU(), range(4)))
        one = sum(simulate_misses(stream, 4, HorizonOracle(stream, 1), range(4)))
        far = sum(simulate_misses(stream, 4, HorizonOracle(stream, 10**6), range(4)))
        best = sum(simulate_misses(stream, 4, Belady(stream), range(4)))
        assert best <= far <= one <= lru


def test_drafted_routing_comes_first_for_the_predictive_policies():
    for name in ("transition", "learned"):
        policy = make_policy(name, 4, 8)
        policy.begin_access({0, 1}, 0)
        policy.lookahead([{5}, {6}])
        assert policy.victim({4, 5, 6}, 1) == 4  # 4 is not drafted
        assert policy.victim({5, 6}, 1) == 6  # 6 is drafted later than 5


def test_reuse_model_fits_the_labels_it_is_given():
    """A stream where expert e is mostly followed by e + 3: the fitted model must weigh the
    transition feature up and evict better than LRU on a fresh stream."""
    rng = random.Random(0)
    streams = []
    for _ in range(3):
        s, e = [], 0
        for _ in range(300):
            e = (e + 3) % 8 if rng.random() < 0.6 else rng.randrange(8)
            s.append({e, (e + 1 + rng.randrange(7)) % 8})
        streams.append(s)
    x, y = reuse_rows(streams[0], 3, 8, horizon=2, decay=0.98)
    assert len(x) == len(y) > 50 and set(y.tolist()) == {0, 1}
    model = fit_reuse_model(streams[:2], 3, 8)
    assert model.coef[0] > 0  # a likelier follower is likelier reused
    learned = sum(simulate_misses(streams[2], 3, Learned(8, model), range(3)))
    assert learned < sum(simulate_misses(streams[2], 3, LRU(), range(3)))


def test_an_untrained_reuse_model_is_lru():
    stream = random_stream(7)
    zero = ReuseModel((0.0, 0.0, 0.0, 0.0), 0.0)
    assert simulate_misses(stream, 3, Learned(8, zero), range(3)) == simulate_misses(
        stream, 3, LRU(), range(3)
    )
