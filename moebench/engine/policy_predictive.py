"""Policies that predict which resident expert the layer needs soonest.

Eviction at token t can only use what is known by then: the layer's routing up to and
including t. The next use of a candidate is at token t+1 at the earliest, so what a policy
can gain over LRU is bounded by how well it predicts the next tokens' routing (measured in
reports/engine_policies.md: a perfect next-token oracle closes about half of LRU's gap
to Belady at 4 of Mixtral's 8 slots). Both policies here keep the experts that MoE-SpeQ's
drafted routing names (`lookahead`) before anything else, so with a draft they know more.

- `Transition`: an online first-order model of the layer's routing, P(e at t+1 | set at t),
  counted as the run goes (decayed), with no fitting beforehand.
- `Learned`: a logistic model of "needed again within `horizon` accesses" from the
  transition probability, two decayed use rates and the expert's age, fitted on some
  layers and prompts (`fit_reuse_model`) and applied to others.

Arithmetic is elementwise or over fixed, short lists in a fixed order, so a victim is the
same on any CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from moebench.engine.policy import LRU, CachePolicy, drafted_rank, simulate_misses

FEATURES = ("transition", "rate_fast", "rate_slow", "log_age")


class Transition(CachePolicy):
    """Evict the candidate least likely to follow the layer's current routing, by counts
    of which experts followed which (each count decays by `decay` per access; `prior` is
    the pseudo-count every pair starts with). Ties: least recently used."""

    name = "transition"

    def __init__(self, num_experts: int, decay: float = 0.98, prior: float = 1.0):
        self.decay, self.prior = decay, prior
        self.counts = np.full((num_experts, num_experts), prior)
        self.row_total = np.full(num_experts, prior * num_experts)
        self.current: list[int] = []  # the experts of the latest access
        self.lru = LRU()
        self.upcoming: list[set[int]] = []
        self.accesses = 0
        self._follow: np.ndarray | None = None

    def begin_access(self, needed, time):
        self.accesses += 1
        if self.current:  # count what followed the previous access
            self.counts *= self.decay
            self.row_total *= self.decay
            for a in self.current:
                for b in sorted(needed):
                    self.counts[a, b] += 1.0
                    self.row_total[a] += 1.0
        self.current = sorted(needed)
        self._follow = None  # recomputed on the access's first eviction

    def used(self, expert, time):
        self.lru.used(expert, time)

    def lookahead(self, upcoming):
        self.upcoming = upcoming

    def follow_probs(self) -> np.ndarray:
        """P(e at the next access | the current access) for every e, averaged over the
        current experts (rows added in a fixed order: the same sums on any CPU)."""
        if self._follow is None:
            if not self.current:
                self._follow = np.zeros(len(self.row_total))
            else:
                rows = self.counts[self.current] / self.row_total[self.current, None]
                self._follow = rows.sum(axis=0) / len(self.current)
        return self._follow

    def follow_prob(self, expert: int) -> float:
        return float(self.follow_probs()[expert])

    def keep_score(self, expert: int) -> float:
        return self.follow_prob(expert)

    def victim(self, candidates, time):
        return min(
            candidates,
            key=lambda e: (
                -drafted_rank(self.upcoming, e),
                self.keep_score(e),
                self.lru.last.get(e, -1),
                e,
            ),
        )


@dataclass(frozen=True)
class ReuseModel:
    """Logistic weights over FEATURES: P(needed again within `horizon` accesses)."""

    coef: tuple[float, ...]
    intercept: float
    horizon: int = 2
    decay: float = 0.98  # the transition counts' decay the features were computed with


class Learned(Transition):
    """Evict the candidate with the lowest modeled chance of reuse (`ReuseModel`)."""

    name = "learned"

    def __init__(self, num_experts: int, model: ReuseModel):
        super().__init__(num_experts, decay=model.decay)
        self.model = model
        self.rate_fast = np.zeros(num_experts)
        self.rate_slow = np.zeros(num_experts)
        self.last_access: dict[int, int] = {}
        self._logits: np.ndarray | None = None

    def begin_access(self, needed, time):
        super().begin_access(needed, time)
        self.rate_fast *= 0.8
        self.rate_slow *= 0.97
        for e in needed:
            self.rate_fast[e] += 1.0
            self.rate_slow[e] += 1.0
            self.last_access[e] = self.accesses
        self._logits = None  # recomputed on the access's first eviction

    def feature_arrays(self) -> tuple[np.ndarray, ...]:
        """FEATURES for every expert at the current access."""
        ages = np.full(len(self.rate_fast), 1000.0)
        for e, at in self.last_access.items():
            ages[e] = self.accesses - at
        return (self.follow_probs(), self.rate_fast, self.rate_slow, np.log1p(ages))

    def features(self, expert: int) -> tuple[float, ...]:
        return tuple(float(f[expert]) for f in self.feature_arrays())

    def keep_score(self, expert: int) -> float:
        if self._logits is None:
            logits = np.full(len(self.rate_fast), self.model.intercept)
            for w, f in zip(self.model.coef, self.feature_arrays(), strict=True):
                logits = logits + w * f  # elementwise, in FEATURES order
            self._logits = logits
        return float(self._logits[expert])


class _Recorder(Learned):
    """The transition policy's own evictions, with every eviction's candidates' features
    written down: the training rows of `fit_reuse_model`. Rows gathered under LRU taught
    the model that old residents come back (the ones LRU let survive are the reused ones)
    and it then evicted young experts; under the policy it refines, the states it learns
    from are like those it acts in."""

    def __init__(self, num_experts: int, decay: float):
        super().__init__(num_experts, ReuseModel((0.0,) * len(FEATURES), 0.0, decay=decay))
        self.rows: list[tuple[int, int, tuple[float, ...]]] = []  # (access, expert, features)

    def victim(self, candidates, time):
        for e in sorted(candidates):
            self.rows.append((self.accesses, e, self.features(e)))
        return min(candidates, key=lambda e: (self.follow_prob(e), self.lru.last.get(e, -1), e))


def reuse_rows(
    stream: list[set[int]], slots: int, num_experts: int, horizon: int, decay: float
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels (needed again within `horizon` accesses) at each eviction the
    transition policy makes."""
    recorder = _Recorder(num_experts, decay)
    simulate_misses(stream, slots, recorder, range(min(slots, num_experts)))
    x = np.array([f for _, _, f in recorder.rows], dtype=float).reshape(-1, len(FEATURES))
    y = np.array(
        [
            any(e in stream[a - 1 + d] for d in range(1, horizon + 1) if a - 1 + d < len(stream))
            for a, e, _ in recorder.rows
        ],
        dtype=int,
    )
    return x, y


def fit_reuse_model(
    streams: list[list[set[int]]],
    slots: int,
    num_experts: int,
    horizon: int = 2,
    decay: float = 0.98,
) -> ReuseModel:
    """Fit the logistic model on the evictions the transition policy makes in `streams`
    (the tuning split)."""
    from sklearn.linear_model import LogisticRegression

    rows = [reuse_rows(s, slots, num_experts, horizon, decay) for s in streams]
    x = np.concatenate([r[0] for r in rows])
    y = np.concatenate([r[1] for r in rows])
    if len(set(y.tolist())) < 2:
        return ReuseModel((0.0,) * len(FEATURES), 0.0, horizon, decay)
    fit = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    coef = tuple(round(float(w), 6) for w in fit.coef_[0])
    return ReuseModel(coef, round(float(fit.intercept_[0]), 6), horizon, decay)
