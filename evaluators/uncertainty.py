"""How far an accuracy can be trusted, and whether two accuracies differ beyond the noise.

An accuracy measured on n validation images is a proportion with binomial noise: on 1,000
images a network at 83% is anywhere from about 80.7% to 85.4% with 95% confidence, so a front
whose members are a point apart is mostly noise. Every accuracy the project shows therefore
carries its count and an interval, and every comparison says whether the difference is real.

- One split: the Wilson score interval (it stays inside [0, 1] and keeps its coverage near 0 and
  1, where the normal approximation does not), and a pooled two-proportion z-test between two
  accuracies. Two networks scored on the same images make correlated errors, and the unpaired
  test ignores that correlation, which makes it conservative: a difference it calls real is
  real, and some real differences are called ties.
- Several training seeds: the mean and sample standard deviation across seeds, and Welch's
  t-test between the two sets of seed accuracies (training noise, not only split noise).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

LEVEL = 0.95
"""Confidence of every interval and test: the 95% a reader assumes when none is named."""
_Z = float(stats.norm.ppf(0.5 + LEVEL / 2))


def correct_of(accuracy: float, count: int) -> int:
    """Images right out of `count`, from an accuracy rounded to a few decimals."""
    return int(round(accuracy * count))


def format_accuracy(accuracy: float | None, interval: Sequence[float] | None) -> str:
    """``83.5% [81.1, 85.7]``: the accuracy and its 95% interval, in percent."""
    if accuracy is None:
        return "-"
    if not interval:
        return f"{accuracy:.1%}"
    return f"{accuracy:.1%} [{interval[0] * 100:.1f}, {interval[1] * 100:.1f}]"


def wilson_interval(correct: int, count: int) -> tuple[float, float]:
    """The 95% Wilson score interval of `correct` successes out of `count`."""
    if count <= 0:
        return (0.0, 1.0)
    p = correct / count
    denominator = 1 + _Z**2 / count
    centre = (p + _Z**2 / (2 * count)) / denominator
    half = _Z * math.sqrt(p * (1 - p) / count + _Z**2 / (4 * count**2)) / denominator
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exact at the ends, not 1e-17 off
    high = 1.0 if correct == count else min(1.0, centre + half)
    return (low, high)


@dataclass(frozen=True)
class Comparison:
    """Whether `a` is more accurate than `b` beyond the noise, and by how much."""

    difference: float
    p_value: float
    test: str

    @property
    def distinguishable(self) -> bool:
        return self.p_value < 1 - LEVEL

    def describe(self) -> str:
        verdict = "beyond the noise" if self.distinguishable else "within the noise (a tie)"
        return f"{self.difference * 100:+.1f} points, {verdict}: {self.test} {self.p_text}"

    @property
    def p_text(self) -> str:
        """'p = 0.042', or 'p < 0.001' where three decimals would print a misleading zero."""
        return "p < 0.001" if self.p_value < 0.001 else f"p = {self.p_value:.3f}"


def compare_proportions(correct_a: int, count_a: int, correct_b: int, count_b: int) -> Comparison:
    """Pooled two-proportion z-test (two-sided) between accuracies on one split each."""
    if count_a <= 0 or count_b <= 0:
        return Comparison(0.0, 1.0, "two-proportion z-test")
    p_a, p_b = correct_a / count_a, correct_b / count_b
    pooled = (correct_a + correct_b) / (count_a + count_b)
    variance = pooled * (1 - pooled) * (1 / count_a + 1 / count_b)
    if variance == 0:
        p_value = 1.0 if p_a == p_b else 0.0
    else:
        p_value = float(2 * stats.norm.sf(abs(p_a - p_b) / math.sqrt(variance)))
    return Comparison(p_a - p_b, p_value, "two-proportion z-test")


def compare_seeds(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Welch's t-test (two-sided) between the accuracies of several training seeds each."""
    difference = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("comparing across seeds needs at least two seeds on each side")
    if statistics.stdev(a) == 0 and statistics.stdev(b) == 0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return Comparison(difference, p_value, f"Welch t-test over {len(a)} and {len(b)} seeds")


@dataclass(frozen=True)
class SeedSummary:
    """Accuracies of one architecture trained with several seeds."""

    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        """Sample standard deviation across seeds (0 for a single seed)."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0
