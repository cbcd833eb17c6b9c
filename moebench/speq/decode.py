"""Speculative decoding with the INT4 draft, exact verification by the target and KV-cache
rollback. Output is token-identical to plain decoding, greedy or sampled (tests assert it).

One cycle: the draft (the target with INT4 routed experts, same KV cache) proposes k tokens,
each chosen by the shared chooser at its absolute position (for sampling: the same noise
tape the target reads); its KV entries are cut back; the target runs the last accepted token
plus the k drafts in one forward; drafts are accepted while they equal the target's own
choice at their position; the target's next token is appended; the KV cache is cut to the
accepted prefix. Every emitted token is the target's choice, so the output is the target's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from moebench.bench.sampling import GREEDY, TokenChooser
from moebench.models.loaded import LoadedModel
from moebench.speq.draft import Draft


@dataclass
class CycleLog:
    k: int
    accepted: int  # drafted tokens the target agreed with
    seconds: float = 0.0


@dataclass
class SpecResult:
    tokens: list[int]
    cycles: list[CycleLog] = field(default_factory=list)
    prefill_sec: float = 0.0
    target_calls: int = 0
    draft_calls: int = 0


def _crop_to(cache: DynamicCache, length: int) -> None:
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)  # transformers 5: a negative count removes that many tokens


def _verify_one_by_one(
    model, cache, inputs: list[int], base: int, chooser, hooks, device
) -> tuple[int, list[int]]:
    """Verify `inputs` = [last, d1..dk] with one target forward per token, stopping at the
    first draft the target disagrees with (fewer experts on the device at once than a
    grouped verify, at the price of k+1 forwards). Returns (accepted, target choices)."""
    target: list[int] = []
    for j, token in enumerate(inputs):
        if hooks:
            hooks.begin_forward(1, base + j)
        out = model(
            input_ids=torch.tensor([[token]], device=device), cache=cache, use_cache=True
        ).logits
        if hooks:
            hooks.end_forward()
        target.append(chooser.one(out[0, -1], base + 1 + j))
        if j + 1 == len(inputs) or target[j] != inputs[j + 1]:
            return j, target
    raise AssertionError("unreachable")


@torch.no_grad()
def speculative_decode(
    loaded: LoadedModel,
    draft: Draft,
    prompt_ids: torch.Tensor,
    new_tokens: int,
    choose_k: Callable[[], int],
    hooks=None,
    chooser: TokenChooser = GREEDY,
    sequential_verify: bool = False,
) -> SpecResult:
    """Speculative decoding with `chooser` (greedy by default). `hooks` (optional) gets
    begin_forward(tokens, context)/end_forward() around every target forward (the prefill and
    each verify forward), begin_cycle(k), begin_draft_forward(context)/end_draft_forward(i)
    around each draft forward, and end_cycle(k, accepted) after the verify, for the clock."""
    model = loaded.model
    cache = DynamicCache(config=model.config)
    result = SpecResult(tokens=[])
    device = model.get_input_embeddings().weight.device  # a real transport may have moved it
    prompt_ids = prompt_ids.to(device)
    if hooks:
        hooks.begin_forward(prompt_ids.shape[1], 0)
    logits = model(input_ids=prompt_ids, cache=cache, use_cache=True).logits
    if hooks:
        result.prefill_sec = hooks.end_forward()
    result.target_calls += 1
    last = chooser.one(logits[0, -1], prompt_ids.shape[1])
    result.tokens.append(last)
    while len(result.tokens) < new_tokens:
        k = max(1, min(choose_k(), new_tokens - len(result.tokens)))
        base = cache.get_seq_length()
        if hooks:
            hooks.begin_cycle(k)
        drafted, inp = [], last
        with draft.active():
            for i in range(k):
                if hooks:
                    hooks.begin_draft_forward(base + i)
                out = model(
                    input_ids=torch.tensor([[inp]], device=device), cache=cache, use_cache=True
                ).logits
                if hooks:
                    hooks.end_draft_forward(i)
                result.draft_calls += 1
                inp = chooser.one(out[0, -1], base + 1 + i)  # `last` sits at position base
                drafted.append(inp)
        _crop_to(cache, base)
        if sequential_verify:
            accepted, target = _verify_one_by_one(
                model, cache, [last, *drafted], base, chooser, hooks, device
            )
            result.target_calls += accepted + 1
        else:
            if hooks:
                hooks.begin_forward(k + 1, base)
            verify = model(
                input_ids=torch.tensor([[last, *drafted]], device=device),
                cache=cache,
                use_cache=True,
            ).logits
            if hooks:
                hooks.end_forward()
            result.target_calls += 1
            target = chooser.choose(
                verify[0], [base + 1 + j for j in range(k + 1)]
            )  # after each input
            accepted = 0
            while accepted < k and target[accepted] == drafted[accepted]:
                accepted += 1
        emitted = drafted[:accepted] + [target[accepted]]
        _crop_to(cache, base + 1 + accepted)
        seconds = hooks.end_cycle(k, accepted) if hooks else 0.0
        result.cycles.append(CycleLog(k, accepted, seconds))
        result.tokens.extend(emitted)
        last = emitted[-1]
    result.tokens = result.tokens[:new_tokens]
    return result
