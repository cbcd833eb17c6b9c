"""One rule that turns logits into the next token, shared by every method.

Greedy takes the argmax. Sampling takes the argmax of logits / T plus Gumbel noise read from a
*noise tape*: the noise for absolute position p of prompt i on tape t comes from a
counter-based generator (Philox) keyed by (seed, i + t * 2**32) at counter p, so it is the same
whichever method asks, in whatever order, and however many tokens one forward scores. The
Gumbel-max trick makes each choice an exact sample from softmax(logits / T) (restricted to the
top_k logits when set).

Because plain decoding, every offloading method and MoE-SpeQ's draft and verify all choose
through this rule, a lossless method emits exactly the tokens of plain sampled decoding: a
draft token is accepted iff it equals the target's own tape choice at its position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# The speed experiments' temperature for every proxy, chosen by `python -m moebench.models
# temperature` against the real Mixtral trace (reports/proxies/temperature.md).
DEFAULT_TEMPERATURE = 1.0


def gumbel_noise(seed: int, prompt: int, position: int, vocab: int, tape: int = 0) -> np.ndarray:
    """Tape `tape`'s Gumbel(0, 1) noise for one position of a prompt: [vocab] float64 (tape 0
    keeps the key a one-tape workload always used)."""
    # The position goes in a high counter word: Philox steps word 0 as it draws, so a position
    # in word 0 would make position p+1's noise position p's shifted by one block.
    key = [seed, prompt + (tape << 32)]
    bits = np.random.Generator(np.random.Philox(key=key, counter=[0, position, 0, 0]))
    uniform = bits.random(vocab)  # in [0, 1)
    return -np.log(-np.log(np.clip(uniform, np.finfo(np.float64).tiny, None)))


@dataclass(frozen=True)
class TokenChooser:
    """How one prompt's tokens are chosen: `greedy`, or `sample` at `temperature` (and top_k)."""

    decoding: str = "greedy"
    temperature: float = 1.0
    top_k: int | None = None
    seed: int = 0
    prompt: int = 0
    tape: int = 0

    def choose(self, logits: torch.Tensor, positions: list[int]) -> list[int]:
        """Tokens for the rows of `logits` [n, V]; row j is the distribution of the token at
        absolute position `positions[j]` of the sequence."""
        if self.decoding == "greedy":
            return logits.argmax(dim=-1).tolist()
        scores = logits.detach().to(torch.float64).cpu().numpy() / self.temperature
        if self.top_k is not None and self.top_k < scores.shape[-1]:
            cut = np.partition(scores, -self.top_k, axis=-1)[:, -self.top_k][:, None]
            scores = np.where(scores >= cut, scores, -np.inf)
        return [
            int(np.argmax(row + gumbel_noise(self.seed, self.prompt, p, row.shape[0], self.tape)))
            for row, p in zip(scores, positions, strict=True)
        ]

    def one(self, logits_row: torch.Tensor, position: int) -> int:
        return self.choose(logits_row.reshape(1, -1), [position])[0]


GREEDY = TokenChooser()


def chooser_for(workload, seed: int, prompt: int, tape: int = 0) -> TokenChooser:
    """The chooser a workload config asks for, for prompt number `prompt` on tape `tape`."""
    return TokenChooser(workload.decoding, workload.temperature, workload.top_k, seed, prompt, tape)
