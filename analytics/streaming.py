"""Streaming statistics per target, vectorised: EWMA and time-of-day baselines.

Each target of a condition has an exponentially weighted mean and variance
of its values, globally and per time-of-day bucket (seasonal), updated
with every new value (a value whose sample time is newer than the last
one taken). A value is judged against the statistics *before* it is taken
in: the z-score says how far it is from what the target usually shows.

Weights come either per value (``alpha``: the share of a new value) or
per time (``half_life_s``: a value that old weighs half, whatever the
sampling interval).
"""

from __future__ import annotations

import numpy as np

from analytics.table import Bools, Floats, Ints


def grow(array: Floats, size: int, fill: float) -> Floats:
    """``array`` with room for ``size`` targets (doubling; new rows hold ``fill``)."""
    if len(array) >= size:
        return array
    shape = (max(size, 2 * len(array)), *array.shape[1:])
    out = np.full(shape, fill)
    out[: len(array)] = array
    return out


class Ewma:
    """An exponentially weighted mean and variance per target, weighted per value."""

    def __init__(self) -> None:
        self.mean: Floats = np.full(16, np.nan)
        self.var: Floats = np.zeros(16)
        self.count: Floats = np.zeros(16)

    def ensure(self, size: int) -> None:
        self.mean = grow(self.mean, size, np.nan)
        self.var = grow(self.var, size, 0.0)
        self.count = grow(self.count, size, 0.0)

    def arrays(self) -> list[Floats]:
        """The per-target arrays (their state), in a fixed order."""
        return [self.mean, self.var, self.count]

    def z(self, idx: Ints, x: Floats) -> Floats:
        """How many standard deviations ``x`` is from each target's mean (NaN: none yet)."""
        mean = self.mean[idx]
        sd = np.sqrt(self.var[idx])
        with np.errstate(invalid="ignore", divide="ignore"):
            # A floor relative to the level: a flat series does not make
            # every wobble infinitely unusual.
            return (x - mean) / (sd + 1e-9 + 1e-6 * np.abs(mean))

    def update(self, idx: Ints, x: Floats, alpha: Floats) -> None:
        first = np.isnan(self.mean[idx])
        mean = np.where(first, x, self.mean[idx])
        d = x - mean
        self.mean[idx] = mean + alpha * d
        self.var[idx] = (1 - alpha) * (self.var[idx] + alpha * d * d)
        self.count[idx] += 1


class Seasonal:
    """An :class:`Ewma` per time-of-day bucket (``buckets`` per ``season_s``) per target."""

    def __init__(self, buckets: int, season_s: float) -> None:
        self.buckets = buckets
        self.season_s = season_s
        self.mean: Floats = np.full((16, buckets), np.nan)
        self.var: Floats = np.zeros((16, buckets))
        self.count: Floats = np.zeros((16, buckets))

    def ensure(self, size: int) -> None:
        self.mean = grow(self.mean, size, np.nan)
        self.var = grow(self.var, size, 0.0)
        self.count = grow(self.count, size, 0.0)

    def bucket(self, at: Floats) -> Ints:
        return bucket_of(at, self.buckets, self.season_s)

    def arrays(self) -> list[Floats]:
        """The per-target arrays (their state), in a fixed order."""
        return [self.mean, self.var, self.count]

    def z(self, idx: Ints, x: Floats, at: Floats, warmup: float) -> Floats:
        b = self.bucket(at)
        mean = self.mean[idx, b]
        sd = np.sqrt(self.var[idx, b])
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (x - mean) / (sd + 1e-9 + 1e-6 * np.abs(mean))
        return np.where(self.count[idx, b] >= warmup, z, np.nan)

    def update(self, idx: Ints, x: Floats, at: Floats, alpha: Floats) -> None:
        b = self.bucket(at)
        first = np.isnan(self.mean[idx, b])
        mean = np.where(first, x, self.mean[idx, b])
        d = x - mean
        self.mean[idx, b] = mean + alpha * d
        self.var[idx, b] = (1 - alpha) * (self.var[idx, b] + alpha * d * d)
        self.count[idx, b] += 1


