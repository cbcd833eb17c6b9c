"""How much of LRU's miss gap to Belady a cache policy closes, held out, with an interval.

A routing trace gives each MoE layer one access stream (the experts each forward needed).
Every policy replays every stream clock-free (`policy.simulate_misses`: the engine's calls
in the engine's order, so the counts are the engine's), from the engine's warm start.

- Split: parameters are tuned, and the learned policy fitted, on the even MoE layers of
  the first half of the sequences; everything is reported on the odd layers of the second
  half. A trace with one sequence is split by layers alone.
- Units: a held-out layer's decode accesses cut into blocks of `BLOCK` accesses per
  sequence. The gap closed is sum(LRU misses - policy misses) / sum(LRU misses - Belady
  misses) over the units, with a paired bootstrap 95% interval over units
  (bench/paired.py): every policy is counted on the same units.
- The cold floor: misses on an expert's first use in a stream (compulsory for any policy
  that starts from the same warm slots), reported apart.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from moebench.bench.paired import paired_ratio
from moebench.engine.policies import GRIDS, ONLINE, make_policy
from moebench.engine.policy import HorizonOracle, belady_misses, simulate_misses
from moebench.engine.policy_predictive import ReuseModel, fit_reuse_model
from moebench.engine.trace import RoutingTrace

BLOCK = 32  # decode accesses per bootstrap unit
ORACLE_HORIZONS = (1, 2)  # references: perfect knowledge of the next 1 or 2 accesses


@dataclass
class Streams:
    """One trace as per-layer access streams, with what each access belongs to."""

    layers: list[int]
    accesses: list[list[set[int]]]  # [layer position][access] experts needed
    sequence: np.ndarray  # [access] which sequence
    decode: np.ndarray  # [access] True for a decode forward (not a prefill)
    num_experts: int
    top_k: int

    @classmethod
    def of(cls, trace: RoutingTrace, num_experts: int | None = None) -> Streams:
        prompt = trace.prompt_of_step()
        accesses = [[] for _ in trace.layers]
        for _tokens, _context, ids in trace.steps():
            for pos in range(len(trace.layers)):
                accesses[pos].append(set(np.unique(ids[:, pos]).tolist()))
        return cls(
            trace.layers,
            accesses,
            np.asarray(prompt),
            np.asarray(trace.step_context) > 0,
            num_experts or int(trace.ids.max()) + 1,
            int(trace.ids.shape[2]),
        )

    @property
    def num_sequences(self) -> int:
        return int(self.sequence.max()) + 1 if len(self.sequence) else 0

    def split(self, held_out: bool) -> tuple[list[int], np.ndarray]:
        """Layer positions and an access mask of the tuning (False) or held-out (True) part."""
        positions = [p for p in range(len(self.layers)) if p % 2 == int(held_out)]
        half = self.num_sequences // 2
        if half == 0:
            mask = np.ones(len(self.sequence), bool)
        else:
            mask = (self.sequence >= half) if held_out else (self.sequence < half)
        return positions, mask & self.decode

    def units(self, positions: list[int], mask: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(layer position, access indices) of each unit: blocks of BLOCK accesses."""
        out = []
        for pos in positions:
            for s in np.unique(self.sequence[mask]).tolist():
                idx = np.flatnonzero(mask & (self.sequence == s))
                out += [(pos, idx[i : i + BLOCK]) for i in range(0, len(idx), BLOCK)]
        return out


def warm(slots: int, num_experts: int) -> range:
    """The engine's warm start: the lowest expert ids (OffloadEngine._warm)."""
    return range(min(slots, num_experts))


def cold_misses(stream: list[set[int]], slots: int, num_experts: int) -> np.ndarray:
    """1 where an access needs an expert for the first time (outside the warm slots)."""
    seen = set(warm(slots, num_experts))
    out = np.zeros(len(stream), dtype=np.int64)
    for t, needed in enumerate(stream):
        out[t] = len(needed - seen)
        seen |= needed
    return out


@dataclass
class PolicyResult:
    params: dict
    misses: dict[int, np.ndarray]  # layer position -> misses per access


