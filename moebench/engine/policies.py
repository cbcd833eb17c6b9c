"""Every expert-cache policy by name: what `method.options.policy` chooses and what a
policy sweep (tools/policy_sweep.py) compares.

The names are in engine/policy_names.py; `make_policy` builds one policy for a layer.
Parameters default to the values tuned on the real Mixtral trace's tuning split (even
layers, first prompt; `python -m moebench.tools.policy_sweep`), and a sweep passes others.
"""

from __future__ import annotations

from typing import Any

from moebench.engine.policy import LFU, LRU, Belady, CachePolicy, Lookahead, Static
from moebench.engine.policy_classic import ARC, LFRU, LFUDA, LIRS, S3FIFO, LeastStale
from moebench.engine.policy_names import ALL, NEEDS_TRACE, ONLINE  # noqa: F401 - re-exported
from moebench.engine.policy_predictive import Learned, ReuseModel, Transition

# `learned` at run time: fitted on the real Mixtral-8x7B HumanEval trace's tuning split
# (even MoE layers of its first sequence) at 4 of 8 slots, as the policy sweep fits it
# (`default_reuse_model()`; tests/integration/test_policies_engine.py refits and compares).
# A model with more experts sees smaller transition probabilities: the ranking, not the
# calibration, carries over.
DEFAULT_REUSE_MODEL = ReuseModel(coef=(3.55796, 0.332569, -0.020551, 0.086556), intercept=-1.326434)

# each policy's tunable parameters and the grid a sweep tunes them over
GRIDS: dict[str, dict[str, tuple]] = {
    "lfuda": {"decay": (1.0, 0.95, 0.9, 0.8), "cap": (2.0, 4.0, 16.0, 1e9)},
    "s3fifo": {"small_frac": (0.1, 0.25, 0.5)},
    "lirs": {"hir_frac": (0.1, 0.25, 0.5)},
    "lfru": {"privileged_frac": (0.25, 0.5, 0.75)},
    "least_stale": {"window": (2, 4, 8, 16, 32)},
    "transition": {"decay": (1.0, 0.99, 0.98, 0.95, 0.9), "prior": (0.1, 1.0)},
}


def make_policy(
    name: str,
    slots: int,
    num_experts: int,
    params: dict[str, Any] | None = None,
    future: list[set[int]] | None = None,
    popularity: dict[int, float] | None = None,
    reuse_model: ReuseModel | None = None,
) -> CachePolicy:
    """One layer's policy; `params` override the policy's defaults (a sweep's grid point)."""
    p = dict(params or {})
    simple = {"lru": LRU, "lfu": LFU, "lookahead": Lookahead, "lfuda": LFUDA}
    if name in simple:
        return simple[name](**p)
    sized = {"s3fifo": S3FIFO, "arc": ARC, "lirs": LIRS, "lfru": LFRU}
    if name in sized:
        return sized[name](slots, **p)
    if name == "least_stale":
        return LeastStale(**p)
    if name == "transition":
        return Transition(num_experts, **p)
    if name == "learned":
        return Learned(num_experts, reuse_model or DEFAULT_REUSE_MODEL)
    if name == "static":
        return Static(popularity or {})
    if name == "belady":
        return Belady(future or [])
    raise ValueError(f"unknown cache policy {name!r}")
