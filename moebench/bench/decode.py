"""Decoding with a KV cache, one forward call per step, routing captured per step; tokens are
chosen greedily or sampled from the shared noise tape (bench/sampling.py).

Methods charge their clock from the `Step`s this loop reports; the loop itself is the same
for every method, which is what makes lossless methods comparable token for token.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from moebench.bench.sampling import GREEDY, TokenChooser
from moebench.models.families import RoutingRecorder
from moebench.models.loaded import LoadedModel
from moebench.models.routing import NextLayerGuessRecorder


@dataclass
class Step:
    """One forward call: how many tokens went in, the cached context, the routing used."""

    index: int
    tokens_in: int
    context: int  # tokens already in the KV cache before this call
    routing: dict[int, torch.Tensor]  # decoder-layer index -> [tokens_in, k] expert ids
    # decoder-layer index -> [tokens_in, k] the next MoE layer's guess from this layer's input
    # (only when asked for: a routing recording that next_layer_prefetch can replay)
    guesses: dict[int, torch.Tensor] | None = None


@torch.no_grad()
def decode(
    loaded: LoadedModel,
    prompt_ids: torch.Tensor,  # [1, P]
    new_tokens: int,
    on_step: Callable[[Step], None] | None = None,
    before_step: Callable[[int, int], None] | None = None,
    record_routing: bool = True,
    chooser: TokenChooser = GREEDY,
    record_guesses: bool = False,
) -> list[int]:
    """Generate `new_tokens` with `chooser`; step 0 is the prefill. Returns the new token ids.
    `before_step(tokens_in, context)` runs before each forward, `on_step(step)` after it;
    `record_guesses` adds each layer's next-layer guess to the steps."""
    model = loaded.model
    cache = DynamicCache(config=model.config)
    generated: list[int] = []
    device = model.get_input_embeddings().weight.device  # a real transport may have moved it
    inputs, context = prompt_ids.to(device), 0
    guesser = NextLayerGuessRecorder(loaded) if record_guesses else nullcontext()
    with RoutingRecorder(loaded.layers if record_routing else []) as recorder, guesser:
        for step in range(new_tokens):
            if before_step is not None:
                before_step(inputs.shape[1], context)
            logits = model(input_ids=inputs, cache=cache, use_cache=True).logits
            guesses = guesser.take() if record_guesses else None
            if on_step is not None:
                on_step(Step(step, inputs.shape[1], context, recorder.take(), guesses))
            context += inputs.shape[1]
            next_id = chooser.one(
                logits[0, -1], context
            )  # the token at absolute position `context`
            generated.append(next_id)
            inputs = torch.tensor([[next_id]], dtype=prompt_ids.dtype, device=device)
    return generated
