"""Replacement policies from the caching literature, fitted to one layer's expert slots.

Each keeps its own bookkeeping from the hooks of `policy.CachePolicy` and picks its victim
only among the candidates it is given (the engine protects the experts the step still
needs), so none can change what the model computes: they decide only what stays resident.
A cache of experts is tiny (a few slots of 8 to 160 experts), so each structure below is
kept at the size the original algorithm prescribes, rounded to at least one slot.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque

from moebench.engine.policy import CachePolicy


def _oldest(order, candidates) -> int | None:
    """The first key of `order` (oldest first) that is a candidate."""
    return next((e for e in order if e in candidates), None)


class LFUDA(CachePolicy):
    """LFU with dynamic aging: priority = capped, decayed use count + the cache age L, where
    L is the priority of the last victim, so a once-hot expert cannot stay forever. `decay`
    (per access of the layer) forgets old counts; `cap` bounds a count (1 + cap uses)."""

    name = "lfuda"

    def __init__(self, decay: float = 0.9, cap: float = 4.0):
        self.decay, self.cap = decay, cap
        self.count: dict[int, float] = {}
        self.priority: dict[int, float] = {}
        self.last: dict[int, int] = {}
        self.age = 0.0

    def begin_access(self, needed, time):
        for e in self.count:
            self.count[e] *= self.decay

    def used(self, expert, time):
        self.count[expert] = min(self.count.get(expert, 0.0) + 1.0, self.cap)
        self.priority[expert] = self.count[expert] + self.age
        self.last[expert] = time

    def victim(self, candidates, time):
        out = min(
            candidates, key=lambda e: (self.priority.get(e, self.age), self.last.get(e, -1), e)
        )
        self.age = self.priority.pop(out, self.age)
        self.count.pop(out, None)
        return out


class S3FIFO(CachePolicy):
    """S3-FIFO (Yang et al. 2023): a small FIFO takes new experts; one reused while there
    moves to the main FIFO, one not reused leaves and is remembered in a ghost FIFO, and a
    miss on a ghost enters main directly. Main evicts FIFO but reinserts what was reused."""

    name = "s3fifo"

    def __init__(self, slots: int, small_frac: float = 0.1):
        self.small_size = max(1, round(small_frac * slots))
        self.small: deque[int] = deque()
        self.main: deque[int] = deque()
        self.ghost: deque[int] = deque(maxlen=max(1, slots))  # the oldest falls out
        self.freq: dict[int, int] = {}
        self.enter_main: set[int] = set()

    def used(self, expert, time):
        if expert in self.small or expert in self.main:
            self.freq[expert] = min(self.freq.get(expert, 0) + 1, 3)
        elif expert in self.ghost:
            self.ghost.remove(expert)
            self.enter_main.add(expert)

    def admitted(self, expert, time):
        self.freq[expert] = 0
        if expert in self.enter_main:
            self.enter_main.discard(expert)
            self.main.append(expert)
        else:
            self.small.append(expert)

    def victim(self, candidates, time):
        candidates = set(candidates)
        while True:
            e = _oldest(self.small, candidates)
            if len(self.small) >= self.small_size and e is not None:
                self.small.remove(e)
                if self.freq.get(e, 0) > 0:
                    self.freq[e] = 0
                    self.main.append(e)
                    continue
                self.ghost.append(e)
                return e
            e = _oldest(self.main, candidates)
            if e is None:  # every main candidate is in small: take small's oldest
                e = _oldest(self.small, candidates)
                self.small.remove(e)
                self.ghost.append(e)
                return e
            self.main.remove(e)
            if self.freq.get(e, 0) > 0:
                self.freq[e] -= 1
                self.main.append(e)
                continue
            return e


class ARC(CachePolicy):
    """Adaptive Replacement Cache (Megiddo & Modha 2003): residents seen once (T1) and more
    than once (T2), with ghosts of each (B1, B2); a miss on a ghost moves the target size p
    of T1 toward the list that would have hit."""

    name = "arc"

    def __init__(self, slots: int):
        self.c = max(1, slots)
        self.p = 0.0
        self.t1: OrderedDict[int, None] = OrderedDict()
        self.t2: OrderedDict[int, None] = OrderedDict()
        self.b1: OrderedDict[int, None] = OrderedDict()
        self.b2: OrderedDict[int, None] = OrderedDict()
        self.incoming_from_b2 = False
        self.into_t2: set[int] = set()

    def used(self, expert, time):
        self.incoming_from_b2 = False
        if expert in self.t1:
            del self.t1[expert]
            self.t2[expert] = None
        elif expert in self.t2:
            self.t2.move_to_end(expert)
        elif expert in self.b1:
            self.p = min(self.c, self.p + max(len(self.b2) / len(self.b1), 1.0))
            del self.b1[expert]
            self.into_t2.add(expert)
        elif expert in self.b2:
            self.p = max(0.0, self.p - max(len(self.b1) / len(self.b2), 1.0))
            del self.b2[expert]
            self.into_t2.add(expert)
            self.incoming_from_b2 = True
        else:  # a new expert: keep the ghost lists within the directory's 2c entries
            if len(self.t1) + len(self.b1) >= self.c and self.b1:
                self.b1.popitem(last=False)
            elif (
                len(self.t1) + len(self.t2) + len(self.b1) + len(self.b2) >= 2 * self.c and self.b2
            ):
                self.b2.popitem(last=False)

    def admitted(self, expert, time):
        if expert in self.into_t2:
            self.into_t2.discard(expert)
            self.t2[expert] = None
        else:
            self.t1[expert] = None

    def victim(self, candidates, time):
        candidates = set(candidates)
        from_t1 = _oldest(self.t1, candidates)
        from_t2 = _oldest(self.t2, candidates)
        prefer_t1 = len(self.t1) > self.p or (self.incoming_from_b2 and len(self.t1) == self.p)
        if from_t1 is not None and (prefer_t1 or from_t2 is None):
            del self.t1[from_t1]
            self.b1[from_t1] = None
            return from_t1
        del self.t2[from_t2]
        self.b2[from_t2] = None
        return from_t2


class LIRS(CachePolicy):
    """LIRS (Jiang & Zhang 2002): experts with a short inter-reference recency (LIR) keep
    most slots; the rest (HIR, `hir_frac` of the slots, at least one) churn through a FIFO
    queue. A HIR expert reused while still in the recency stack becomes LIR and the stack's
    oldest LIR expert becomes HIR."""

    name = "lirs"

    def __init__(self, slots: int, hir_frac: float = 0.25):
        self.lir_size = max(1, slots - max(1, round(hir_frac * slots)))
        self.stack: OrderedDict[int, None] = OrderedDict()  # oldest first
        self.queue: OrderedDict[int, None] = OrderedDict()  # resident HIR, oldest first
        self.lir: set[int] = set()
        self.becomes_lir: set[int] = set()

    def _prune(self) -> None:
        while self.stack and next(iter(self.stack)) not in self.lir:
            self.stack.popitem(last=False)

    def _demote_oldest_lir(self) -> None:
        oldest = next(iter(self.stack))
        self.lir.discard(oldest)
        del self.stack[oldest]
        self.queue[oldest] = None
        self._prune()

    def _touch(self, expert: int) -> None:
        self.stack.pop(expert, None)
        self.stack[expert] = None

    def used(self, expert, time):
        if expert in self.lir:
            self._touch(expert)
            self._prune()
        elif expert in self.queue:  # a resident HIR expert
            if expert in self.stack:
                del self.queue[expert]
                self.lir.add(expert)
                self._touch(expert)
                self._demote_oldest_lir()
            else:
                self._touch(expert)
                self.queue.move_to_end(expert)
        else:  # a miss: LIR if its last use is still in the stack (or LIR is not full yet)
            if expert in self.stack or len(self.lir) < self.lir_size:
                self.becomes_lir.add(expert)
            self._touch(expert)

    def admitted(self, expert, time):
        if expert in self.becomes_lir or (
            expert not in self.stack and len(self.lir) < self.lir_size
        ):
            self.becomes_lir.discard(expert)
            self.lir.add(expert)
            self._touch(expert)
            if len(self.lir) > self.lir_size:
                self._demote_oldest_lir()
        else:
            self.queue[expert] = None
            self.stack.setdefault(expert, None)

    def victim(self, candidates, time):
        candidates = set(candidates)
        out = _oldest(self.queue, candidates)
        if out is not None:
            del self.queue[out]  # stays in the stack as a non-resident HIR entry
            return out
        out = _oldest(self.stack, candidates & self.lir)  # every HIR slot is protected
        self.lir.discard(out)
        del self.stack[out]
        self._prune()
        return out


class LFRU(CachePolicy):
    """LFRU (Bilal & Kang 2014): a privileged partition (`privileged_frac` of the slots,
    LRU) and an unprivileged one (LFU). New experts enter unprivileged; one reused there is
    promoted, pushing the privileged partition's LRU expert down."""

    name = "lfru"

    def __init__(self, slots: int, privileged_frac: float = 0.5):
        self.privileged_size = max(1, min(slots - 1, round(privileged_frac * slots)))
        self.privileged: OrderedDict[int, None] = OrderedDict()  # LRU first
        self.unprivileged: set[int] = set()
        self.count: dict[int, int] = {}
        self.last: dict[int, int] = {}

    def used(self, expert, time):
        self.count[expert] = self.count.get(expert, 0) + 1
        self.last[expert] = time
        if expert in self.privileged:
            self.privileged.move_to_end(expert)
        elif expert in self.unprivileged:
            self.unprivileged.discard(expert)
            self.privileged[expert] = None
            if len(self.privileged) > self.privileged_size:
                down, _ = self.privileged.popitem(last=False)
                self.unprivileged.add(down)

    def admitted(self, expert, time):
        self.unprivileged.add(expert)

    def victim(self, candidates, time):
        pool = [e for e in candidates if e not in self.privileged]
        if pool:
            out = min(pool, key=lambda e: (self.count.get(e, 0), self.last.get(e, -1), e))
            self.unprivileged.discard(out)
        else:
            out = _oldest(self.privileged, set(candidates))
            del self.privileged[out]
        self.count.pop(out, None)
        return out


class LeastStale(CachePolicy):
    """Least-stale (our reading of SpecMD, arXiv 2602.03921): an expert is stale when the
    layer's last `window` accesses did not use it; evict the stalest (fewest uses in the
    window), ties to the least recently used. It keeps an expert that recurs every few
    tokens over one used once just now, where LRU keeps the latter."""

    name = "least_stale"

    def __init__(self, window: int = 8):
        self.window = window
        self.recent: deque[set[int]] = deque()
        self.uses: Counter[int] = Counter()  # uses within the window
        self.last: dict[int, int] = {}

    def begin_access(self, needed, time):
        self.recent.append(set(needed))
        self.uses.update(needed)
        if len(self.recent) > self.window:
            self.uses.subtract(self.recent.popleft())

    def used(self, expert, time):
        self.last[expert] = time

    def victim(self, candidates, time):
        return min(candidates, key=lambda e: (self.uses[e], self.last.get(e, -1), e))
