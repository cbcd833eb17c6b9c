"""The virtual clock: a deterministic discrete-event model of one GPU's streams.

There is one compute stream and one host-to-device copy stream. An operation starts when
its stream is free and its dependencies are done; time never goes backwards. Gaps on the
compute stream spent waiting for a copy are stalls, and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Span:
    """One operation on one stream (kept for timelines)."""

    stream: str
    name: str
    start: float
    end: float


@dataclass
class VirtualClock:
    """Two in-order streams with events as plain floats (the time an operation ends)."""

    compute_free_at: float = 0.0
    copy_free_at: float = 0.0
    stall_sec: float = 0.0
    compute_busy_sec: float = 0.0
    copy_busy_sec: float = 0.0
    keep_spans: bool = False
    spans: list[Span] = field(default_factory=list)

    def compute(self, name: str, seconds: float, after: float = 0.0) -> float:
        """Run a kernel once the compute stream is free and `after` has passed; return its end."""
        start = max(self.compute_free_at, after)
        self.stall_sec += start - self.compute_free_at
        return self._advance("compute", name, start, seconds)

    def copy(self, name: str, seconds: float, after: float = 0.0) -> float:
        """Queue a host-to-device copy on the copy stream; return the time it lands."""
        start = max(self.copy_free_at, after)
        return self._advance("copy", name, start, seconds)

    def _advance(self, stream: str, name: str, start: float, seconds: float) -> float:
        end = start + seconds
        if stream == "compute":
            self.compute_free_at = end
            self.compute_busy_sec += seconds
        else:
            self.copy_free_at = end
            self.copy_busy_sec += seconds
        if self.keep_spans:
            self.spans.append(Span(stream, name, start, end))
        return end

    @property
    def now(self) -> float:
        """Time at which everything issued so far on the compute stream is done."""
        return self.compute_free_at


def chrome_trace(spans: list[Span], copies) -> dict:
    """Both streams as a Chrome trace (open in Perfetto or chrome://tracing); times in us."""
    events = [{"name": "compute stream", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "compute"}},
              {"name": "thread_name", "ph": "M", "pid": 0, "tid": 1, "args": {"name": "h2d copy"}}]
    events[0]["name"] = "thread_name"
    for span in spans:
        events.append({"name": span.name, "ph": "X", "pid": 0, "tid": 0,
                       "ts": span.start * 1e6, "dur": (span.end - span.start) * 1e6})
    for c in copies:
        events.append({"name": f"{c.kind} {c.key[0]}.{c.key[1]}", "ph": "X", "pid": 0, "tid": 1,
                       "ts": c.start * 1e6, "dur": (c.end - c.start) * 1e6})
    return {"traceEvents": events, "displayTimeUnit": "ms"}
