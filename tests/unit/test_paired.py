"""Paired intervals (bench/paired.py): they cover a known ratio, the pairing removes the spread
that prompts share, and the verdict follows the interval."""

import numpy as np
import pytest

from moebench.bench.paired import PairedRatio, paired_perplexity_ratio, paired_ratio
from moebench.report.perplexity import change_text


def runs(speedup, shared_spread, own_spread, n=48, seed=0):
    """Seconds of two runs over the same n sequences: B's, and A's `speedup` times faster,
    both with the prompts' common difficulty and each with noise of its own."""
    rng = np.random.default_rng(seed)
    difficulty = rng.lognormal(0.0, shared_spread, n)
    sec_b = difficulty * rng.normal(1, own_spread, n)
    sec_a = difficulty / speedup * rng.normal(1, own_spread, n)
    return np.full(n, 128.0), sec_a, sec_b


def test_a_clear_speedup_is_faster_and_covered():
    tokens, sec_a, sec_b = runs(1.05, shared_spread=0.5, own_spread=0.01)
    r = paired_ratio(tokens, sec_a, tokens, sec_b)
    assert r.lo < 1.05 < r.hi and r.lo > 1
    assert r.verdict("faster", "slower") == "faster"
    assert r.text() == f"{r.ratio:.3f} [{r.lo:.3f}, {r.hi:.3f}]"


def test_pairing_removes_the_prompts_spread():
    """Unpaired, a 50% spread in prompt difficulty would swamp a 5% speedup; paired it does
    not: the interval is narrower than the prompts' own spread by far."""
    tokens, sec_a, sec_b = runs(1.05, shared_spread=0.5, own_spread=0.01)
    r = paired_ratio(tokens, sec_a, tokens, sec_b)
    assert r.hi - r.lo < 0.02
    unpaired = paired_ratio(tokens, sec_a, tokens, np.random.default_rng(9).permutation(sec_b))
    assert unpaired.hi - unpaired.lo > 5 * (r.hi - r.lo)


def test_no_difference_is_not_distinguishable_and_a_slowdown_is_slower():
    tokens, sec_a, sec_b = runs(1.0, shared_spread=0.3, own_spread=0.05)
    assert paired_ratio(tokens, sec_a, tokens, sec_b).verdict() == "not distinguishable at 95%"
    tokens, sec_a, sec_b = runs(0.9, shared_spread=0.3, own_spread=0.01)
    assert paired_ratio(tokens, sec_a, tokens, sec_b).verdict("faster", "slower") == "slower"


def test_identical_runs_give_a_point_interval_and_few_sequences_none():
    tokens, _, sec = runs(1.0, 0.3, 0.05)
    r = paired_ratio(tokens, sec, tokens, sec)
    assert (r.ratio, r.lo, r.hi) == (1.0, 1.0, 1.0)
    few = paired_ratio(tokens[:7], sec[:7] / 2, tokens[:7], sec[:7])
    assert few.ratio == 2.0 and few.verdict() == "no interval (7 sequence(s) < 8)"
    assert few.text() == "2.000 [no interval]"


def test_the_interval_is_reproducible_and_lengths_must_match():
    tokens, sec_a, sec_b = runs(1.02, 0.3, 0.02)
    assert paired_ratio(tokens, sec_a, tokens, sec_b) == paired_ratio(tokens, sec_a, tokens, sec_b)
    with pytest.raises(ValueError, match="equal"):
        paired_ratio(tokens, sec_a[:-1], tokens, sec_b)


def test_a_perplexity_ratio_pairs_documents_and_finds_a_known_loss():
    rng = np.random.default_rng(0)
    words = rng.integers(900, 1300, 80).astype(float)
    ll_b = -words * rng.normal(10.0, 0.5, 80)  # document difficulty, shared by both runs
    ll_a = ll_b - words * rng.normal(0.02, 0.01, 80)  # ~2% worse per word, on every document
    worse = paired_perplexity_ratio(ll_a, ll_b, words)
    expected = np.exp((ll_b.sum() - ll_a.sum()) / words.sum())
    assert worse.ratio == pytest.approx(expected, rel=1e-12) and worse.n == 80
    assert 1 < worse.lo < worse.ratio < worse.hi < 1.03 and worse.verdict() == "higher"
    back = paired_perplexity_ratio(ll_b, ll_a, words)
    assert back.ratio == pytest.approx(1 / worse.ratio) and back.verdict() == "lower"
    same = paired_perplexity_ratio(ll_b, ll_b, words)
    assert (same.lo, same.ratio, same.hi) == (1.0, 1.0, 1.0)
    shuffled = paired_perplexity_ratio(rng.permutation(ll_b), ll_b, words)  # unpaired noise
    assert shuffled.lo < 1 < shuffled.hi
    few = paired_perplexity_ratio(ll_a[:4], ll_b[:4], words[:4])
    assert np.isnan(few.lo) and few.verdict().startswith("no interval (4 document(s)")


def test_a_perplexity_change_keeps_the_digits_a_float_rounding_change_needs():
    """LG w/o FT differs from the original by float rounding only: `-0.00%` would hide both
    the change and why the interval can still exclude 1."""
    rounding = PairedRatio(1 - 1.5e-6, 1 - 4.6e-6, 1 - 3.3e-7, 81, "document")
    assert change_text(rounding, rounding.ratio) == "-1.5e-04% [-4.6e-04, -3.3e-05], lower"
    loss = PairedRatio(1.0348, 1.0273, 1.0425, 81, "document")
    assert change_text(loss, loss.ratio) == "+3.48% [+2.73, +4.25], higher"
    assert change_text(None, 1.0) == "+0.00% [no interval]"
    assert change_text(None, 0.9873) == "-1.27% [no interval]"
