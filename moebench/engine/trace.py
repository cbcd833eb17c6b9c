"""Routing traces: record the experts every layer used at every forward, replay them through
the engine without the model (DESIGN.md section 4: record once, replay many).

A trace is one `.npz` (no pickle): `ids` [total tokens, MoE layers, k] int16 and, per
forward step, how many tokens it fed and how long its context was. A user can record a real
checkpoint's trace on a GPU and sweep cache policies on a laptop. A run's routing recording
(recordings.py) adds which prompt each step belongs to and each layer's next-layer guess, so
next_layer_prefetch replays too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class RoutingTrace:
    layers: list[int]  # decoder-layer index of each MoE layer
    step_tokens: np.ndarray  # [S] tokens fed at each forward
    step_context: np.ndarray  # [S] tokens already cached before it
    ids: np.ndarray  # [sum(step_tokens), len(layers), k]
    source: str = ""
    # [sum(step_tokens), len(layers), k]: the next MoE layer's guess from each layer's input
    # (-1 where there is none: the last MoE layer); None when not recorded
    guess_ids: np.ndarray | None = None
    step_prompt: np.ndarray | None = None  # [S] which prompt each forward belongs to

    def steps(self):
        """Yield (tokens, context, ids [tokens, L, k]) per forward step."""
        for tokens, context, ids, _guess in self.steps_with_guesses():
            yield tokens, context, ids

    def steps_with_guesses(self):
        """Yield (tokens, context, ids, guesses or None) per forward step."""
        offset = 0
        for tokens, context in zip(
            self.step_tokens.tolist(), self.step_context.tolist(), strict=True
        ):
            rows = slice(offset, offset + tokens)
            guess = None if self.guess_ids is None else self.guess_ids[rows]
            yield tokens, context, self.ids[rows], guess
            offset += tokens

    def per_layer_accesses(self) -> list[tuple[int, set[int]]]:
        """The access stream the engine sees: (layer, experts needed) in program order."""
        out = []
        for _tokens, _context, ids in self.steps():
            for pos, layer in enumerate(self.layers):
                out.append((layer, set(np.unique(ids[:, pos]).tolist())))
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """The trace as named arrays (what `save` writes; a recording adds its own)."""
        out = {
            "layers": np.array(self.layers),
            "step_tokens": self.step_tokens,
            "step_context": self.step_context,
            "ids": self.ids,
            "source": np.array(self.source),
        }
        if self.guess_ids is not None:
            out["guess_ids"] = self.guess_ids
        if self.step_prompt is not None:
            out["step_prompt"] = self.step_prompt
        return out

    @classmethod
    def from_arrays(cls, d) -> RoutingTrace:
        return cls(
            d["layers"].tolist(),
            d["step_tokens"],
            d["step_context"],
            d["ids"],
            str(d["source"]),
            d["guess_ids"] if "guess_ids" in d else None,
            d["step_prompt"] if "step_prompt" in d else None,
        )

    def routing_only(self) -> RoutingTrace:
        """The routing alone (no guesses or prompt index), as workload.prompts=trace reads it."""
        return RoutingTrace(self.layers, self.step_tokens, self.step_context, self.ids, self.source)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **self.arrays())

    def prompt_of_step(self) -> np.ndarray:
        """[S] which sequence each forward belongs to: recorded, else a new sequence starts
        wherever the context is empty."""
        if self.step_prompt is not None:
            return np.asarray(self.step_prompt)
        return np.maximum(np.cumsum(np.asarray(self.step_context) == 0) - 1, 0)

    @classmethod
    def from_steps(
        cls, steps, layers: list[int], source: str = "", step_prompt: list[int] | None = None
    ) -> RoutingTrace:
        """From the decode loop's `Step`s (bench/decode.py), with their next-layer guesses
        when every step recorded them."""

        def stacked(per_step: list[dict]) -> np.ndarray:  # [tokens, layers, k] int16
            return np.concatenate(
                [np.stack([d[layer].numpy() for layer in layers], axis=1) for d in per_step]
            ).astype(np.int16)

        ids = stacked([s.routing for s in steps])
        recorded = steps and all(s.guesses is not None for s in steps)
        guesses = stacked([s.guesses for s in steps]) if recorded else None
        return cls(
            layers,
            np.array([s.tokens_in for s in steps]),
            np.array([s.context for s in steps]),
            ids,
            source,
            guesses,
            None if step_prompt is None else np.array(step_prompt),
        )


def replay(trace: RoutingTrace, engine) -> list[float]:
    """Drive `engine` with the trace's routing, as the model would; return step seconds.
    Where the trace holds next-layer guesses, each layer's goes where the model would pass
    its hidden state, so the predictor reads the recorded guess (`recorded_guess`)."""
    step_sec = []
    for tokens, context, ids, guesses in trace.steps_with_guesses():
        engine.begin_forward(tokens, context)
        for pos, layer in enumerate(trace.layers):
            engine.on_moe_layer(layer, ids[:, pos], None if guesses is None else guesses[:, pos])
        step_sec.append(engine.end_forward())
    return step_sec


def recorded_guess(guess: np.ndarray) -> set[int]:
    """A recorded next-layer guess [T, k] as the predictor's set (-1 marks no guess)."""
    return set(np.unique(guess[guess >= 0]).tolist())


def belady_futures(trace: RoutingTrace) -> dict[int, list[set[int]]]:
    """Per-layer future for Belady, indexed by the engine's global access counter."""
    accesses = trace.per_layer_accesses()
    futures = {layer: [set() for _ in accesses] for layer in trace.layers}
    for i, (layer, needed) in enumerate(accesses):
        futures[layer][i] = needed
    return futures


def popularity(trace: RoutingTrace) -> dict[int, dict[int, float]]:
    """How often each expert is used per layer (for the static policy)."""
    out: dict[int, dict[int, float]] = {}
    for pos, layer in enumerate(trace.layers):
        counts = np.bincount(trace.ids[:, pos].ravel().astype(np.int64))
        out[layer] = {e: float(c) for e, c in enumerate(counts)}
    return out
