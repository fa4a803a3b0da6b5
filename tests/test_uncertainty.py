"""Intervals and comparisons of accuracies, checked against scipy's own implementations."""

from __future__ import annotations

import pytest
from scipy import stats

from nas.evaluators.uncertainty import (
    compare_proportions,
    compare_seeds,
    correct_of,
    format_accuracy,
    wilson_interval,
)
from nas.front import TrainedRow, mark_ties


@pytest.mark.parametrize("correct, count", [(83, 100), (830, 1000), (0, 50), (50, 50), (1, 7)])
def test_wilson_interval_matches_scipy(correct: int, count: int) -> None:
    expected = stats.binomtest(correct, count).proportion_ci(0.95, method="wilson")
    low, high = wilson_interval(correct, count)
    assert low == pytest.approx(expected.low, abs=1e-9)
    assert high == pytest.approx(expected.high, abs=1e-9)
    assert 0.0 <= low <= correct / count <= high <= 1.0


def test_two_proportion_test_matches_the_chi_square_test() -> None:
    # The pooled two-proportion z-test is the 2x2 chi-square test without continuity correction.
    for a, b, n in [(830, 810, 1000), (700, 850, 1000), (45, 40, 50)]:
        table = [[a, n - a], [b, n - b]]
        expected = stats.chi2_contingency(table, correction=False).pvalue
        comparison = compare_proportions(a, n, b, n)
        assert comparison.p_value == pytest.approx(expected, rel=1e-9)
        assert comparison.difference == pytest.approx((a - b) / n)


def test_a_point_on_a_thousand_images_is_a_tie_and_fifteen_are_not() -> None:
    assert not compare_proportions(830, 1000, 820, 1000).distinguishable
    assert compare_proportions(850, 1000, 700, 1000).distinguishable
    assert "a tie" in compare_proportions(830, 1000, 820, 1000).describe()


def test_seed_comparison_is_welch() -> None:
    a, b = [0.80, 0.82, 0.81], [0.70, 0.72, 0.69]
    comparison = compare_seeds(a, b)
    assert comparison.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert comparison.distinguishable and "3 and 3 seeds" in comparison.test
    with pytest.raises(ValueError):
        compare_seeds([0.8], [0.7, 0.71])


def test_front_members_are_marked_against_the_next_cheaper_one() -> None:
    def row(number: int, accuracy: float, ms: float, count: int | None = 1000) -> TrainedRow:
        return TrainedRow(
            number=number,
            accuracy=accuracy,
            val_count=count,
            latency_ms=ms,
            mflops=50.0,
            params=1_000_000,
            arch=f"arch-{number}",
        )

    marked = mark_ties(
        [row(0, 0.70, 5.0), row(1, 0.71, 6.0), row(2, 0.85, 7.0), row(3, 0.86, 8.0, count=None)]
    )
    assert [r.vs_cheaper for r in marked] == [None, "tie", "better", None]
    assert marked[1].p_vs_cheaper > 0.05 > marked[2].p_vs_cheaper


def test_accuracies_print_with_their_interval() -> None:
    assert correct_of(0.8349999, 1000) == 835
    assert format_accuracy(0.835, (0.8113, 0.8567)) == "83.5% [81.1, 85.7]"
    assert format_accuracy(0.835, None) == "83.5%" and format_accuracy(None, None) == "-"
