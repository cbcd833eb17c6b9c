"""reports/sensitivity.md: each headline ratio with one cost parameter at half and double its
base value (records of `python -m moebench.tools.sensitivity`), which parameter moves it most,
and whether any verdict flips. A tornado figure per headline.

Records only: a headline is a model's pair of methods; each hardware profile the pair ran
under is labelled by how it differs from the base profile (the one every other differs from
in one parameter's fields).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from moebench.report.common import conditions, flag_invalid, plt, save_figure
from moebench.report.paired import INTERVALS, WORDS, cell, ratio
from moebench.schema import RunRecord
from moebench.tools.sensitivity import HEADLINES, HOST_TERMS, PARAMETERS


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


def method_id(record: RunRecord) -> str:
    """The method as its conf/method file names it: `mixtral_offloading_sm` is the
    `mixtral_offloading` method with variant `sm`."""
    options = record.config.method.options
    variant = (
        options.get("variant") if isinstance(options, dict) else getattr(options, "variant", None)
    )
    return record.config.method.name + (f"_{variant}" if variant else "")


def labelled_pairs(records: list[RunRecord], a: str, b: str) -> dict[tuple[str, float], tuple]:
    """(parameter, scale) -> (record of method a, record of method b) under the same profile."""
    by_profile: dict[str, dict[str, RunRecord]] = {}
    for r in records:
        if method_id(r) in (a, b):
            key = repr(sorted(_fields(r).items()))
            by_profile.setdefault(key, {})[method_id(r)] = r
    pairs = [(p[a], p[b]) for p in by_profile.values() if a in p and b in p]
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


def headline_frame(pairs: dict, name: str) -> pd.DataFrame:
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
                "verdict": r.verdict(*WORDS[name]) if r else "-",
                "flips": "-"
                if r is None or base is None or parameter == "base"
                else ("YES" if r.verdict() != base.verdict() else "no"),
                "moves the ratio by": "-"
                if r is None or base is None
                else f"{r.ratio / base.ratio - 1:+.1%}",
                "_r": r,
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
    ax.set_title(title, fontsize=8)
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
        pairs = labelled_pairs([r for r in records if r.model == headline.model], a, b)
        if ("base", 1.0) not in pairs:
            continue
        frame = headline_frame(pairs, headline.ratio)
        figure = f"figs/sensitivity_{headline.name}.png"
        tornado(frame, headline.title, out / figure)
        moved = frame[~frame.parameter.isin(["base", "committed"])].copy()
        moved["_span"] = [abs(r.ratio - frame["_r"].iloc[1].ratio) if r else 0 for r in moved["_r"]]
        top = moved.sort_values("_span", ascending=False).iloc[0] if len(moved) else None
        flips = moved[moved.flips == "YES"]
        lines += [
            f"## {headline.title}",
            "",
            f"Ratio: {a} over {b} ({headline.ratio}); {len(frame)} profiles.",
            "",
            frame.drop(columns=["_r"]).to_markdown(index=False, floatfmt=".3g"),
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
