"""Neuron partition of one expert into N equal groups (paper section 4.2).

Objective (Eq. 2): for each calibration token, the L1 activation mass left in the K smallest
of the N groups (the ones that would be switched off), summed over tokens; lower is better.
Solver: greedy L1 initialisation, then simulated-annealing swaps (T0 = 100, T <- 0.995 T
after every proposal), keeping the best partition seen. Swaps keep group sizes equal.
Ablations: random, contiguous, and balanced k-means (neurons clustered by their activation
profiles over the calibration tokens, each cluster capped at C/N).
"""

from __future__ import annotations

import numpy as np
import torch


def group_mass(acts: torch.Tensor, groups: torch.Tensor, n: int) -> torch.Tensor:
    """[B, C] |activations| and a [C] group id per neuron -> [B, N] L1 mass per group."""
    mass = torch.zeros(acts.shape[0], n, dtype=torch.float64)
    return mass.index_add_(1, groups, acts.double())


def cost(mass: torch.Tensor, k: int) -> float:
    """Sum over tokens of the K smallest group masses."""
    return float(mass.sort(dim=1).values[:, :k].sum())


def greedy(acts: torch.Tensor, n: int) -> torch.Tensor:
    """Neurons by total L1 mass, largest first, each to the non-full group with least mass."""
    c = acts.shape[1]
    size = c // n
    order = acts.double().sum(0).argsort(descending=True).tolist()
    totals, counts = [0.0] * n, [0] * n
    column = acts.double().sum(0).tolist()
    groups = torch.empty(c, dtype=torch.long)
    for j in order:
        g = min((g for g in range(n) if counts[g] < size), key=lambda g: (totals[g], g))
        groups[j] = g
        totals[g] += column[j]
        counts[g] += 1
    return groups


def anneal(
    acts: torch.Tensor,
    groups: torch.Tensor,
    n: int,
    k: int,
    iters: int,
    t0: float = 100.0,
    alpha: float = 0.995,
    seed: int = 0,
) -> tuple[torch.Tensor, list[float]]:
    """Swap neurons between groups; accept worse swaps with probability exp(-delta/T).
    Returns the best partition seen and the cost curve (cost after each proposal)."""
    rng = np.random.default_rng(seed)
    a = acts.double()
    groups = groups.clone()
    mass = group_mass(a, groups, n)
    current = best_cost = cost(mass, k)
    best = groups.clone()
    curve = [current]
    members = [torch.nonzero(groups == g).flatten().tolist() for g in range(n)]
    t = t0
    for _ in range(iters):
        g1, g2 = rng.choice(n, size=2, replace=False)
        i1, i2 = rng.integers(len(members[g1])), rng.integers(len(members[g2]))
        j1, j2 = members[g1][i1], members[g2][i2]
        diff = a[:, j1] - a[:, j2]
        trial = mass.clone()
        trial[:, g1] -= diff
        trial[:, g2] += diff
        new = cost(trial, k)
        delta = new - current
        if delta < 0 or rng.random() < np.exp(-delta / max(t, 1e-300)):
            mass, current = trial, new
            members[g1][i1], members[g2][i2] = j2, j1
            groups[j1], groups[j2] = g2, g1
            if current < best_cost:
                best_cost, best = current, groups.clone()
        t *= alpha
        curve.append(current)
    return best, curve


def random_partition(c: int, n: int, seed: int = 0) -> torch.Tensor:
    perm = torch.randperm(c, generator=torch.Generator().manual_seed(seed))
    groups = torch.empty(c, dtype=torch.long)
    groups[perm] = torch.arange(c) % n
    return groups


def contiguous_partition(c: int, n: int) -> torch.Tensor:
    return torch.arange(c) // (c // n)


def balanced_kmeans(acts: torch.Tensor, n: int, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """Cluster neurons (columns of |acts|, L2-normalised) into N equal groups: Lloyd steps
    whose assignment step fills groups greedily by distance under the C/N cap (a simple
    stand-in for the optimal LAPJV assignment)."""
    x = torch.nn.functional.normalize(acts.double().T, dim=1)  # [C, B]
    c, size = x.shape[0], x.shape[0] // n
    gen = torch.Generator().manual_seed(seed)
    centroids = x[torch.randperm(c, generator=gen)[:n]]
    groups = torch.empty(c, dtype=torch.long)
    for _ in range(iters):
        dist = torch.cdist(x, centroids)  # [C, N]
        order = dist.flatten().argsort(stable=True).tolist()
        groups.fill_(-1)
        counts = [0] * n
        for flat in order:
            j, g = divmod(flat, n)
            if groups[j] < 0 and counts[g] < size:
                groups[j] = g
                counts[g] += 1
        new = torch.stack([x[groups == g].mean(0) for g in range(n)])
        if torch.allclose(new, centroids):
            break
        centroids = new
    return groups
