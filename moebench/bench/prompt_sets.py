"""Prompt sets from ../shared/data that stand in for MoE-SpeQ's five datasets (the real ones
are not available offline). Each is real text of the same kind:

- `wikitext` (paper: WikiText-2): WikiText-2 raw test articles, the real thing.
- `humaneval` (paper: HumanEval): the two HumanEval prompts in the Mixtral trace's outputs.
- `gsm8k` (paper: GSM8K): the GSM8K questions the Qwen routing trace was recorded on.
- `c4` (paper: C4, web text): PTB test sentences, newswire. No C4 copy is available.
- `gpqa` (paper: GPQA, graduate science QA): ARC-Challenge questions, grade-school science
  multiple choice. No GPQA copy is available.
"""

from __future__ import annotations

import json
from pathlib import Path

from moebench.errors import UserError
from moebench.paths import SHARED_DATA


def _wikitext(root: Path) -> list[str]:
    lines = (
        (root / "wikitext-2-raw" / "wiki.test.raw")
        .read_text(encoding="utf-8")
        .replace("\r", "")
        .split("\n")
    )
    return [line.strip() for line in lines if len(line.split()) > 40]


def _humaneval(root: Path) -> list[str]:
    path = (
        root / "moe_routing_traces" / "mixtral-8x7b-instruct-v0.1-fp8" / "humaneval_2_outputs.jsonl"
    )
    return [json.loads(line)["prompt"] for line in path.read_text().splitlines() if line.strip()]


def _gsm8k(root: Path) -> list[str]:
    text = (root / "moe_routing_traces" / "qwen1.5-moe-a2.7b-chat" / "prompts.txt").read_text(
        encoding="utf-8"
    )
    return [q.strip() for q in text.split("---") if q.strip()]


def _c4(root: Path) -> list[str]:
    lines = (root / "ptb" / "ptb.test.txt").read_text().splitlines()
    return [" ".join(lines[i : i + 4]).strip() for i in range(0, len(lines) - 4, 4)]


def _gpqa(root: Path) -> list[str]:
    items = json.loads(
        (root / "commonsense_llm_adapters" / "ARC-Challenge" / "test.json").read_text()
    )
    return [
        item["instruction"].split("question: ", 1)[-1].split("\n\nAnswer format")[0]
        for item in items
    ]


PROMPT_SETS = {
    "wikitext": _wikitext,
    "humaneval": _humaneval,
    "gsm8k": _gsm8k,
    "c4": _c4,
    "gpqa": _gpqa,
}


def prompt_texts(name: str, root: Path = SHARED_DATA) -> list[str]:
    if name not in PROMPT_SETS:
        raise UserError(
            f"workload.prompts=shared:{name} is unknown; one of "
            f"{', '.join('shared:' + n for n in PROMPT_SETS)}"
        )
    if not root.exists():
        raise UserError(f"workload.prompts=shared:{name} needs {root} (the ../shared/data folder)")
    return PROMPT_SETS[name](root)
