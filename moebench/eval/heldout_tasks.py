"""Multiple-choice tasks the proxies can solve, generated from the held-out works.

The standard tasks (ARC, HellaSwag, ...) ask for knowledge a Shakespeare-sized proxy does
not have, so every configuration scores at chance and none can be told apart. These tasks ask
what a language model of the held-out text (never trained on: corpora.VALID_EVERY) must know
about word order and grammar, the things a small model learns first:

- `heldout_word_order`: the line that follows a passage, against three copies of it with two
  adjacent words swapped (never the first word, whose capital would give it away). Every
  choice has the same words, so word frequency and length say nothing.
- `heldout_function_word`: the closed-class word (of, the, my, ...) that comes next in a
  line, against three others drawn from the same task's answers, so a rule that ignores the
  context earns about chance; `context_free_baseline` measures what word frequency earns.

Tasks we tried and left out (reports/LOG.md): the last word of a line (LAMBADA-style) and the
next line against lines from elsewhere; the proxies score 31% and 25-28% on them (chance 25%).

Documents are chosen by sha256 of (task, seed, position), never by a library generator, so
any machine with the pinned `shakespeare` package builds the same documents (a test pins
their hash). Contexts are whole lines of at most CONTEXT_CHARS: with the answer they fit the
128 tokens the proxies trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass

CHOICES = 4
SEED = 0
DOCS = 1000
CONTEXT_CHARS = 250  # about 85 proxy tokens
SPEAKER_OR_HEADING = re.compile(r"^[A-Z][A-Z .,'&-]*\.?$|^\[|^(ACT|SCENE)\b")
LINE_LENGTH = (25, 75)
FUNCTION_WORDS = frozenset(
    "the a an of to in and my his her your thy our their with for from by at on not is be "
    "that this as but or so no me him you thee it".split()
)
# a function word after a lowercase word (or its comma), not opening the line
FUNCTION_WORD_SITE = re.compile(r"(?<=[a-z,;]) ([a-z]+)\b")


@dataclass(frozen=True)
class Line:
    """One line of a held-out work: where it is and what it says."""

    work: int
    index: int
    offset: int
    text: str


def split_lines(works: list[str]) -> list[Line]:
    out = []
    for w, work in enumerate(works):
        offset = 0
        for i, text in enumerate(work.split("\n")):
            out.append(Line(w, i, offset, text))
            offset += len(text) + 1
    return out


def is_text_line(text: str) -> bool:
    """Verse or prose spoken or narrated: not a speaker tag, stage direction, heading or
    cast-list entry (those open with a name in capitals)."""
    stripped = text.strip()
    first = re.match(r"[A-Za-z]+", stripped)
    opens_with_name = first is not None and len(first[0]) > 1 and first[0].isupper()
    return bool(stripped) and not SPEAKER_OR_HEADING.match(stripped) and not opens_with_name


def context_before(works: list[str], line: Line, end: int) -> str:
    """The text before character `end` of `line`'s work: whole lines, at most CONTEXT_CHARS
    (or the start of `line` itself, if that alone is longer), never from another work."""
    work = works[line.work]
    start = max(0, end - CONTEXT_CHARS)
    if start > 0:  # forward to the next line start, but not past this line's own
        next_start = work.find("\n", start - 1) + 1
        start = line.offset if next_start == 0 else min(next_start, line.offset)
    return work[start:end]


def rank(*key) -> str:
    """A platform-independent pseudo-random order: sha256 of the key."""
    return hashlib.sha256("|".join(map(str, key)).encode()).hexdigest()


def pick(candidates: list[tuple], task: str, seed: int, count: int) -> list[tuple]:
    """`count` (line, ...) candidates chosen by hash rank, returned in text order."""
    chosen = sorted(candidates, key=lambda c: rank(task, seed, c[0].work, c[0].index))[:count]
    return sorted(chosen, key=lambda c: (c[0].work, c[0].index))


def assemble(task: str, seed: int, doc: int, context: str, answer: str, others: list) -> dict:
    """The answer at a hash-chosen position among the choices."""
    label = int(rank(task, seed, "label", doc)[:8], 16) % CHOICES
    choices = list(others)
    choices.insert(label, answer)
    return {"context": context, "choices": choices, "label": label}


def word_order_docs(works: list[str], seed: int = SEED, count: int = DOCS) -> list[dict]:
    """A passage ending with a newline; the next line against three adjacent-word swaps."""
    low, high = LINE_LENGTH
    candidates = []
    for line in split_lines(works):
        text = line.text.strip()
        if not (is_text_line(text) and low <= len(text) <= high):
            continue
        words = text.split(" ")
        swaps = [i for i in range(1, len(words) - 1) if words[i] != words[i + 1]]
        context = context_before(works, line, line.offset)
        if len(swaps) >= CHOICES - 1 and context.count("\n") >= 2:
            candidates.append((line, context, words, swaps))
    docs = []
    for doc, (_, context, words, swaps) in enumerate(pick(candidates, "order", seed, count)):
        others = []
        for i in sorted(swaps, key=lambda i: rank("order", seed, doc, i))[: CHOICES - 1]:
            swapped = list(words)
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
            others.append(" ".join(swapped))
        docs.append(assemble("order", seed, doc, context, " ".join(words), others))
    return docs


def function_word_docs(works: list[str], seed: int = SEED, count: int = DOCS) -> list[dict]:
    """A passage ending inside a line; the function word that comes next (scored after a
    space) against three other answers of the task, drawn by hash in proportion to how
    often each is an answer."""
    candidates = []
    for line in split_lines(works):
        if not is_text_line(line.text):
            continue
        site = next(
            (m for m in FUNCTION_WORD_SITE.finditer(line.text) if m[1] in FUNCTION_WORDS), None
        )
        if site is None:
            continue
        context = context_before(works, line, line.offset + site.start())
        if "\n" in context:
            candidates.append((line, context, site[1]))
    pool = [word for _, _, word in candidates]
    docs = []
    for doc, (_, context, word) in enumerate(pick(candidates, "function", seed, count)):
        others: list[str] = []
        for attempt in range(len(pool)):
            other = pool[int(rank("function", seed, doc, attempt)[:12], 16) % len(pool)]
            if other != word and other not in others:
                others.append(other)
            if len(others) == CHOICES - 1:
                break
        docs.append(assemble("function", seed, doc, context, word, others))
    return docs


# task -> (generator, the delimiter lm-eval puts between context and choice)
GENERATORS = {
    "heldout_word_order": (word_order_docs, ""),
    "heldout_function_word": (function_word_docs, " "),
}


def docs_sha256(docs: list[dict]) -> str:
    return hashlib.sha256(
        "".join(json.dumps(d, sort_keys=True) + "\n" for d in docs).encode()
    ).hexdigest()


def word_counts(text: str) -> Counter:
    """Lower-case word counts of `text` (the training split, for the baseline below)."""
    return Counter(re.findall(r"[a-z']+", text.lower()))


def context_free_baseline(docs: list[dict], train_counts: Counter, delimiter: str) -> float:
    """Expected accuracy of picking the choice with the highest add-one unigram word
    log-probability under the training split's `word_counts`, ties broken at random: what
    word frequency alone earns. (Word-order choices share their words, so they always tie:
    exactly chance.)"""
    total, vocab = sum(train_counts.values()), len(train_counts) + 1

    def score(text: str) -> float:  # fsum: the same words in any order give the same sum
        words = re.findall(r"[a-z']+", (delimiter + text).lower())
        return math.fsum(math.log((train_counts[w] + 1) / (total + vocab)) for w in words)

    expected = 0.0
    for d in docs:
        scores = [score(c) for c in d["choices"]]
        best = [i for i, s in enumerate(scores) if s == max(scores)]
        expected += (d["label"] in best) / len(best)
    return expected / len(docs)
