"""How unusual a target's recent anomaly scores are *for that target*, and new extremes.

A raw anomaly score (:mod:`analytics.anomaly`) means different things on
different series: a noisy KPI scores high all day. So, as HTM's *anomaly
likelihood* does (Ahmad et al., "Unsupervised real-time anomaly detection
for streaming data", 2017), each target's raw scores are judged against
their own history, vectorised over targets:

- the mean of the last ``AVERAGE`` raw scores is compared with the normal
  distribution of those means so far (a mean and variance over the last
  ``HISTORY`` values, floored so that a quiet series does not alarm on
  its first blip); its likelihood ``L`` goes on a log scale,
  ``log(1 - L) / log(1e-10)``, so 0.5 is ``L = 0.99999``;
- a *spatial* anomaly, a value more than ``TOLERANCE`` of the range seen
  so far beyond that range (a new extreme), scores 1.

The first ``LEARN`` values are learnt from by neither (start-up
transients); the distribution of means is then estimated over
``ESTIMATE`` values. Until then the raw score stands (the cold start).
Parameters are per value; the NAB benchmark (``benchmarks/nab.py``) chose them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from analytics.streaming import grow
from analytics.table import Floats, Ints

AVERAGE = 20
HISTORY = 8640
LEARN = 288
ESTIMATE = 100
MEAN_FLOOR = 0.03
VARIANCE_FLOOR = 0.0003
TOLERANCE = 0.05
_LOG_FLOOR = math.log(1.0 - 0.9999999999)


def log_scale(likelihood: Floats) -> Floats:
    """A likelihood on the log scale of HTM: 0.5 at 0.99999, 1 at 1 - 1e-10."""
    out: Floats = np.log(1.0000000001 - likelihood) / _LOG_FLOOR
    return out


class Likelihood:
    """Per target: the recent raw scores, the distribution of their means, the range seen."""

    def __init__(self) -> None:
        self.recent: Floats = np.zeros((16, AVERAGE))
        self.count: Floats = np.zeros(16)
        """Values taken per target."""
        self.mean: Floats = np.zeros(16)
        self.var: Floats = np.zeros(16)
        self.low: Floats = np.full(16, np.nan)
        self.high: Floats = np.full(16, np.nan)

    def ensure(self, size: int) -> None:
        self.recent = grow(self.recent, size, 0.0)
        self.count = grow(self.count, size, 0.0)
        self.mean = grow(self.mean, size, 0.0)
        self.var = grow(self.var, size, 0.0)
        self.low = grow(self.low, size, np.nan)
        self.high = grow(self.high, size, np.nan)

    def arrays(self) -> list[Floats]:
        """The per-target arrays (their state), in a fixed order."""
        return [self.recent, self.count, self.mean, self.var, self.low, self.high]

    def score(self, idx: Ints, raw: Floats, x: Floats) -> Floats:
        """The final scores of new values ``x`` of targets ``idx`` with raw scores ``raw``."""
        self.ensure(int(idx.max()) + 1 if len(idx) else 0)
        taken = self.count[idx]
        self.recent[idx, (taken % AVERAGE).astype(np.int64)] = raw
        averaged = self.recent[idx].sum(axis=1) / np.minimum(taken + 1, AVERAGE)
        mean = np.maximum(self.mean[idx], MEAN_FLOOR)
        sd = np.sqrt(np.maximum(self.var[idx], VARIANCE_FLOOR))
        temporal = log_scale(ndtr((averaged - mean) / sd))
        low, high = self.low[idx], self.high[idx]
        margin = (high - low) * TOLERANCE
        with np.errstate(invalid="ignore"):
            spatial = (high > low) & ((x > high + margin) | (x < low - margin))
        ready = taken >= LEARN + ESTIMATE
        out: Floats = np.where(ready, np.maximum(temporal, spatial.astype(np.float64)), raw)
        # Then learn: the means once past the start-up, the range from the first value.
        learning = taken >= LEARN
        if learning.any():
            at = idx[learning]
            seen = np.minimum(taken[learning] - LEARN + 1, HISTORY)
            w = 1.0 / seen
            d = averaged[learning] - self.mean[at]
            self.mean[at] += w * d
            self.var[at] = (1.0 - w) * (self.var[at] + w * d * d)
        self.low[idx] = np.fmin(low, x)
        self.high[idx] = np.fmax(high, x)
        self.count[idx] = taken + 1
        return out
