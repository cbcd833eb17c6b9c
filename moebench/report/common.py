"""Pieces every report shares: the conditions header, figure saving, validity flags."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401 - re-exported for the renderers

from moebench.paths import REPO_ROOT  # noqa: E402
from moebench.schema import RunRecord

PROXY_CARDS = REPO_ROOT / "reports" / "proxies"


def conditions(records: list[RunRecord]) -> str:
    """One paragraph naming everything a reader needs to interpret the numbers."""
    r = records[0]
    w = r.config.workload
    model = r.model
    proxy = f" (proxy of `{model.proxy_of}`, charged at its sizes)" if model.proxy_of else ""
    budgets = sorted({str(x.config.method.budget_gb) for x in records})
    commits = sorted(
        {(x.git["sha"] or "none")[:10] + ("+dirty" if x.git["dirty"] else "") for x in records}
    )
    clocks = sorted({x.clock for x in records})
    hardware = ", ".join(f"`{h}`" for h in sorted({x.hardware for x in records}))
    return (
        f"**Conditions.** Model `{model.name}`{proxy}; hardware {hardware}; clock "
        f"{', '.join(f'`{k}`' for k in clocks)}; memory budgets (GB) {', '.join(budgets)}; "
        f"workload `{w.name}` ({w.num_prompts} prompts x {w.prompt_len} tokens, {w.new_tokens} new "
        f"tokens, decoding {decodings(records)}); commit(s) {', '.join(commits)}; {len(records)} "
        f"records. {weights_line(records)}"
    ).rstrip()


def decodings(records: list[RunRecord]) -> str:
    """How the records chose tokens: greedy, and/or sampled at which temperature."""
    kinds = set()
    for r in records:
        sampled = r.config is not None and r.config.workload.sampling
        kinds.add(f"sample at T = {r.config.workload.temperature:g}" if sampled else "greedy")
    return " and ".join(sorted(kinds, reverse=True)) or "greedy"


@cache
def card_weights(proxy: str) -> str | None:
    """The weights sha256 in the committed proxy card (None for a model without a card)."""
    path = PROXY_CARDS / f"{proxy}.json"
    return json.loads(path.read_text()).get("weights_sha256") if path.exists() else None


def weights_line(records: list[RunRecord]) -> str:
    """Which trained weights made the records, said plainly when rows come from more than one
    set of weights or from weights other than the committed proxy card's."""
    by_model: dict[str, set[str]] = {}
    for r in records:
        if r.model.sha256:
            by_model.setdefault(r.model.name, set()).add(r.model.sha256)
    parts = []
    for name, shas in sorted(by_model.items()):
        short, card = ", ".join(s[:8] for s in sorted(shas)), card_weights(name)
        if len(shas) > 1:
            parts.append(
                f"`{name}` from {len(shas)} different weights ({short}): rows do not share one "
                "model"
            )
        elif card and card not in shas:
            parts.append(
                f"`{name}` {short}, not the committed proxy card's {card[:8]} (trained before "
                "kernels were pinned, on another CPU family, or by another torch build)"
            )
        else:
            parts.append(f"`{name}` {short}" + (" (the proxy card's)" if card else ""))
    return f"Weights: {'; '.join(parts)}." if parts else ""


def flag_invalid(records: list[RunRecord]) -> list[str]:
    bad = [r for r in records if not r.validity.valid]
    return [f"- INVALID run `{r.run_key}`: {'; '.join(r.validity.reasons)}" for r in bad]


def save_figure(fig, path: Path) -> None:
    """PNG without a timestamp or software tag, so regenerating is byte-identical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
