"""Accuracy differences over the same documents, and the Table 3 sentence built from them."""

import numpy as np

from moebench.bench.paired import PairedDifference, paired_difference
from moebench.report.prism_accuracy import _claim_sentence


def test_paired_difference_finds_a_known_gain_and_no_gain():
    rng = np.random.default_rng(0)
    base = (rng.random(1000) < 0.5).astype(float)
    better = base.copy()
    better[(base == 0) & (rng.random(1000) < 0.2)] = 1  # +10 points, on the same documents
    gain = paired_difference(better, base)
    assert gain.lo <= gain.diff <= gain.hi and gain.diff == better.mean() - base.mean()
    assert gain.lo > 0.05 and gain.hi - gain.lo < 0.05 and gain.verdict() == "higher"
    same = paired_difference(base, base)
    assert (same.lo, same.diff, same.hi) == (0.0, 0.0, 0.0)
    shuffled = paired_difference(rng.permutation(base), base)  # same accuracy, other documents
    assert shuffled.lo < 0 < shuffled.hi and shuffled.verdict() == "not distinguishable at 95%"
    assert np.isnan(paired_difference(base[:5], base[:5]).lo)  # too few documents: no interval


def test_table3_sentence_says_whether_the_claim_holds():
    worse = PairedDifference(-0.05, -0.08, -0.02, 1000)
    tie = PairedDifference(0.0, -0.02, 0.02, 1000)
    better = PairedDifference(0.04, 0.01, 0.07, 1000)
    task_a, task_b = "heldout_word_order", "heldout_function_word"
    assert "does **not** hold" in _claim_sentence([(task_a, worse), (task_b, better)])
    assert "holds on the proxy" in _claim_sentence([(task_a, tie), (task_b, better)])
    assert "matches" in _claim_sentence([(task_a, tie), (task_b, tie)])
    assert "not tested" in _claim_sentence([])
