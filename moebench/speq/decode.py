"""Speculative greedy decoding with the INT4 draft, greedy verification by the target and
KV-cache rollback. Output is token-identical to plain greedy decoding (tests assert it).

One cycle: the draft (the target with INT4 routed experts, same KV cache) proposes k tokens;
its KV entries are cut back; the target runs the last accepted token plus the k drafts in one
forward; drafts are accepted while they equal the target's greedy choice; the target's own
next token is appended; the KV cache is cut to the accepted prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from moebench.models.build import LoadedModel
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


@torch.no_grad()
def speculative_decode(loaded: LoadedModel, draft: Draft, prompt_ids: torch.Tensor, new_tokens: int,
                       choose_k: Callable[[], int], hooks=None) -> SpecResult:
    """Greedy speculative decoding. `hooks` (optional) gets begin_prefill/end_prefill,
    begin_draft(k)/draft_forward(i, context)/end_draft_forward(i),
    begin_verify(n, context)/end_verify(k, accepted) calls for the clock."""
    model = loaded.model
    cache = DynamicCache(config=model.config)
    result = SpecResult(tokens=[])
    if hooks:
        hooks.begin_forward(prompt_ids.shape[1], 0)
    logits = model(input_ids=prompt_ids, cache=cache, use_cache=True).logits
    if hooks:
        result.prefill_sec = hooks.end_forward()
    result.target_calls += 1
    last = int(logits[0, -1].argmax())
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
                out = model(input_ids=torch.tensor([[inp]]), cache=cache, use_cache=True).logits
                if hooks:
                    hooks.end_draft_forward(i)
                result.draft_calls += 1
                inp = int(out[0, -1].argmax())
                drafted.append(inp)
        _crop_to(cache, base)
        if hooks:
            hooks.begin_forward(k + 1, base)
        verify = model(input_ids=torch.tensor([[last, *drafted]]), cache=cache, use_cache=True).logits
        result.target_calls += 1
        greedy = verify[0].argmax(dim=-1).tolist()  # target's choice after each input token
        accepted = 0
        while accepted < k and greedy[accepted] == drafted[accepted]:
            accepted += 1
        emitted = drafted[:accepted] + [greedy[accepted]]
        _crop_to(cache, base + 1 + accepted)
        seconds = hooks.end_cycle(k, accepted) if hooks else 0.0
        result.cycles.append(CycleLog(k, accepted, seconds))
        result.tokens.extend(emitted)
        last = emitted[-1]
    result.tokens = result.tokens[:new_tokens]
    return result
