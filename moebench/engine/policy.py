"""Expert cache policies for one layer's slots. Pure Python, no tensors, no clock.

A policy decides which resident expert to evict; the cache keeps the resident set. Every
policy sees the same calls (`used` on each use, `victim` when a slot is needed), so a sweep
compares policies on identical access streams. `protect` holds experts that may not leave
(those the current step still needs).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable


class CachePolicy:
    """Base: remembers uses; subclasses choose the victim.

    The engine calls, per access of the layer: `begin_access` once with every expert the
    router chose (all known before any copy starts), then per needed expert in id order
    `used`, and for a miss `victim` (when the slots are full) and `admitted`. MoE-SpeQ's
    orchestrator passes its drafted routing through `lookahead`."""

    name = "base"

    def begin_access(self, needed: set[int], time: int) -> None:  # noqa: B027 - optional hook
        """The layer's router chose `needed` at access index `time`."""

    def used(self, expert: int, time: int) -> None:  # noqa: B027 - optional hook
        """Expert `expert` was needed at access index `time`."""

    def admitted(self, expert: int, time: int) -> None:  # noqa: B027 - optional hook
        """Expert `expert` took a slot (a miss, a prefetch or the warm start)."""

    def lookahead(self, upcoming: list[set[int]]) -> None:  # noqa: B027 - optional hook
        """This layer's predicted expert sets for the coming tokens, in order (MoE-SpeQ)."""

    def victim(self, candidates: Iterable[int], time: int) -> int:
        raise NotImplementedError


class LRU(CachePolicy):
    """Evict the expert whose last use is oldest (mixtral-offloading's policy)."""

    name = "lru"

    def __init__(self):
        self.last: dict[int, int] = {}

    def used(self, expert, time):
        self.last[expert] = time

    def victim(self, candidates, time):
        return min(candidates, key=lambda e: (self.last.get(e, -1), e))


class LFU(CachePolicy):
    """Evict the least often used expert (ties: least recently used)."""

    name = "lfu"

    def __init__(self):
        self.count: dict[int, int] = defaultdict(int)
        self.last: dict[int, int] = {}

    def used(self, expert, time):
        self.count[expert] += 1
        self.last[expert] = time

    def victim(self, candidates, time):
        return min(candidates, key=lambda e: (self.count[e], self.last.get(e, -1), e))


class Static(CachePolicy):
    """Keep the most popular experts (by a given popularity count); evict anything else
    first, and among popular ones the least popular."""

    name = "static"

    def __init__(self, popularity: dict[int, float]):
        self.popularity = popularity

    def victim(self, candidates, time):
        return min(candidates, key=lambda e: (self.popularity.get(e, 0.0), e))


class Belady(CachePolicy):
    """Evict the expert whose next use lies farthest in the future (optimal for a known
    future). `future[i]` is the set of experts needed at access index i."""

    name = "belady"

    def __init__(self, future: list[set[int]]):
        self.next_use: dict[int, list[int]] = defaultdict(list)
        for i in range(len(future) - 1, -1, -1):
            for e in future[i]:
                self.next_use[e].append(i)  # descending stack: last element is the soonest

    def _next(self, expert: int, time: int) -> float:
        uses = self.next_use.get(expert, [])
        while uses and uses[-1] <= time:
            uses.pop()
        return uses[-1] if uses else float("inf")

    def victim(self, candidates, time):
        return max(candidates, key=lambda e: (self._next(e, time), e))


class HorizonOracle(Belady):
    """A reference, not a policy: knows only the next `horizon` accesses of the layer (a
    perfect predictor of the next tokens' routing) and evicts a candidate none of them
    needs, else the one needed latest; ties go to the least recently used. Belady is the
    unbounded horizon. What a perfect one-token routing predictor could gain over LRU."""

    name = "oracle"

    def __init__(self, future: list[set[int]], horizon: int):
        super().__init__(future)
        self.horizon = horizon
        self.lru = LRU()

    def used(self, expert, time):
        self.lru.used(expert, time)

    def victim(self, candidates, time):
        def seen_within(e: int) -> float:
            nxt = self._next(e, time)
            return nxt if nxt <= time + self.horizon else math.inf

        return max(candidates, key=lambda e: (seen_within(e), -self.lru.last.get(e, -1), -e))


