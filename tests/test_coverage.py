"""`nas.coverage`: latency bands cut at the zoo, and the coverage table of trained rows."""

from __future__ import annotations

from nas.coverage import LatencyBands, ZooPoint, coverage_of
from nas.front import TrainedRow


def row(number: int, accuracy: float, latency_ms: float, **fields: object) -> TrainedRow:
    return TrainedRow(
        number=number,
        accuracy=accuracy,
        val_count=10_000,
        latency_ms=latency_ms,
        mflops=100.0,
        params=1_000_000,
        arch=f"arch{number}",
        **fields,
    )


def test_bands_are_cut_at_the_zoo_and_halved_to_the_minimum() -> None:
    bands = LatencyBands.between(5.0, 21.0, cuts=[7.0, 7.2, 13.0, 30.0], minimum=4)
    # 7.2 is closer than a twelfth of the range to 7.0 and 30 is past the limit: left out.
    assert bands.edges == (5.0, 7.0, 13.0, 17.0, 21.0)
    assert [bands.band_of(ms) for ms in (4.0, 5.0, 7.0, 7.01, 20.0, 25.0)] == [0, 0, 0, 1, 3, 3]
    assert bands.counts([5.5, 6.0, 12.0, 21.0]) == [2, 1, 0, 1]
    assert bands.label(1) == "7.00-13.00 ms"


def test_coverage_counts_searched_rows_and_challenges_each_zoo_network() -> None:
    small = row(1, 0.700, 7.0, baseline="mobilenet_v3_small")
    large = row(2, 0.800, 15.0, baseline="mobilenet_v3_large_0.75")
    rows = [
        small,
        large,
        row(10, 0.650, 6.0),
        row(11, 0.705, 6.9),  # a tie with the small zoo network at no more latency
        row(12, 0.860, 12.0),  # beyond the noise above the large one
        row(13, 0.900, 19.0),  # slower than every zoo network: no challenger
    ]
    bands = LatencyBands.between(5.0, 20.0, cuts=[7.0, 15.0], minimum=4)
    zoo = [
        ZooPoint("mobilenet_v3_large_0.75", 15.0, large),
        ZooPoint("mobilenet_v3_small", 7.0, small),
        ZooPoint("mnasnet0_5", 5.5),  # under the budget, never trained, nothing as fast
        ZooPoint("mobilenet_v1_0.25", 4.0),  # faster than the space's fastest network
    ]
    coverage = coverage_of(rows, bands, zoo)
    assert bands.edges == (5.0, 7.0, 11.0, 15.0, 20.0)
    assert coverage.counts == (2, 0, 1, 1)  # the baselines are not searched candidates
    unreachable, first, second, third = coverage.challenges
    assert unreachable.verdict == "faster than the space's fastest network (5.00 ms)"
    assert first.zoo.name == "mnasnet0_5" and first.n_within == 0 and first.best is None
    assert first.verdict == "no searched candidate"
    assert second.zoo.name == "mobilenet_v3_small" and second.n_within == 2
    assert second.fastest.number == 10 and second.best.number == 11
    assert second.verdict.startswith("tie")
    assert third.n_within == 3 and third.fastest.number == 10 and third.best.number == 12
    assert third.verdict.startswith("better by 6.0 points")
    assert coverage.uncovered == ["mnasnet0_5"]
    text = "\n".join(coverage.markdown())
    assert "| 5.00-7.00 ms | 2 |" in text and "trial 12: 86.00% at 12.00 ms" in text
    assert coverage.to_dict()["zoo"][3]["best_trial"] == 12


def test_a_zoo_network_more_accurate_beyond_the_noise_is_said_so() -> None:
    zoo_row = row(1, 0.90, 10.0, baseline="mobilenet_v2_0.5")
    bands = LatencyBands.between(5.0, 12.0, cuts=[10.0])
    coverage = coverage_of(
        [zoo_row, row(5, 0.80, 9.0)], bands, [ZooPoint(zoo_row.baseline, 10.0, zoo_row)]
    )
    assert coverage.challenges[0].verdict.startswith("worse by 10.0 points")
