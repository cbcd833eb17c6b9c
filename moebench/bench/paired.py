"""Paired 95% intervals for a ratio between two runs, and the verdict they support.

Two methods run on the same workload and seed decode the same (prompt, tape) sequences
(bench/sequences.py). A ratio such as tokens/s of A over tokens/s of B is a ratio of pooled
sums, (sum num_A / sum den_A) / (sum num_B / sum den_B); the bootstrap resamples sequences
with replacement and takes the *same* sequences for both runs, so prompt difficulty and tape
luck cancel and the interval says how much the ratio would move on other prompts like these.
The resampling is scipy.stats.bootstrap (BCa, 10,000 resamples, a fixed generator so reports
regenerate byte for byte).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
# Below this many sequences a bootstrap interval undercovers badly (it cannot see the spread
# it did not sample), so none is given.
MIN_SEQUENCES = 8


def _verdict(lo: float, hi: float, n: int, null: float, above: str, below: str, unit: str) -> str:
    """What an interval over `n` `unit`s says against `null` (no difference)."""
    if math.isnan(lo):
        return f"no interval ({n} {unit}(s) < {MIN_SEQUENCES})"
    if lo > null:
        return above
    if hi < null:
        return below
    return "not distinguishable at 95%"


@dataclass(frozen=True)
class PairedRatio:
    """A ratio of run A over run B with its paired 95% interval over `n` sequences."""

    ratio: float
    lo: float
    hi: float
    n: int
    unit: str = "sequence"  # what was resampled: sequences, or documents for a perplexity

    @property
    def decided(self) -> bool:
        """Whether the interval excludes 1."""
        return self.lo > 1 or self.hi < 1

    def verdict(self, above: str = "higher", below: str = "lower") -> str:
        """`above` when the whole interval is above 1, `below` when it is below, else not
        distinguishable at 95%."""
        return _verdict(self.lo, self.hi, self.n, 1.0, above, below, self.unit)

    def text(self, digits: int = 3) -> str:
        """`ratio [lo, hi]` (`ratio [no interval]` below MIN_SEQUENCES)."""
        if math.isnan(self.lo):
            return f"{self.ratio:.{digits}f} [no interval]"
        return f"{self.ratio:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def _ratio_of_sums(num_a, den_a, num_b, den_b, axis=-1):
    return (np.sum(num_a, axis) / np.sum(den_a, axis)) / (np.sum(num_b, axis) / np.sum(den_b, axis))


def _paired_samples(*samples) -> tuple[list[np.ndarray], int]:
    """The samples as float arrays and their common length; unequal or empty ones are a bug."""
    data = [np.asarray(x, dtype=np.float64) for x in samples]
    n = len(data[0])
    if any(len(x) != n for x in data) or n == 0:
        lengths = [len(x) for x in data]
        raise ValueError(f"paired samples need equal, non-zero lengths, got {lengths}")
    return data, n


def paired_ratio(num_a, den_a, num_b, den_b, seed: int = 0) -> PairedRatio:
    """(sum num_a / sum den_a) / (sum num_b / sum den_b) with a paired bootstrap interval over
    the sequences (position i of every array is sequence i of both runs)."""
    data, n = _paired_samples(num_a, den_a, num_b, den_b)
    ratio = float(_ratio_of_sums(*data))
    if n < MIN_SEQUENCES:
        return PairedRatio(ratio, math.nan, math.nan, n)
    lo, hi = _bootstrap(data, _ratio_of_sums, seed)
    if math.isnan(lo) and np.allclose(_per_sequence(data), ratio, rtol=1e-12, atol=0):
        lo = hi = ratio  # every sequence gives the same ratio: no spread to resample
    return PairedRatio(ratio, lo, hi, n)


def _bootstrap(data: list[np.ndarray], statistic, seed: int) -> tuple[float, float]:
    """The paired 95% interval of `statistic` over resampled rows: BCa, else percentile."""
    lo, hi = math.nan, math.nan
    for method in ("BCa", "percentile"):  # BCa is undefined when every resample agrees
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = stats.bootstrap(
                data,
                statistic,
                paired=True,
                vectorized=True,
                n_resamples=RESAMPLES,
                confidence_level=CONFIDENCE,
                method=method,
                rng=np.random.default_rng(seed),
            ).confidence_interval
        lo, hi = float(ci.low), float(ci.high)
        if not (math.isnan(lo) or math.isnan(hi)):
            break
    return lo, hi


def _perplexity_ratio(ll_a, ll_b, words, axis=-1):
    return np.exp((np.sum(ll_b, axis) - np.sum(ll_a, axis)) / np.sum(words, axis))


def paired_perplexity_ratio(ll_a, ll_b, words, seed: int = 0) -> PairedRatio:
    """Word perplexity of run A over run B on the same documents: exp((sum ll_b - sum ll_a) /
    sum words), document i of both runs resampled together. `ll_*` are each document's total
    log-likelihood, `words` its word count (lm-eval's per-document word_perplexity pair)."""
    data, n = _paired_samples(ll_a, ll_b, words)
    ratio = float(_perplexity_ratio(*data))
    if n < MIN_SEQUENCES:
        return PairedRatio(ratio, math.nan, math.nan, n, "document")
    if np.array_equal(data[0], data[1]):
        return PairedRatio(ratio, ratio, ratio, n, "document")  # identical: nothing to resample
    lo, hi = _bootstrap(data, _perplexity_ratio, seed)
    return PairedRatio(ratio, lo, hi, n, "document")


@dataclass(frozen=True)
class PairedDifference:
    """Mean of run A minus mean of run B over the same `n` items (documents), with its paired
    95% interval: for accuracies, where a difference in points reads better than a ratio."""

    diff: float
    lo: float
    hi: float
    n: int

    def verdict(self, above: str = "higher", below: str = "lower") -> str:
        """`above` when the whole interval is above 0, `below` when it is below."""
        return _verdict(self.lo, self.hi, self.n, 0.0, above, below, "document")

    def text(self, scale: float = 100.0, digits: int = 1) -> str:
        """`diff [lo, hi]` times `scale` (points of accuracy by default)."""
        d = f"{scale * self.diff:+.{digits}f}"
        if math.isnan(self.lo):
            return f"{d} [no interval]"
        return f"{d} [{scale * self.lo:+.{digits}f}, {scale * self.hi:+.{digits}f}]"


def _mean_difference(a, b, axis=-1):
    return np.mean(a, axis) - np.mean(b, axis)


def paired_difference(a, b, seed: int = 0) -> PairedDifference:
    """mean(a) - mean(b), item i of both being the same document, with a paired interval."""
    data = [np.asarray(x, dtype=np.float64) for x in (a, b)]
    n = len(data[0])
    if len(data[1]) != n or n == 0:
        raise ValueError(f"paired samples need equal, non-zero lengths, got {n}, {len(data[1])}")
    diff = float(_mean_difference(*data))
    if n < MIN_SEQUENCES:
        return PairedDifference(diff, math.nan, math.nan, n)
    if np.array_equal(data[0], data[1]):
        return PairedDifference(diff, diff, diff, n)  # identical runs: nothing to resample
    lo, hi = _bootstrap(data, _mean_difference, seed)
    return PairedDifference(diff, lo, hi, n)


def _per_sequence(data: list[np.ndarray]) -> np.ndarray:
    num_a, den_a, num_b, den_b = data
    with np.errstate(divide="ignore", invalid="ignore"):
        return (num_a / den_a) / (num_b / den_b)