def drafted_rank(upcoming: list[set[int]], expert: int) -> float:
    """How soon MoE-SpeQ's drafted routing `upcoming` needs the expert (inf: not drafted)."""
    return next((i for i, s in enumerate(upcoming) if expert in s), math.inf)


class Lookahead(CachePolicy):
    """MoE-SpeQ's lookahead-aware eviction (our reading of "near-optimal, lookahead-aware"):
    evict the resident expert whose next use in the Expert Lookahead Buffer is farthest or
    absent; ties go to the least recently used. `upcoming` is this layer's ELB: one set of
    predicted experts per drafted token, in order."""

    name = "lookahead"

    def __init__(self):
        self.lru = LRU()
        self.upcoming: list[set[int]] = []

    def used(self, expert, time):
        self.lru.used(expert, time)

    def lookahead(self, upcoming):
        self.upcoming = upcoming

    def victim(self, candidates, time):
        return max(
            candidates,
            key=lambda e: (drafted_rank(self.upcoming, e), -self.lru.last.get(e, -1), -e),
        )


class LayerCache:
    """One layer's resident experts under a fixed number of slots."""

    def __init__(self, slots: int, policy: CachePolicy, initial: Iterable[int] = ()):
        self.slots = slots
        self.policy = policy
        self.resident: set[int] = set()
        for e in initial:
            if len(self.resident) < slots:
                self.resident.add(e)
                policy.admitted(e, -1)

    def __contains__(self, expert: int) -> bool:
        return expert in self.resident

    def make_room(self, time: int, protect: set[int]) -> int | None:
        """Free one slot if the cache is full; return the evicted expert (None if a slot
        was free). Protected experts go only when nothing else can (a prefill that needs
        more experts than there are slots)."""
        if len(self.resident) < self.slots:
            return None
        candidates = (self.resident - protect) or self.resident
        out = self.policy.victim(candidates, time)
        self.resident.remove(out)
        return out

    def admit(self, expert: int, time: int = -1) -> None:
        assert len(self.resident) < self.slots, "make_room first"
        self.resident.add(expert)
        self.policy.admitted(expert, time)


def simulate_misses(
    accesses: list[set[int]], slots: int, policy: CachePolicy, initial: Iterable[int] = ()
) -> list[int]:
    """Misses per access of a per-layer access stream under `policy`, with no clock: the
    engine's calls in the engine's order (`OffloadEngine._make_resident`), every needed
    expert resident at once, so a sweep here counts what a replay through the engine counts."""
    cache = LayerCache(slots, policy, initial)
    misses = []
    for t, needed in enumerate(accesses):
        policy.begin_access(needed, t)
        # more experts than slots (a long prefill): the engine runs them one by one
        protect = set() if len(needed) > slots else needed
        missed = 0
        for e in sorted(needed):
            policy.used(e, t)
            if e not in cache:
                missed += 1
                cache.make_room(t, protect=protect)
                cache.admit(e, t)
        misses.append(missed)
    return misses


def simulate_hits(
    accesses: list[set[int]], slots: int, policy: CachePolicy, initial: Iterable[int] = ()
) -> float:
    """Hit fraction of a per-layer access stream under `policy` (`simulate_misses`)."""
    total = sum(len(needed) for needed in accesses)
    missed = sum(simulate_misses(accesses, slots, policy, initial))
    return 1 - missed / total if total else float("nan")


def belady_misses(accesses: list[set[int]], slots: int, initial: Iterable[int] = ()) -> list[int]:
    """Misses per access of a clairvoyant cache (Belady's MIN over this very stream) of
    `slots` experts, where an access needs all its experts at once (as a layer does): the
    fewest copies any cache of that size could have made for this routing."""
    cache = LayerCache(slots, Belady(accesses), initial)
    misses = []
    for t, needed in enumerate(accesses):
        missing = sorted(e for e in needed if e not in cache)
        for e in missing:
            cache.make_room(t, protect=set(needed))
            cache.admit(e)
        misses.append(len(missing))
    return misses
