"""Routing-trace files moebench reads, each into a `RoutingTrace`.

- moebench: an `.npz` with `step_tokens` (`RoutingTrace.save`, routing recordings):
  forwards, their contexts, ids [tokens, MoE layers, k].
- plain: an `.npz` with `experts`, int [tokens, layers, k] of ids in 0..E-1; optional
  `prompt`, int [tokens], which sequence each token is in (non-decreasing), and
  `num_experts`, a scalar that bounds the ids.
- vllm: a `.jsonl` of `{problem_id, layer, experts, token_idx}` lines, as the Mixtral
  HumanEval trace in ../shared/data (SOURCES.md 3a).
- policylang: a `.jsonl` of MoE-PolicyLang's recorder (github.com/emailpokora/MoE-Sched):
  a header `{model_name, num_layers, num_experts, top_k}`, then `{t, l, e, s}` lines.

A plain or jsonl trace is decode routing: each token is one forward of one token, its
context the position within its sequence. Tokens missing a layer are dropped (a trace cut
off mid-token). Any other file ends in one `UserError` line naming it and what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from moebench.engine.trace import RoutingTrace
from moebench.errors import UserError

FORMATS = ("moebench", "plain", "vllm", "policylang")


def _bad(path: Path, what: str) -> UserError:
    return UserError(f"trace file {path}: {what}")


def positions(prompt: np.ndarray) -> np.ndarray:
    """Each token's position within its sequence (`prompt` non-decreasing)."""
    index = np.arange(len(prompt))
    starts = np.r_[True, prompt[1:] != prompt[:-1]] if len(prompt) else np.array([], bool)
    return index - np.maximum.accumulate(np.where(starts, index, 0))


def decode_trace(
    ids: np.ndarray, prompt: np.ndarray, source: str, context: np.ndarray | None = None
) -> RoutingTrace:
    """One-token forwards from ids [tokens, layers, k] and each token's sequence; `context`
    defaults to the position within the sequence."""
    context = positions(prompt) if context is None else context
    _, step_prompt = np.unique(prompt, return_inverse=True)
    return RoutingTrace(
        list(range(ids.shape[1])),
        np.ones(len(ids), dtype=np.int64),
        context.astype(np.int64),
        ids.astype(np.int16),
        source,
        None,
        step_prompt.astype(np.int64),
    )


def _check_ids(path: Path, ids: np.ndarray, num_experts: int | None) -> None:
    if ids.ndim != 3 or 0 in ids.shape:
        raise _bad(path, f"experts must be a non-empty [tokens, layers, k] array, got {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise _bad(path, f"experts must be integers, got {ids.dtype}")
    if ids.min() < 0 or (num_experts is not None and ids.max() >= num_experts):
        bound = f"0..{num_experts - 1}" if num_experts is not None else ">= 0"
        raise _bad(path, f"expert ids must be in {bound}, found {ids.min()}..{ids.max()}")


def from_plain_npz(path: Path, data) -> RoutingTrace:
    ids = np.asarray(data["experts"])
    num_experts = int(data["num_experts"]) if "num_experts" in data else None
    _check_ids(path, ids, num_experts)
    prompt = np.asarray(data["prompt"]) if "prompt" in data else np.zeros(len(ids), np.int64)
    if prompt.shape != (len(ids),) or np.any(np.diff(prompt) < 0):
        raise _bad(path, f"prompt must be non-decreasing with one entry per token ({len(ids)})")
    return decode_trace(ids, prompt, f"plain npz {path.name}")


def _json_lines(path: Path):
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as err:
                    raise _bad(path, f"line {n} is not JSON ({err.msg})") from None


def _field(path: Path, n: int, rec: dict, key: str):
    if not isinstance(rec, dict) or key not in rec:
        raise _bad(path, f"line {n} has no {key!r}")
    return rec[key]


def _complete_tokens(path, tokens: dict, num_layers: int, prompt_of):
    """{token key: {layer: experts}} -> ids, sequence and context of the tokens that have
    every layer (the context counts the dropped ones too: they were decoded)."""
    every = sorted(tokens)
    context = positions(np.array([prompt_of(t) for t in every]))
    kept = [i for i, t in enumerate(every) if len(tokens[t]) == num_layers]
    if not kept:
        raise _bad(path, "no token has a routing for every layer")
    ks = {len(e) for i in kept for e in tokens[every[i]].values()}
    if len(ks) != 1:
        raise _bad(path, f"tokens route to different numbers of experts: {sorted(ks)}")
    ids = np.array([[tokens[every[i]][layer] for layer in range(num_layers)] for i in kept])
    prompt = np.array([prompt_of(every[i]) for i in kept])
    return ids, prompt, context[kept]


def from_vllm_jsonl(path: Path) -> RoutingTrace:
    """The Mixtral HumanEval trace format of ../shared/data: one line per (problem, layer,
    generated token)."""
    tokens: dict[tuple[int, int], dict[int, list[int]]] = {}
    for n, rec in _json_lines(path):
        key = (int(_field(path, n, rec, "problem_id")), int(_field(path, n, rec, "token_idx")))
        tokens.setdefault(key, {})[int(_field(path, n, rec, "layer"))] = list(
            _field(path, n, rec, "experts")
        )
    if not tokens:
        raise _bad(path, "no routing lines")
    num_layers = 1 + max(layer for t in tokens.values() for layer in t)
    ids, prompt, context = _complete_tokens(path, tokens, num_layers, lambda t: t[0])
    _check_ids(path, ids, None)
    return decode_trace(ids, prompt, f"vllm jsonl {path.name}", context)


def from_policylang_jsonl(path: Path, lines) -> RoutingTrace:
    """MoE-PolicyLang's recorder: a header, then one `{t, l, e, s}` line per token and layer
    (`s`, the router scores, is not used)."""
    n, header = next(lines)
    num_layers = int(_field(path, n, header, "num_layers"))
    num_experts = int(_field(path, n, header, "num_experts"))
    tokens: dict[int, dict[int, list[int]]] = {}
    for n, rec in lines:
        layer = int(_field(path, n, rec, "l"))
        if not 0 <= layer < num_layers:
            raise _bad(path, f"line {n}: layer {layer} outside 0..{num_layers - 1}")
        tokens.setdefault(int(_field(path, n, rec, "t")), {})[layer] = list(
            _field(path, n, rec, "e")
        )
    ids, prompt, context = _complete_tokens(path, tokens, num_layers, lambda t: 0)
    _check_ids(path, ids, num_experts)
    return decode_trace(ids, prompt, f"policylang jsonl {path.name}", context)


def load_trace(path: Path) -> RoutingTrace:
    if not path.exists():
        raise UserError(f"trace file {path} does not exist")
    if path.suffix == ".jsonl":
        lines = _json_lines(path)
        first = next(lines, None)
        if first is None:
            raise _bad(path, "is empty")
        if isinstance(first[1], dict) and "problem_id" in first[1]:
            return from_vllm_jsonl(path)
        if isinstance(first[1], dict) and {"model_name", "num_layers"} & first[1].keys():
            return from_policylang_jsonl(path, iter([first, *lines]))
        raise _bad(path, "line 1 is neither a vLLM routing line nor a MoE-PolicyLang header")
    try:
        with np.load(path, allow_pickle=False) as d:
            if "step_tokens" in d:
                return RoutingTrace.from_arrays(d)
            if "experts" in d:
                return from_plain_npz(path, d)
            raise _bad(path, "an .npz needs `experts` (plain) or `step_tokens` (moebench)")
    except (ValueError, KeyError, OSError) as err:
        raise _bad(path, f"is not a routing trace ({err})") from None
