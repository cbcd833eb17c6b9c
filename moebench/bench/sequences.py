"""The sequences a decode run is made of, and what each one cost: the samples that a paired
interval between two methods resamples (bench/paired.py).

A run decodes every prompt once per noise tape (once when greedy). Two methods run on the same
workload and seed decode the same (prompt, tape) sequences in the same order, so their
per-sequence samples pair up one to one and the pairing removes prompt difficulty and tape
luck from a ratio. The engine's cache carries over from one sequence to the next (a warm
server, as the paper measures), so sequences are not fully independent samples; the interval
treats them as such, which is the usual approximation.
"""

from __future__ import annotations

from typing import Any

# The per-sequence samples a record keeps under raw.per_sequence, each with its unit.
SAMPLE_KEYS = (
    "prompt",  # index into the workload's prompts
    "tape",  # noise tape (0 when greedy)
    "ttft_sec",  # the prefill's seconds
    "decode_sec",  # seconds of every decode step after the prefill
    "decode_tokens",  # tokens emitted after the prefill's
    "h2d_bytes",  # host-to-device bytes moved, prefill included
    "expert_hits",  # needed experts already resident, target decode forwards
    "expert_needed",  # needed experts, target decode forwards
    "draft_accepted",  # MoE-SpeQ: drafted tokens the target accepted
    "draft_proposed",  # MoE-SpeQ: drafted tokens
)


def sequence_plan(workload) -> list[tuple[int, int]]:
    """(prompt, tape) of each sequence, in decode order: every prompt on tape 0, then on tape 1,
    ... (a one-tape workload decodes its prompts as it always did)."""
    return [(i, t) for t in range(workload.tapes_used) for i in range(workload.num_prompts)]


class SequenceLog:
    """Collects a run's per-sequence samples from the method's engine counters; call `close`
    after each sequence, in `sequence_plan` order."""

    def __init__(self, method, plan: list[tuple[int, int]]):
        self.method = method
        self.plan = plan
        self.samples: dict[str, list[float]] = {key: [] for key in SAMPLE_KEYS}
        self._steps_seen, self._bytes_seen, self._cycles_seen = self._marks()

    def _marks(self) -> tuple[int, float, int]:
        stats = self.method.engine.stats
        return len(stats.steps), stats.h2d_bytes, len(getattr(self.method, "cycles", []))

    def close(self, step_sec: list[float]) -> None:
        """One sequence is done; `step_sec` are its emitted tokens' seconds, prefill first."""
        prompt, tape = self.plan[len(self.samples["prompt"])]
        stats = self.method.engine.stats
        steps = stats.steps[self._steps_seen :]
        target = [s for s in steps if not s.prefill and not s.draft]
        cycles = getattr(self.method, "cycles", [])[self._cycles_seen :]
        values = {
            "prompt": prompt,
            "tape": tape,
            "ttft_sec": step_sec[0],
            "decode_sec": float(sum(step_sec[1:])),
            "decode_tokens": len(step_sec) - 1,
            "h2d_bytes": stats.h2d_bytes - self._bytes_seen,
            "expert_hits": sum(s.hits for s in target),
            "expert_needed": sum(s.needed for s in target),
            "draft_accepted": sum(c.accepted for c in cycles),
            "draft_proposed": sum(c.k for c in cycles),
        }
        for key, value in values.items():
            self.samples[key].append(value)
        self._steps_seen, self._bytes_seen, self._cycles_seen = self._marks()

    def as_raw(self) -> dict[str, Any]:
        """The samples as the record keeps them (raw.per_sequence); MoE-SpeQ's keys only for a
        method that drafts."""
        if not hasattr(self.method, "cycles"):
            return {k: v for k, v in self.samples.items() if not k.startswith("draft_")}
        return dict(self.samples)
