"""Routing statistics that say how realistic a model's routing is for offloading studies:
how evenly each layer spreads load over its experts, how often consecutive tokens reuse an
expert, how many distinct experts a window of n tokens needs (what a verify of n tokens
loads), and what a per-layer LRU cache of a few slots would hit (what an expert cache lives on).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_entropy_bits(ids: np.ndarray, num_experts: int) -> float:
    """Entropy (bits) of the share of routing slots each expert receives; ids [T, k]."""
    share = np.bincount(ids.ravel(), minlength=num_experts) / ids.size
    share = share[share > 0]
    return float(-(share * np.log2(share)).sum())


def reuse_rate(ids: np.ndarray) -> float:
    """Mean share of token t's k experts that token t-1 also used, in one layer; ids [T, k].
    Independent uniform routing gives k / E."""
    if len(ids) < 2:
        return float("nan")
    k = ids.shape[1]
    overlaps = [
        len(set(a) & set(b)) / k for a, b in zip(ids[1:].tolist(), ids[:-1].tolist(), strict=True)
    ]
    return float(np.mean(overlaps))


UNION_WINDOWS = (1, 2, 4, 8)
LRU_SLOTS = (2, 4, 6)


def distinct_in_windows(ids: np.ndarray, n: int) -> float:
    """Mean number of distinct experts among n consecutive tokens, in one layer; ids [T, k]."""
    if len(ids) < n:
        return float("nan")
    return float(np.mean([len(np.unique(ids[t : t + n])) for t in range(len(ids) - n + 1)]))


def lru_hit_frac(ids: np.ndarray, slots: int) -> float:
    """Hit fraction of an LRU cache of `slots` experts for one layer, cold start; each token
    needs all its k experts at once, so they are never evicted for each other (NaN when
    slots < k)."""
    k = ids.shape[1]
    if slots < k:
        return float("nan")
    cache: list[int] = []  # least recently used first
    hits = 0
    for token in ids.tolist():
        for e in token:
            if e in cache:
                hits += 1
                cache.remove(e)
            else:
                victims = [c for c in cache if c not in token]
                if len(cache) >= slots:
                    cache.remove(victims[0])
            cache.append(e)
    return hits / ids.size


def _mean_over(sequences: list[np.ndarray], layer: int, fn) -> float:
    values = [fn(seq[:, layer]) for seq in sequences]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def layer_stats(sequences: list[np.ndarray], num_experts: int) -> dict:
    """Per-layer stats over sequences of routing, each [T, L, k] for one text."""
    layers = sequences[0].shape[1]
    k = sequences[0].shape[2]
    entropy, reuse = [], []
    for layer in range(layers):
        all_ids = np.concatenate([seq[:, layer] for seq in sequences])
        entropy.append(load_entropy_bits(all_ids, num_experts))
        pairs = [reuse_rate(seq[:, layer]) for seq in sequences if len(seq) > 1]
        reuse.append(
            float(np.average(pairs, weights=[len(s) - 1 for s in sequences if len(s) > 1]))
        )
    union = {
        str(n): float(
            np.nanmean(
                [
                    _mean_over(sequences, layer, lambda x, n=n: distinct_in_windows(x, n))
                    for layer in range(layers)
                ]
            )
        )
        for n in UNION_WINDOWS
    }
    lru = {
        str(c): [
            _mean_over(sequences, layer, lambda x, c=c: lru_hit_frac(x, c))
            for layer in range(layers)
        ]
        for c in LRU_SLOTS
    }
    return {
        "num_experts": num_experts,
        "top_k": k,
        "distinct_experts_in_window": union,
        "lru_hit_frac": lru,
        "lru_hit_frac_mean": {
            c: (float(np.mean(v)) if not np.isnan(v).all() else None) for c, v in lru.items()
        },
        "tokens": int(sum(len(s) for s in sequences)),
        "load_entropy_bits": entropy,
        "max_entropy_bits": float(np.log2(num_experts)),
        "load_entropy_frac_mean": float(np.mean(entropy) / np.log2(num_experts)),
        "reuse_rate": reuse,
        "reuse_rate_mean": float(np.mean(reuse)),
        "reuse_rate_if_random": k / num_experts,
    }


def read_mixtral_trace(path: Path) -> list[np.ndarray]:
    """The real Mixtral-8x7B routing trace (vLLM, HumanEval; ../shared/data/SOURCES.md 3a)
    as one [T, 32, 2] array per problem, keeping only tokens with all 32 layers recorded."""
    from moebench.engine.trace_formats import load_trace

    trace = load_trace(Path(path))
    starts = [0] + [
        i
        for i in range(1, len(trace.step_context))
        if trace.step_context[i] <= trace.step_context[i - 1]
    ]  # a new problem begins
    return np.split(trace.ids, starts[1:])
