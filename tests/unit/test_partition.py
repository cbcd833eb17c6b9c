"""Partition invariants: every neuron in exactly one group, equal sizes, and annealing never
ends worse than its greedy start."""

import pytest
import torch

from moebench.prism.partition import (
    anneal,
    balanced_kmeans,
    contiguous_partition,
    cost,
    greedy,
    group_mass,
    random_partition,
)


def activations(seed=0, tokens=300, neurons=32):
    gen = torch.Generator().manual_seed(seed)
    # a few neurons fire together per token: the structure the objective can exploit
    base = torch.rand(tokens, neurons, generator=gen) * 0.1
    hot = torch.randint(0, neurons, (tokens, 6), generator=gen)
    return base.scatter_add(1, hot, torch.rand(tokens, 6, generator=gen) * 3)


def check_partition(groups, c, n):
    assert groups.shape == (c,)
    assert sorted(torch.bincount(groups, minlength=n).tolist()) == [c // n] * n


@pytest.mark.parametrize(
    "maker",
    [
        lambda a: greedy(a, 4),
        lambda a: random_partition(32, 4),
        lambda a: contiguous_partition(32, 4),
        lambda a: balanced_kmeans(a, 4),
    ],
)
def test_partitions_are_equal_sized_and_cover_every_neuron(maker):
    check_partition(maker(activations()), 32, 4)


@pytest.mark.parametrize("seed", range(4))
def test_annealing_never_ends_worse_than_greedy(seed):
    acts = activations(seed)
    start = greedy(acts, 4)
    best, curve = anneal(acts, start, 4, 3, iters=400, seed=seed)
    check_partition(best, 32, 4)
    assert cost(group_mass(acts, best, 4), 3) <= cost(group_mass(acts, start, 4), 3) + 1e-9
    assert curve[0] == pytest.approx(cost(group_mass(acts, start, 4), 3))
    assert len(curve) == 401


def test_optimised_partitions_beat_random_ones():
    acts = activations(7)
    best, _ = anneal(acts, greedy(acts, 4), 4, 3, iters=600)
    assert cost(group_mass(acts, best, 4), 3) < cost(
        group_mass(acts, random_partition(32, 4), 4), 3
    )


def test_partition_cost_is_the_same_bits_in_any_expert_order():
    """A cached partition loads its experts in another order than a fresh one computed them;
    the recorded objective must not change in its last bits (it did, with a running sum)."""
    from moebench.prism.carve import partition_cost

    gen = torch.Generator().manual_seed(0)  # a running sum differs between the two orders here
    acts = {
        layer: {
            e: torch.rand(7, 16, generator=gen, dtype=torch.float64) * 3.0**e for e in range(12)
        }
        for layer in (1, 3, 5)
    }
    parts = {layer: {e: torch.arange(16) % 4 for e in range(12)} for layer in (1, 3, 5)}
    backwards = {layer: dict(reversed(per.items())) for layer, per in reversed(acts.items())}
    assert partition_cost(None, acts, parts, 4, 3) == partition_cost(None, backwards, parts, 4, 3)