@dataclass
class Sweep:
    """Every policy at one cache size on one trace's streams."""

    streams: Streams
    slots: int
    results: dict[str, PolicyResult] = field(default_factory=dict)
    reuse_model: ReuseModel | None = None
    # layer position -> misses per access: the clairvoyant cache, first uses, and the
    # next-access oracles of ORACLE_HORIZONS (references, not policies)
    belady: dict[int, np.ndarray] = field(default_factory=dict)
    cold: dict[int, np.ndarray] = field(default_factory=dict)
    oracles: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)

    def per_layer(self, make, positions: list[int]) -> dict[int, np.ndarray]:
        """Misses per access of each layer's stream under a fresh `make(stream)` policy."""
        s = self.streams
        first = warm(self.slots, s.num_experts)
        return {
            pos: np.array(
                simulate_misses(s.accesses[pos], self.slots, make(s.accesses[pos]), first)
            )
            for pos in positions
        }

    def run(self, name: str, params: dict, positions: list[int]) -> dict[int, np.ndarray]:
        s = self.streams
        return self.per_layer(
            lambda _stream: make_policy(
                name, self.slots, s.num_experts, params, reuse_model=self.reuse_model
            ),
            positions,
        )

    def tuned(self, name: str) -> dict:
        """The grid point with the fewest misses on the tuning part (first in grid order
        on a tie); {} for a policy with nothing to tune."""
        grid = GRIDS.get(name)
        if not grid:
            return {}
        positions, mask = self.streams.split(held_out=False)
        best, best_misses = {}, math.inf
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values, strict=True))
            misses = sum(int(m[mask].sum()) for m in self.run(name, params, positions).values())
            if misses < best_misses:
                best, best_misses = params, misses
        return best

    def fit(self) -> ReuseModel:
        """The learned policy's model, fitted on the tuning part's streams."""
        positions, mask = self.streams.split(held_out=False)
        keep = np.flatnonzero(mask | ~self.streams.decode)  # the tuning sequences' forwards
        tuning = [[self.streams.accesses[p][i] for i in keep] for p in positions]
        return fit_reuse_model(tuning, self.slots, self.streams.num_experts)

    def sweep(self, policies=ONLINE) -> Sweep:
        every = list(range(len(self.streams.layers)))
        if "learned" in policies:
            self.reuse_model = self.fit()
        for name in policies:
            params = self.tuned(name)
            self.results[name] = PolicyResult(params, self.run(name, params, every))
        s = self.streams
        first = warm(self.slots, s.num_experts)
        self.belady = {p: np.array(belady_misses(s.accesses[p], self.slots, first)) for p in every}
        self.cold = {p: cold_misses(s.accesses[p], self.slots, s.num_experts) for p in every}
        self.oracles = {
            h: self.per_layer(lambda stream, h=h: HorizonOracle(stream, h), every)
            for h in ORACLE_HORIZONS
        }
        return self

    def unit_sums(self, per_access: dict[int, np.ndarray], held_out: bool) -> np.ndarray:
        units = self.streams.units(*self.streams.split(held_out))
        return np.array([int(per_access[pos][idx].sum()) for pos, idx in units])

    def needed(self, held_out: bool) -> np.ndarray:
        units = self.streams.units(*self.streams.split(held_out))
        stream = self.streams.accesses
        return np.array([sum(len(stream[pos][i]) for i in idx) for pos, idx in units])


def gap_closed(lru: np.ndarray, policy: np.ndarray, belady: np.ndarray) -> dict:
    """Share of LRU's misses above Belady's that the policy avoids, per-unit paired 95% CI."""
    gap = lru - belady
    if gap.sum() <= 0:
        return {"gap_closed": math.nan, "lo": math.nan, "hi": math.nan}
    ones = np.ones(len(lru))
    r = paired_ratio(lru - policy, ones, gap, ones)
    return {"gap_closed": r.ratio, "lo": r.lo, "hi": r.hi}


def summarize(sweep: Sweep) -> dict:
    """Per policy: tuned parameters, held-out (and tuning) hits and gap closed with its
    interval; the held-out LRU, Belady and cold-floor hits; the per-unit misses."""
    out: dict = {"slots": sweep.slots, "policies": {}}
    for part, held in (("held_out", True), ("tuning", False)):
        needed = sweep.needed(held)
        lru = sweep.unit_sums(sweep.results["lru"].misses, held)
        belady = sweep.unit_sums(sweep.belady, held)
        cold = sweep.unit_sums(sweep.cold, held)
        total = int(needed.sum())
        out[part] = {
            "units": len(needed),
            "accesses": int(
                sum(len(idx) for _, idx in sweep.streams.units(*sweep.streams.split(held)))
            ),
            "needed": total,
            "lru_hits": 1 - lru.sum() / total,
            "belady_hits": 1 - belady.sum() / total,
            "cold_floor_hits": 1 - cold.sum() / total,
            "unit_misses": {"lru": lru.tolist(), "belady": belady.tolist(), "cold": cold.tolist()},
        }
        for name, result in sweep.results.items():
            misses = sweep.unit_sums(result.misses, held)
            entry = out["policies"].setdefault(name, {"params": result.params})
            entry[part] = {"hits": 1 - misses.sum() / total, **gap_closed(lru, misses, belady)}
            out[part]["unit_misses"][name] = misses.tolist()
        for h, per_access in sweep.oracles.items():
            misses = sweep.unit_sums(per_access, held)
            entry = out.setdefault("references", {}).setdefault(f"oracle_next_{h}", {})
            entry[part] = {"hits": 1 - misses.sum() / total, **gap_closed(lru, misses, belady)}
    if sweep.reuse_model is not None:
        out["reuse_model"] = {
            "coef": list(sweep.reuse_model.coef),
            "intercept": sweep.reuse_model.intercept,
            "horizon": sweep.reuse_model.horizon,
            "decay": sweep.reuse_model.decay,
        }
    return out