def bucket_of(at: Floats, buckets: int, season_s: float) -> Ints:
    """The time-of-day bucket of each sample time."""
    phase = np.mod(at, season_s) / season_s
    out: Ints = np.minimum((phase * buckets).astype(np.int64), buckets - 1)
    return out


class Moments:
    """Time-weighted mean and variance per target and bucket.

    Each value weighs ``0.5 ** (age / half_life)``: every new value of a
    target, whatever its bucket, ages the weights of all before it by its
    time since the target's previous value (``keep``), then adds itself
    with weight 1. Mean and variance are the weighted ones, so a long
    half-life judges fairly from the first values on (an EWMA started at
    its first value would understate the spread for a long while).
    """

    def __init__(self, buckets: int = 1, season_s: float = 86_400.0) -> None:
        self.buckets = buckets
        self.season_s = season_s
        self.sum: Floats = np.zeros((16, buckets))
        self.squares: Floats = np.zeros((16, buckets))
        self.weight: Floats = np.zeros((16, buckets))
        self.count: Floats = np.zeros((16, buckets))

    def ensure(self, size: int) -> None:
        self.sum = grow(self.sum, size, 0.0)
        self.squares = grow(self.squares, size, 0.0)
        self.weight = grow(self.weight, size, 0.0)
        self.count = grow(self.count, size, 0.0)

    def bucket(self, at: Floats) -> Ints:
        if self.buckets == 1:
            return np.zeros(len(at), dtype=np.int64)
        return bucket_of(at, self.buckets, self.season_s)

    def mean(self, idx: Ints, at: Floats) -> Floats:
        b = self.bucket(at)
        with np.errstate(invalid="ignore", divide="ignore"):
            out: Floats = self.sum[idx, b] / self.weight[idx, b]
        return out

    def z(self, idx: Ints, x: Floats, at: Floats, warmup: float) -> Floats:
        b = self.bucket(at)
        w = self.weight[idx, b]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.sum[idx, b] / w
            var = np.maximum(self.squares[idx, b] / w - mean * mean, 0.0)
            z = (x - mean) / (np.sqrt(var) + 1e-9 + 1e-6 * np.abs(mean))
        return np.where(self.count[idx, b] >= warmup, z, np.nan)

    def update(self, idx: Ints, x: Floats, at: Floats, keep: Floats) -> None:
        factor = keep[:, None]
        self.sum[idx] *= factor
        self.squares[idx] *= factor
        self.weight[idx] *= factor
        b = self.bucket(at)
        self.sum[idx, b] += x
        self.squares[idx, b] += x * x
        self.weight[idx, b] += 1.0
        self.count[idx, b] += 1


class NewValues:
    """Which readings are new (a sample time later than the last one taken), per target."""

    def __init__(self) -> None:
        self.at: Floats = np.full(16, -np.inf)

    def ensure(self, size: int) -> None:
        self.at = grow(self.at, size, -np.inf)

    def arrays(self) -> list[Floats]:
        """The per-target arrays (their state)."""
        return [self.at]

    def new(self, idx: Ints, value: Floats, at: Floats) -> Bools:
        fresh: Bools = ~np.isnan(value) & np.isfinite(value) & (at > self.at[idx])
        return fresh

    def took(self, idx: Ints, at: Floats) -> Floats:
        """Record ``at`` as taken; returns the time since the previous value (inf: first)."""
        gap = at - self.at[idx]
        self.at[idx] = at
        return gap


def decay(gap_s: Floats, half_life_s: float) -> Floats:
    """How much of their weight earlier values keep ``gap_s`` later (0 for a first value)."""
    gap = np.where(np.isfinite(gap_s), np.maximum(gap_s, 0.0), np.inf)
    keep: Floats = np.power(0.5, gap / half_life_s)
    return keep
