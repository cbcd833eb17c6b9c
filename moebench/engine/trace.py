"""Routing traces: record the experts every layer used at every forward, replay them through
the engine without the model (DESIGN.md section 4: record once, replay many).

A trace is one `.npz` (no pickle): `ids` [total tokens, MoE layers, k] int16 and, per
forward step, how many tokens it fed and how long its context was. A user can record a real
checkpoint's trace on a GPU and sweep cache policies on a laptop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moebench.errors import UserError


@dataclass
class RoutingTrace:
    layers: list[int]  # decoder-layer index of each MoE layer
    step_tokens: np.ndarray  # [S] tokens fed at each forward
    step_context: np.ndarray  # [S] tokens already cached before it
    ids: np.ndarray  # [sum(step_tokens), len(layers), k]
    source: str = ""

    def steps(self):
        """Yield (tokens, context, ids [tokens, L, k]) per forward step."""
        offset = 0
        for tokens, context in zip(
            self.step_tokens.tolist(), self.step_context.tolist(), strict=True
        ):
            yield tokens, context, self.ids[offset : offset + tokens]
            offset += tokens

    def per_layer_accesses(self) -> list[tuple[int, set[int]]]:
        """The access stream the engine sees: (layer, experts needed) in program order."""
        out = []
        for _tokens, _context, ids in self.steps():
            for pos, layer in enumerate(self.layers):
                out.append((layer, set(np.unique(ids[:, pos]).tolist())))
        return out

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            layers=np.array(self.layers),
            step_tokens=self.step_tokens,
            step_context=self.step_context,
            ids=self.ids,
            source=np.array(self.source),
        )

    @classmethod
    def load(cls, path: str | Path) -> RoutingTrace:
        path = Path(path)
        if not path.exists():
            raise UserError(f"trace file {path} does not exist")
        if path.suffix == ".jsonl":
            return cls.from_vllm_jsonl(path)
        try:
            with np.load(path, allow_pickle=False) as d:
                return cls(
                    d["layers"].tolist(),
                    d["step_tokens"],
                    d["step_context"],
                    d["ids"],
                    str(d["source"]),
                )
        except (ValueError, KeyError, OSError) as err:
            raise UserError(f"trace file {path} is not a moebench routing trace ({err})") from None

    @classmethod
    def from_steps(cls, steps, layers: list[int], source: str = "") -> RoutingTrace:
        """From the decode loop's `Step`s (bench/decode.py)."""
        ids = np.concatenate(
            [np.stack([s.routing[layer].numpy() for layer in layers], axis=1) for s in steps]
        )
        return cls(
            layers,
            np.array([s.tokens_in for s in steps]),
            np.array([s.context for s in steps]),
            ids.astype(np.int16),
            source,
        )

    @classmethod
    def from_vllm_jsonl(cls, path: Path) -> RoutingTrace:
        """The Mixtral HumanEval trace format of ../shared/data (one JSON line per problem,
        layer and generated token). Tokens missing a layer are dropped; each problem's
        generated tokens become decode steps of one token."""
        by_problem: dict[int, dict[int, dict[int, list[int]]]] = {}
        with open(path) as fh:
            for line in fh:
                rec = json.loads(line)
                token = by_problem.setdefault(rec["problem_id"], {}).setdefault(
                    rec["token_idx"], {}
                )
                token[rec["layer"]] = rec["experts"]
        num_layers = 1 + max(layer for p in by_problem.values() for t in p.values() for layer in t)
        rows, contexts = [], []
        for problem in sorted(by_problem):
            for context, t in enumerate(sorted(by_problem[problem])):
                token = by_problem[problem][t]
                if len(token) == num_layers:
                    rows.append([token[layer] for layer in range(num_layers)])
                    contexts.append(context)
        ids = np.array(rows, dtype=np.int16)
        return cls(
            list(range(num_layers)),
            np.ones(len(rows), dtype=np.int64),
            np.array(contexts),
            ids,
            f"vllm jsonl {path.name}",
        )


def replay(trace: RoutingTrace, engine) -> list[float]:
    """Drive `engine` with the trace's routing, as the model would; return step seconds."""
    step_sec = []
    for tokens, context, ids in trace.steps():
        engine.begin_forward(tokens, context)
        for pos, layer in enumerate(trace.layers):
            engine.on_moe_layer(layer, ids[:, pos])
        step_sec.append(engine.end_forward())
    return step_sec


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
