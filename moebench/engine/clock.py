"""The virtual clock's compute stream: a deterministic discrete-event model of one GPU.

A kernel starts when the stream is free and its dependency (an expert's copy landing, from
engine/link.py, the copy stream) is done; time never goes backwards. Gaps spent waiting for a
copy are stalls, and are counted.
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
    """The in-order compute stream; events are plain floats (the time an operation ends)."""

    compute_free_at: float = 0.0
    stall_sec: float = 0.0
    compute_busy_sec: float = 0.0
    host_sec: float = 0.0  # the device idle while the host reads routing back and decides
    expert_busy_sec: float = 0.0  # of compute_busy_sec, routed-expert kernels (target and draft)
    keep_spans: bool = False
    spans: list[Span] = field(default_factory=list)

    def compute(self, name: str, seconds: float, after: float = 0.0, expert: bool = False) -> float:
        """Run a kernel once the compute stream is free and `after` has passed; return its end."""
        start = max(self.compute_free_at, after)
        self.stall_sec += start - self.compute_free_at
        end = start + seconds
        self.compute_free_at = end
        self.compute_busy_sec += seconds
        if expert:
            self.expert_busy_sec += seconds
        if self.keep_spans:
            self.spans.append(Span("compute", name, start, end))
        return end

    def host(self, name: str, seconds: float) -> None:
        """The host works while the device waits: the router's choice is read back (a sync that
        drains the stream) and the engine decides, so nothing is queued behind it yet."""
        if seconds <= 0:
            return
        start = self.compute_free_at
        self.compute_free_at = start + seconds
        self.host_sec += seconds
        if self.keep_spans:
            self.spans.append(Span("compute", name, start, self.compute_free_at))

    def block_until(self, t: float) -> None:
        """The compute stream can do nothing until `t` (a copy that does not overlap compute)."""
        if t > self.compute_free_at:
            self.stall_sec += t - self.compute_free_at
            self.compute_free_at = t

    @property
    def now(self) -> float:
        """Time at which everything issued so far on the compute stream is done."""
        return self.compute_free_at


def chrome_trace(spans: list[Span], copies) -> dict:
    """Both streams as a Chrome trace (open in Perfetto or chrome://tracing); times in us."""
    events = [
        {"name": "compute stream", "ph": "M", "pid": 0, "tid": 0, "args": {"name": "compute"}},
        {"name": "thread_name", "ph": "M", "pid": 0, "tid": 1, "args": {"name": "h2d copy"}},
    ]
    events[0]["name"] = "thread_name"
    for span in spans:
        events.append(
            {
                "name": span.name,
                "ph": "X",
                "pid": 0,
                "tid": 0,
                "ts": span.start * 1e6,
                "dur": (span.end - span.start) * 1e6,
            }
        )
    for c in copies:
        events.append(
            {
                "name": f"{c.kind} {c.key[0]}.{c.key[1]}",
                "ph": "X",
                "pid": 0,
                "tid": 1,
                "ts": c.start * 1e6,
                "dur": (c.end - c.start) * 1e6,
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}
