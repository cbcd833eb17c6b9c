"""reports/sensitivity.md: each headline ratio with one cost parameter at half and double its
base value (records of `python -m moebench.tools.sensitivity`), which parameter moves it most,
and whether any verdict flips. A tornado figure per headline.

Records only: a headline is a model's pair of methods; each hardware profile the pair ran
under is labelled by how it differs from the base profile (the one every other differs from
in one parameter's fields).
"""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pandas as pd

from moebench.report.common import conditions, flag_invalid, plt, save_figure
from moebench.report.paired import INTERVALS, WORDS, cell, ratio
from moebench.schema import RunRecord
from moebench.tools.sensitivity import HEADLINES, HOST_TERMS, PARAMETERS, side_config


def _fields(record: RunRecord) -> dict[str, float]:
    hw = dataclasses.asdict(record.config.hardware)
    return {f: float(hw[f]) for fields in PARAMETERS.values() for f in fields}


def _label(values: dict, base: dict) -> tuple[str, float] | None:
    """(parameter, scale) of a profile against the base; None if it differs otherwise."""
    changed = {f for f in values if not np.isclose(values[f], base[f], rtol=1e-9, atol=0)}
    if not changed:
        return ("base", 1.0)
    if changed == set(HOST_TERMS) and all(values[f] == 0 for f in changed):
        return ("committed", 1.0)
    for parameter, fields in PARAMETERS.items():
        if changed == set(fields) and all(base[f] for f in fields):
            scales = {round(values[f] / base[f], 6) for f in fields}
            if len(scales) == 1:
                return (parameter, scales.pop())
    return None


def side(record: RunRecord, configs: dict) -> str | None:
    """Which side ("a" or "b") of a headline a record ran, by its model, method and workload."""
    for name, cfg in configs.items():
        c = record.config
        if (c.model.name, c.method, c.workload) == (cfg.model.name, cfg.method, cfg.workload):
            return name
    return None


def labelled_pairs(records: list[RunRecord], configs: dict) -> dict[tuple[str, float], tuple]:
    """(parameter, scale) -> (record of side a, record of side b) under the same profile;
    `configs`: each side's run config (tools/sensitivity.side_config)."""
    by_profile: dict[str, dict[str, RunRecord]] = {}
    for r in records:
        name = side(r, configs)
        if name is not None:
            key = repr(sorted(_fields(r).items()))
            by_profile.setdefault(key, {})[name] = r
    pairs = [(p["a"], p["b"]) for p in by_profile.values() if {"a", "b"} <= set(p)]
    if not pairs:
        return {}
    profiles = [_fields(pa) for pa, _ in pairs]

    def labelled_against(base):
        return [_label(v, base) for v in profiles]

    base = max(profiles, key=lambda p: sum(x is not None for x in labelled_against(p)))
    return {
        label: pair
        for label, pair in zip(labelled_against(base), pairs, strict=True)
        if label is not None
    }


def headline_frame(pairs: dict, name: str, words: str) -> pd.DataFrame:
    rows = []
    base = ratio(*pairs[("base", 1.0)], name) if ("base", 1.0) in pairs else None
    order = ["committed", "base", *PARAMETERS]
    for (parameter, scale), (ra, rb) in sorted(
        pairs.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])
    ):
        r = ratio(ra, rb, name)
        rows.append(
            {
                "parameter": parameter,
                "scale": scale,
                "ratio [95%]": cell(r),
                "verdict": r.verdict(*WORDS[words]) if r else "-",
                "flips": "-"
                if r is None or base is None or parameter == "base"
                else ("YES" if r.verdict() != base.verdict() else "no"),
                "moves the ratio by": "-"
                if r is None or base is None
                else f"{r.ratio / base.ratio - 1:+.1%}",
                "_r": r,
                "_move": 0.0 if r is None or base is None else abs(r.ratio / base.ratio - 1),
            }
        )
    return pd.DataFrame(rows)


def tornado(frame: pd.DataFrame, title: str, path) -> None:
    """One bar per parameter from its ratio at half to its ratio at double, around the base."""
    base = frame[frame.parameter == "base"]["_r"].iloc[0]
    spans = []
    for parameter in PARAMETERS:
        sub = frame[frame.parameter == parameter]
        if len(sub):
            values = [r.ratio for r in sub["_r"] if r]
            spans.append((parameter, min(values), max(values)))
    spans.sort(key=lambda s: s[2] - s[1])
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(spans) + 1.5))
    for i, (_, lo, hi) in enumerate(spans):
        ax.barh(i, hi - lo, left=lo, color="tab:blue")
    ax.axvline(base.ratio, color="black", linewidth=1, label=f"base {base.ratio:.3f}")
    ax.axvspan(base.lo, base.hi, color="grey", alpha=0.2, label="base 95% interval")
    ax.axvline(1.0, color="red", linewidth=0.8, linestyle="--", label="1 (no difference)")
    ax.set_yticks(range(len(spans)), [s[0] for s in spans])
    ax.set_xlabel("ratio, each parameter from x0.5 to x2")
    ax.set_title(textwrap.fill(title, 100), fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def sensitivity(records: list[RunRecord], out) -> list[str]:
    lines = [
        "# Sensitivity of the headline ratios to the cost parameters",
        "",
        conditions(records),
        "",
        "Each headline is rerun with one cost parameter at x0.5 and x2 of its base value "
        "(`python -m moebench.tools.sensitivity`). The base profile is the named GPU's plus the "
        "sourced host terms of conf/hardware/host_terms.yaml; `committed` is the profile as the "
        "committed records ran it (no host terms). Kernel efficiency scales peak FLOP/s and HBM "
        "bandwidth together. " + INTERVALS,
        "",
    ]
    for headline in HEADLINES.values():
        a, b = headline.a, headline.b
        configs = {"a": side_config(headline, a), "b": side_config(headline, b)}
        pairs = labelled_pairs(records, configs)
        if ("base", 1.0) not in pairs:
            continue
        frame = headline_frame(pairs, headline.ratio, headline.words or headline.ratio)
        figure = f"figs/sensitivity_{headline.name}.png"
        tornado(frame, headline.title, out / figure)
        moved = frame[~frame.parameter.isin(["base", "committed"])]
        top = moved.sort_values("_move", ascending=False).iloc[0] if len(moved) else None
        flips = moved[moved.flips == "YES"]
        lines += [
            f"## {headline.title}",
            "",
            f"Ratio: {a} over {b} (tokens/s); {len(frame)} profiles.",
            "",
            frame.drop(columns=["_r", "_move"]).to_markdown(index=False, floatfmt=".3g"),
            "",
            f"![tornado]({figure})",
            "",
            (
                f"**Moves it most:** {top.parameter} "
                f"(x{top.scale:g}: {top['moves the ratio by']}). "
                if top is not None
                else ""
            )
            + (
                "**Verdict flips** at: "
                + ", ".join(
                    f"{p} x{s:g}" for p, s in zip(flips.parameter, flips.scale, strict=True)
                )
                + "."
                if len(flips)
                else "**No verdict flips** within x0.5 to x2 of any parameter."
            ),
            "",
        ]
    return lines + [*flag_invalid(records), ""]
