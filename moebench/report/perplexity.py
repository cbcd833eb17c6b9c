"""Held-out perplexity as the reports print it: which perplexity task a record ran, and the
ratio of two records' word perplexities on the same documents with a paired 95% interval.

A record holds one of two perplexity tasks: `heldout_ppl_windows` (81 windows of the held-out
works, enough documents to resample) or the older `heldout_ppl` (the 4 works whole, which
gives a ratio but no interval). Two records pair when they scored the same documents of the
same task (doc ids and content hash), as accuracies pair in report/accuracy.py.
"""

from __future__ import annotations

import math

import numpy as np

from moebench.bench.paired import PairedRatio, paired_perplexity_ratio
from moebench.report.accuracy import paired_documents
from moebench.schema import RunRecord

TASKS = ("heldout_ppl_windows", "heldout_ppl")  # the windowed task first where a record has both


def task(record: RunRecord) -> str | None:
    """The held-out perplexity task the record ran, None when it ran neither."""
    results = record.eval["results"] if record.eval else {}
    return next((t for t in TASKS if t in results), None)


def ratio(a: RunRecord, b: RunRecord) -> PairedRatio | None:
    """Word perplexity of record a over record b on the same documents, with a paired interval
    over documents (none below bench/paired.MIN_SEQUENCES documents); None when the two did not
    score the same documents or kept no per-document log-likelihoods."""
    name = task(a)
    if name is None or name != task(b):
        return None
    paired = paired_documents(a, b, name)
    if paired is None:
        return None
    ll_a, words = np.array(paired[0]["word_perplexity"]).T
    ll_b, words_b = np.array(paired[1]["word_perplexity"]).T
    if not np.array_equal(words, words_b):
        return None
    return paired_perplexity_ratio(ll_a, ll_b, words)


def _percent(change: float) -> str:
    """A change in percent, to two decimals unless it is smaller than that shows: LG w/o FT
    differs from the original by float rounding only (~1e-4 %), which `-0.00` would hide."""
    if change and abs(change) < 0.005:
        return f"{change:+.1e}"
    return f"{change:+.2f}"


def change_text(paired: PairedRatio | None, fallback: float) -> str:
    """`-3.10% [-3.52, -2.69], lower`: the change in percent with its interval and verdict, or
    the bare change (`fallback`, a ratio) where the records cannot be paired."""
    if paired is None:
        return f"{_percent(100 * (fallback - 1))}% [no interval]"
    change = f"{_percent(100 * (paired.ratio - 1))}%"
    if math.isnan(paired.lo):
        return f"{change} [no interval, {paired.n} documents]"
    return (
        f"{change} [{_percent(100 * (paired.lo - 1))}, {_percent(100 * (paired.hi - 1))}], "
        f"{paired.verdict('higher', 'lower')}"
    )
