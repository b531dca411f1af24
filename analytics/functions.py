"""Window functions, vectorised over many series at once.

Each function takes the rows of a :class:`~analytics.table.SeriesTable`
(timestamps and values, time-ordered, right-aligned) and returns one value
per row, NaN where there is none. The window of a row is ``(t - range, t]``
where ``t`` is the row's newest sample: a series is judged on its own time
line, so a result depends on the samples alone, never on when evaluation
runs or on how far the source's clock is from ours.

NaN samples (an exporter's "no value") are not values: they are left out
of every function, and ``last`` of a series whose newest sample is NaN is
NaN. Infinities are values and propagate as IEEE arithmetic says.

``rate``, ``increase`` and ``delta`` follow Prometheus: at least two
samples; for counters a drop is a reset (the value before it is added
back) and the extrapolation towards the window's start stops at the
counter's zero point; the result is extrapolated to the start of the
window when the first sample is within 1.1 average intervals of it, else
by half an interval (the end needs none: the window ends at the newest
sample). ``quantile_over_time`` interpolates linearly between ranks, as
Prometheus's ``quantile`` does, and ``histogram_quantile`` interpolates
linearly within the bucket that holds the rank, as Prometheus does.
"""

from __future__ import annotations

import numpy as np

from analytics.table import Bools, Floats, Ints


def _quiet() -> np.errstate:
    # NaN and infinities are expected inputs: no warnings for them.
    return np.errstate(invalid="ignore", divide="ignore", over="ignore")


def window_mask(ts: Floats, values: Floats, range_s: float) -> Bools:
    """Which samples of each row are in its window and are values."""
    anchor = ts[:, -1:]
    mask: Bools = (ts > anchor - range_s) & ~np.isnan(values)
    return mask


def compute(
    function: str,
    ts: Floats,
    values: Floats,
    range_s: float,
    *,
    quantile: float | None = None,
) -> Floats:
    """``function`` of each row; see the module docstring."""
    if function == "last":
        return values[:, -1].copy()
    mask = window_mask(ts, values, range_s)
    with _quiet():
        if function in ("rate", "increase", "delta"):
            # rate and increase read counters, delta reads gauges (no resets).
            is_counter = np.full(len(ts), function != "delta")
            return extrapolated(ts, values, mask, range_s, is_counter, rate=function == "rate")
        if function == "deriv":
            return deriv(ts, values, mask)
        if function == "quantile_over_time":
            assert quantile is not None, "checked with the condition"
            return quantile_over_time(values, mask, quantile)
        return _over_time(function, ts, values, mask)


def _over_time(function: str, ts: Floats, values: Floats, mask: Bools) -> Floats:
    count = np.count_nonzero(mask, axis=1)
    none = count == 0
    out: Floats
    if function == "count_over_time":
        out = count.astype(np.float64)
    elif function == "last_over_time":
        last = ts.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
        out = values[np.arange(len(values)), last]
    elif function == "max_over_time":
        out = np.where(mask, values, -np.inf).max(axis=1)
    elif function == "min_over_time":
        out = np.where(mask, values, np.inf).min(axis=1)
    else:
        total = np.where(mask, values, 0.0).sum(axis=1)
        if function == "sum_over_time":
            out = total
        else:
            mean = total / count
            if function == "avg_over_time":
                out = mean
            else:
                assert function == "stddev_over_time", function
                spread = np.where(mask, values - mean[:, None], 0.0)
                out = np.sqrt((spread * spread).sum(axis=1) / count)
    return np.where(none, np.nan, out)


def _ends(mask: Bools) -> tuple[Ints, Ints]:
    width = mask.shape[1]
    first = np.argmax(mask, axis=1)
    last = width - 1 - np.argmax(mask[:, ::-1], axis=1)
    return first, last


