"""The host-to-device link as a queue of copies on one copy stream, where an on-demand load
goes ahead of every prefetch that has not started yet (DESIGN.md section 4).

Times are virtual seconds. A copy is `latency + bytes / bandwidth` long (costs.py). Pushing
a queued prefetch back changes when its expert lands; nothing has consumed that time yet,
because compute only reads landing times of copies that started before "now".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Copy:
    key: tuple[int, int]  # (layer, expert)
    kind: str  # "demand" | "prefetch"
    issued: float
    seconds: float
    not_before: float  # e.g. the slot's previous occupant finishes its compute
    start: float = 0.0
    end: float = 0.0


class Link:
    """FIFO copy stream with demand-over-prefetch priority for copies not yet started."""

    def __init__(self, keep_history: bool = False):
        self.copies: list[Copy] = []  # in stream order
        self.busy_sec = 0.0
        self.keep_history = keep_history
        self.history: list[Copy] = []  # every copy ever queued (for timelines)

    def _free_at(self, upto: int) -> float:
        return self.copies[upto - 1].end if upto else 0.0

    def _reschedule(self, first: int) -> None:
        """Recompute start/end of copies from index `first` on, keeping their order."""
        for i in range(first, len(self.copies)):
            c = self.copies[i]
            c.start = max(self._free_at(i), c.issued, c.not_before)
            c.end = c.start + c.seconds

    def prefetch(self, key, issued: float, seconds: float, not_before: float = 0.0) -> Copy:
        copy = Copy(key, "prefetch", issued, seconds, not_before)
        self._remember(copy)
        self.copies.append(copy)
        self._reschedule(len(self.copies) - 1)
        self.busy_sec += seconds
        return copy

    def demand(self, key, issued: float, seconds: float, not_before: float = 0.0) -> Copy:
        """Queue a load ahead of every prefetch that has not started by `issued`."""
        copy = Copy(key, "demand", issued, seconds, not_before)
        self._remember(copy)
        pos = len(self.copies)
        while (
            pos > 0
            and self.copies[pos - 1].kind == "prefetch"
            and self.copies[pos - 1].start > issued
        ):
            pos -= 1
        self.copies.insert(pos, copy)
        self._reschedule(pos)
        self.busy_sec += seconds
        return copy

    def _remember(self, copy: Copy) -> None:
        if self.keep_history:
            self.history.append(copy)

    @property
    def idle_at(self) -> float:
        return self.copies[-1].end if self.copies else 0.0

    def compact(self, before: float) -> None:
        """Forget copies that ended before `before` (keeps the queue short on long runs)."""
        keep = next((i for i, c in enumerate(self.copies) if c.end >= before), len(self.copies))
        if keep > 1:
            del self.copies[: keep - 1]
