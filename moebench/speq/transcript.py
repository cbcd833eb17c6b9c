"""MoE-SpeQ's cycle transcript: record a live run once, replay it for every run that would
compute the same thing.

With a draft that does not depend on the cache (INT4, INT2, int4_cached), what the models
compute in a run is decided by the point (model, weights, prompts, decoding, seed), the
draft (quantizer, bits), the verify mode and the k the governor picks each cycle: the KV
cache is filled by the same chunks in the same order, so every forward's routing, every
drafted token and every acceptance is the same bit for bit. Budgets, cache policies,
prefetch modes, governors and hardware profiles change only what the engine charges. So a
live run writes its transcript (every forward's size, position and routing, each cycle's k
and acceptance, the emitted tokens) and a later run drives its engine from it, making the
same hook and engine calls in the same order as a live run; the moment its governor picks
another k than the transcript holds, the transcript does not apply (`TranscriptMismatch`)
and the run decodes live, writing a transcript of its own k schedule beside the others.

A transcript is keyed like a routing recording and stored beside them, named by its k
schedule (recordings.save_transcript).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moebench.engine.trace import RoutingTrace
from moebench.speq.decode import CycleLog


class TranscriptMismatch(Exception):
    """The replaying run asked for a forward the transcript does not hold (another k)."""


@dataclass
class Forward:
    """One model forward: `tokens` after `context` positions, a draft or a target forward,
    and its routing per MoE layer ([tokens, layers, k])."""

    tokens: int
    context: int
    draft: bool
    ids: np.ndarray


@dataclass
class SequenceTranscript:
    forwards: list[Forward] = field(default_factory=list)
    cycles: list[tuple[int, int]] = field(default_factory=list)  # (k, accepted)
    tokens: list[int] = field(default_factory=list)


def target_trace(
    sequences: list[SequenceTranscript], layers: list[int], source: str
) -> RoutingTrace:
    """The target's forwards (the prefill and every verify; no draft forward) as a routing
    trace, for `record_trace`: a live run and a replay of its transcript write the same."""
    steps = [(j, f) for j, s in enumerate(sequences) for f in s.forwards if not f.draft]
    return RoutingTrace(
        layers,
        np.array([f.tokens for _, f in steps]),
        np.array([f.context for _, f in steps]),
        np.concatenate([f.ids for _, f in steps]).astype(np.int16),
        source,
        None,
        np.array([j for j, _ in steps]),
    )


@dataclass
class Transcript:
    key: str
    layers: list[int]  # the MoE layers, in the order every forward calls them
    sequences: list[SequenceTranscript]
    model: dict[str, Any]  # the record's model identity
    source: str  # run key of the live run that wrote it

    def target_trace(self, source: str) -> RoutingTrace:
        """The target's forwards as a routing trace (`target_trace`)."""
        return target_trace(self.sequences, self.layers, source)

    def schedule(self) -> str:
        """A digest of every cycle's k: transcripts of one point differ only in it."""
        ks = [[k for k, _ in s.cycles] for s in self.sequences]
        return hashlib.sha256(json.dumps(ks).encode()).hexdigest()[:12]


class TranscriptRecorder:
    """Collects a live run's transcript from MoE-SpeQ's decode-loop hooks and the engine's
    per-layer routing log."""

    def __init__(self, engine):
        self.engine = engine
        engine.layer_log = []
        self.layers: list[int] | None = None
        self.sequences: list[SequenceTranscript] = []
        self._open: tuple[int, int, bool] | None = None

    def begin_sequence(self) -> None:
        self.sequences.append(SequenceTranscript())

    def begin_forward(self, tokens: int, context: int, draft: bool) -> None:
        self._open = (tokens, context, draft)
        self.engine.layer_log.clear()

    def end_forward(self) -> None:
        tokens, context, draft = self._open
        layers = [layer for layer, _ in self.engine.layer_log]
        if self.layers is None:
            self.layers = layers
        if layers != self.layers:
            raise AssertionError(f"a forward called MoE layers {layers}, not {self.layers}")
        ids = np.stack([ids for _, ids in self.engine.layer_log], axis=1)
        self.sequences[-1].forwards.append(Forward(tokens, context, draft, ids))
        self._open = None

    def end_cycle(self, k: int, accepted: int) -> None:
        self.sequences[-1].cycles.append((k, accepted))

    def end_sequence(self, tokens: list[int]) -> None:
        self.sequences[-1].tokens = list(tokens)

    def transcript(self, key: str, model: dict, source: str) -> Transcript:
        return Transcript(key, self.layers or [], self.sequences, model, source)

    def target_trace(self, source: str) -> RoutingTrace:
        """The live run's target forwards (`target_trace`), without making a Transcript."""
        return target_trace(self.sequences, self.layers or [], source)


def replay_sequence(
    seq: SequenceTranscript,
    layers: list[int],
    hooks,
    engine,
    choose_k: Callable[[], int],
    new_tokens: int,
    sequential_verify: bool,
) -> tuple[list[CycleLog], float]:
    """Drive `hooks` (the method's decode-loop hooks) and `engine` as speculative_decode
    would with the models, reading every forward's routing from `seq`: (cycles, prefill
    seconds). Raises TranscriptMismatch when the governor picks another k."""
    forwards = iter(seq.forwards)

    def forward(tokens: int, context: int, draft: bool) -> None:
        f = next(forwards, None)
        if f is None or (f.tokens, f.context, f.draft) != (tokens, context, draft):
            raise TranscriptMismatch(f"no {tokens}-token forward at {context} (draft={draft})")
        for pos, layer in enumerate(layers):
            engine.on_moe_layer(layer, f.ids[:, pos])

    prompt = seq.forwards[0].tokens
    hooks.begin_forward(prompt, 0)
    forward(prompt, 0, False)
    prefill_sec = hooks.end_forward()
    emitted, cycles = 1, []
    for recorded_k, accepted in seq.cycles:
        k = max(1, min(choose_k(), new_tokens - emitted))
        if k != recorded_k:
            raise TranscriptMismatch(f"the governor chose k = {k}, the transcript {recorded_k}")
        base = prompt + emitted - 1  # the KV cache holds all but the last emitted token
        hooks.begin_cycle(k)
        for i in range(k):
            hooks.begin_draft_forward(base + i)
            forward(1, base + i, True)
            hooks.end_draft_forward(i)
        one_by_one = [(1, base + j) for j in range(accepted + 1)]
        for tokens, context in one_by_one if sequential_verify else [(k + 1, base)]:
            hooks.begin_forward(tokens, context)
            forward(tokens, context, False)
            hooks.end_forward()
        cycles.append(CycleLog(k, accepted, hooks.end_cycle(k, accepted)))
        emitted += accepted + 1
    return cycles, prefill_sec