def extrapolated(
    ts: Floats, values: Floats, mask: Bools, range_s: float, counter: Bools, *, rate: bool
) -> Floats:
    """Prometheus's ``rate``/``increase`` (counters) or ``delta`` (gauges) of each row."""
    rows = np.arange(len(ts))
    count = mask.sum(axis=1)
    first, last = _ends(mask)
    first_v, last_v = values[rows, first], values[rows, last]
    first_t, last_t = ts[rows, first], ts[rows, last]
    result = last_v - first_v
    # Counter resets: a value below the one before it means the counter
    # restarted from zero; add back what it had reached.
    width = ts.shape[1]
    pos = np.where(mask, np.arange(width), -1)
    upto = np.maximum.accumulate(pos, axis=1)
    prev = np.hstack([np.full((len(ts), 1), -1), upto[:, :-1]])
    prev_v = np.take_along_axis(values, np.maximum(prev, 0), axis=1)
    reset = mask & (prev >= 0) & (values < prev_v) & counter[:, None]
    result = result + np.where(reset, prev_v, 0.0).sum(axis=1)

    anchor = ts[:, -1]
    to_start = first_t - (anchor - range_s)
    to_end = anchor - last_t
    sampled = last_t - first_t
    average = sampled / (count - 1)
    to_zero = sampled * (first_v / result)
    clamp = counter & (result > 0) & (first_v >= 0) & (to_zero < to_start)
    to_start = np.where(clamp, to_zero, to_start)
    limit = average * 1.1
    interval = (
        sampled
        + np.where(to_start < limit, to_start, average / 2)
        + np.where(to_end < limit, to_end, average / 2)
    )
    result = result * (interval / sampled)
    if rate:
        result = result / range_s
    return np.where((count >= 2) & (sampled > 0), result, np.nan)


def deriv(ts: Floats, values: Floats, mask: Bools) -> Floats:
    """Per-second slope of each row's least-squares line over its window."""
    with _quiet():
        return _deriv(ts, values, mask)


def _deriv(ts: Floats, values: Floats, mask: Bools) -> Floats:
    count = mask.sum(axis=1)
    t = np.where(mask, ts - ts[:, -1:], 0.0)  # relative times keep precision
    v = np.where(mask, values, 0.0)
    mean_t = t.sum(axis=1) / count
    mean_v = v.sum(axis=1) / count
    dt = np.where(mask, t - mean_t[:, None], 0.0)
    dv = np.where(mask, v - mean_v[:, None], 0.0)
    var = (dt * dt).sum(axis=1)
    slope = (dt * dv).sum(axis=1) / var
    return np.where((count >= 2) & (var > 0), slope, np.nan)


def quantile_over_time(values: Floats, mask: Bools, q: float) -> Floats:
    """The φ-quantile of each row's window values (linear between ranks)."""
    count = mask.sum(axis=1)
    if q < 0 or q > 1:
        return np.where(count > 0, -np.inf if q < 0 else np.inf, np.nan)
    ordered = np.sort(np.where(mask, values, np.inf), axis=1)
    rank = q * (count - 1)
    lo = np.floor(np.maximum(rank, 0)).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    weight = rank - lo
    low = np.take_along_axis(ordered, lo[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, hi[:, None], axis=1)[:, 0]
    out = low + (high - low) * weight
    # Equal neighbours (both infinite, say) are the value whatever the weight.
    out = np.where(low == high, low, out)
    return np.where(count > 0, out, np.nan)


def bucket_quantile(q: float, upper: Floats, counts: Floats) -> Floats:
    """The φ-quantile of each histogram (a row of cumulative bucket counts by upper bound).

    ``upper`` and ``counts`` are (histograms, buckets), sorted by upper
    bound; the last bound must be ``+Inf``. Counts that dip (scrapes of
    buckets a little apart) are made monotonic first, as Prometheus does.
    """
    n, width = counts.shape
    if n == 0:
        return np.empty(0)
    if q < 0 or q > 1:
        return np.full(n, -np.inf if q < 0 else np.inf)
    counts = np.maximum.accumulate(np.nan_to_num(counts, nan=0.0), axis=1)
    total = counts[:, -1]
    rank = q * total
    rows = np.arange(n)
    b = np.argmax(counts >= rank[:, None], axis=1)
    prev_count = np.where(b > 0, counts[rows, np.maximum(b - 1, 0)], 0.0)
    start = np.where(b > 0, upper[rows, np.maximum(b - 1, 0)], 0.0)
    end = upper[rows, b]
    in_bucket = counts[rows, b] - prev_count
    with _quiet():
        out = start + (end - start) * ((rank - prev_count) / in_bucket)
    out = np.where(in_bucket > 0, out, start)
    if width >= 2:
        out = np.where(b == width - 1, upper[:, -2], out)  # the rank is in the +Inf bucket
    out = np.where((b == 0) & (upper[:, 0] <= 0), upper[:, 0], out)
    bad = (total <= 0) | ~np.isposinf(upper[:, -1]) | (width < 2)
    return np.where(bad, np.nan, out)
