"""Pieces every report shares: the conditions header, figure saving, validity flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401 - re-exported for the renderers


def conditions(records: list[dict[str, Any]]) -> str:
    """One paragraph naming everything a reader needs to interpret the numbers."""
    r = records[0]
    c = r["config"]
    model = r["model"]
    proxy = f" (proxy of `{model['proxy_of']}`, charged at its sizes)" if model.get("proxy_of") else ""
    budgets = sorted({str(x["config"]["method"]["budget_gb"]) for x in records})
    commits = sorted({(x["git"]["sha"] or "none")[:10] + ("+dirty" if x["git"]["dirty"] else "") for x in records})
    clocks = sorted({x["clock"] for x in records})
    hardware = ", ".join(f"`{h}`" for h in sorted({x["hardware"] for x in records}))
    return (f"**Conditions.** Model `{model['name']}`{proxy}; hardware {hardware}; clock "
            f"{', '.join(f'`{k}`' for k in clocks)}; memory budgets (GB) {', '.join(budgets)}; workload "
            f"`{c['workload']['name']}` ({c['workload']['num_prompts']} prompts x {c['workload']['prompt_len']} "
            f"tokens, {c['workload']['new_tokens']} new tokens, greedy); commit(s) {', '.join(commits)}; "
            f"{len(records)} records.")


def flag_invalid(records: list[dict[str, Any]]) -> list[str]:
    bad = [r for r in records if not r["validity"]["valid"]]
    return [f"- INVALID run `{r['run_key']}`: {'; '.join(r['validity']['reasons'])}" for r in bad]


def save_figure(fig, path: Path) -> None:
    """PNG without a timestamp or software tag, so regenerating is byte-identical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
