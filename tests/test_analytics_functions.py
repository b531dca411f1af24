"""Window functions and aggregations on synthetic series, edges included.

Expected values are worked out by hand from the functions' definitions
(Prometheus's, for rate/increase/delta, quantiles and histogram_quantile).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.aggregate import grouped
from analytics.functions import bucket_quantile, compute

NAN, INF = math.nan, math.inf


def series(*points: tuple[float, float], width: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """One row, right-aligned as the series table keeps it."""
    ts = np.full((1, width), -np.inf)
    values = np.full((1, width), np.nan)
    for i, (t, v) in enumerate(points):
        ts[0, width - len(points) + i] = t
        values[0, width - len(points) + i] = v
    return ts, values


def value(function: str, *points: tuple[float, float], range_s: float = 60.0, **kw: float) -> float:
    ts, values = series(*points)
    return float(compute(function, ts, values, range_s, **kw)[0])


GAUGE = [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 40.0)]


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("last", 40.0),
        ("avg_over_time", 25.0),
        ("min_over_time", 10.0),
        ("max_over_time", 40.0),
        ("sum_over_time", 100.0),
        ("count_over_time", 4.0),
        ("last_over_time", 40.0),
        ("stddev_over_time", math.sqrt(125.0)),  # population standard deviation
        ("deriv", 1.0),  # 10 per 10 seconds
    ],
)
def test_over_time_functions(function: str, expected: float) -> None:
    assert value(function, *GAUGE) == pytest.approx(expected)


def test_the_window_ends_at_the_newest_sample_and_excludes_its_start() -> None:
    # (t - 20s, t]: the sample exactly 20s older than the newest is out.
    assert value("count_over_time", *GAUGE, range_s=20.0) == 2.0
    assert value("avg_over_time", *GAUGE, range_s=20.0) == 35.0


def test_a_gap_leaves_the_old_samples_out_of_the_window() -> None:
    gapped = [(0.0, 100.0), (10.0, 100.0), (200.0, 5.0), (210.0, 7.0)]
    assert value("avg_over_time", *gapped, range_s=60.0) == 6.0
    assert math.isnan(value("rate", (0.0, 1.0), (200.0, 5.0), range_s=60.0))  # one in the window


def test_quantile_over_time_interpolates_between_ranks() -> None:
    # Sorted 10, 20, 30, 40: rank 0.9 * 3 = 2.7 -> 30 + 0.7 * 10.
    assert value("quantile_over_time", *GAUGE, quantile=0.9) == pytest.approx(37.0)
    assert value("quantile_over_time", *GAUGE, quantile=0.0) == 10.0
    assert value("quantile_over_time", *GAUGE, quantile=1.0) == 40.0


def test_rate_increase_and_delta_extrapolate_as_prometheus_does() -> None:
    # Samples at 30..60 in a 60s window ending at 60: the first sample is
    # 30s from the window's start, beyond 1.1 average intervals (11s), so
    # extrapolation adds half an interval (5s): 30 of increase over 30s of
    # samples -> 35; for a counter the zero point (0 at 30s: counter 0+)
    # is not reached, 30 / 30 * 35 = 35.
    counter = [(30.0, 100.0), (40.0, 110.0), (50.0, 120.0), (60.0, 130.0)]
    assert value("increase", *counter) == pytest.approx(35.0)
    assert value("rate", *counter) == pytest.approx(35.0 / 60.0)
    assert value("delta", *counter) == pytest.approx(35.0)


def test_a_counter_extrapolates_no_further_back_than_its_zero_point() -> None:
    # A counter that started at 0 at t=0 (first sample 10 at t=10): the
    # start extrapolation stops at the zero point, 10s before the first sample.
    counter = [(10.0, 10.0), (20.0, 20.0), (30.0, 30.0)]
    # to_start = 10 - (30 - 60) = 40 -> zero point 20 * 10/20 = 10s < 40
    # -> 10 < 11 extrapolates fully: 20 * (20 + 10) / 20 = 30.
    assert value("increase", *counter) == pytest.approx(30.0)
    # delta does not treat it as a counter: half an interval, 20 * 25 / 20.
    assert value("delta", *counter) == pytest.approx(25.0)


def test_a_counter_reset_is_not_a_decrease() -> None:
    # 100, 110, then the process restarted: 5, 15. Increase 10 + 5 + 10 = 25,
    # extrapolated by half an interval at the start: 25 * 35 / 30.
    reset = [(30.0, 100.0), (40.0, 110.0), (50.0, 5.0), (60.0, 15.0)]
    assert value("increase", *reset) == pytest.approx(25.0 * 35.0 / 30.0)
    # A gauge that drops does decrease.
    assert value("delta", *reset) == pytest.approx(-85.0 * 35.0 / 30.0)


def test_nan_samples_are_no_values_and_inf_propagates() -> None:
    with_nan = [(0.0, 10.0), (10.0, NAN), (20.0, 30.0)]
    assert value("avg_over_time", *with_nan) == 20.0
    assert value("count_over_time", *with_nan) == 2.0
    assert math.isnan(value("last", (0.0, 10.0), (10.0, NAN)))
    assert value("last_over_time", (0.0, 10.0), (10.0, NAN)) == 10.0
    assert value("max_over_time", (0.0, 10.0), (10.0, INF)) == INF
    assert value("avg_over_time", (0.0, 10.0), (10.0, INF)) == INF
    assert math.isnan(value("avg_over_time", (0.0, -INF), (10.0, INF)))
    assert math.isnan(value("avg_over_time", (0.0, NAN)))  # nothing known: unknown, not 0


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    upper = np.array([[0.1, 0.5, 1.0, INF]] * 4)
    counts = np.array(
        [
            [10.0, 50.0, 90.0, 100.0],  # rank 50: top of (0.1, 0.5]
            [10.0, 30.0, 90.0, 100.0],  # rank 50: 0.5 + 0.5 * 20/60
            [0.0, 0.0, 0.0, 0.0],  # no observations: unknown
            [10.0, 20.0, 30.0, 100.0],  # rank in +Inf: the highest finite bound
        ]
    )
    out = bucket_quantile(0.5, upper, counts)
    assert out[0] == pytest.approx(0.5)
    assert out[1] == pytest.approx(0.5 + 0.5 * 20.0 / 60.0)
    assert math.isnan(out[2])
    assert out[3] == 1.0
    # The lowest bucket starts at 0 when its bound is positive.
    assert bucket_quantile(0.05, upper[:1], counts[:1])[0] == pytest.approx(0.05)
    # Without a +Inf bucket there is no quantile.
    assert math.isnan(bucket_quantile(0.5, np.array([[0.1, 0.5]]), np.array([[1.0, 2.0]]))[0])


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("avg", [2.0, 10.0, NAN]),
        ("max", [3.0, 10.0, NAN]),
        ("min", [1.0, 10.0, NAN]),
        ("sum", [6.0, 10.0, NAN]),
        ("count", [3.0, 1.0, NAN]),
    ],
)
def test_grouped_aggregation_leaves_unknown_out(how: str, expected: list[float]) -> None:
    groups = np.array([0, 0, 0, 1, 1, 2])
    values = np.array([1.0, 2.0, 3.0, 10.0, NAN, NAN])
    out = grouped(how, groups, values, 3)  # type: ignore[arg-type]
    np.testing.assert_array_equal(out, np.array(expected))


def test_grouped_quantile() -> None:
    groups = np.array([0, 0, 0, 0, 1])
    values = np.array([40.0, 10.0, 30.0, 20.0, 5.0])
    out = grouped("quantile", groups, values, 2, q=0.9)
    assert out[0] == pytest.approx(37.0)
    assert out[1] == 5.0
