"""``kind: forecast``: will the value cross the threshold within the horizon?

So that scaling can start before the objective breaks, a forecast
condition holds when the target's value is, or is forecast to be within
``horizon_s``, beyond the threshold: its signal is the worse of the value
now and the forecast (the larger for ``>``/``>=``, the smaller for
``<``/``<=``); it clears when both are back past the clear threshold.

- ``linear``: the least-squares line through the target's values of the
  last ``window_s``, extended ``horizon_s`` past the newest, once those
  values span half the window at least (a line through two samples
  after a gap would extrapolate their noise).
- ``holt``: double exponential smoothing of every value, with irregular
  intervals: the level moves towards each value by ``alpha``, the trend
  (per second) towards the level's latest slope by ``beta``; the forecast
  is level + trend x horizon (from the third value on).

Each target keeps its recent values in a bounded ring (the newest 128).
"""

from __future__ import annotations

import numpy as np

from analytics.functions import deriv
from analytics.judges import Judged, compared, number
from analytics.readings import Readings
from analytics.streaming import NewValues
from analytics.table import Floats, Ints
from bus.conditions import Comparison, ConditionSpec
from bus.units import format_duration

RING = 128


class ForecastJudge:
    """See the module docstring."""

    def __init__(self, cond: ConditionSpec) -> None:
        assert cond.forecast is not None and cond.threshold is not None, "checked by validate"
        self.spec = cond.forecast
        self.name = f"forecast/{self.spec.method}"
        self.op: Comparison = cond.op
        self.threshold = cond.threshold
        self.clear = cond.threshold if cond.clear is None else cond.clear
        self.new = NewValues()
        self.ts: Floats = np.full((16, RING), -np.inf)
        self.values: Floats = np.full((16, RING), np.nan)
        self.level: Floats = np.full(16, np.nan)
        self.trend: Floats = np.zeros(16)
        self.count: Floats = np.zeros(16)
        self.forecast: Floats = np.full(16, np.nan)

    def _ensure(self, size: int) -> None:
        self.new.ensure(size)
        if len(self.level) >= size:
            return
        grow = max(size, 2 * len(self.level)) - len(self.level)
        self.ts = np.vstack([self.ts, np.full((grow, RING), -np.inf)])
        self.values = np.vstack([self.values, np.full((grow, RING), np.nan)])
        self.level = np.r_[self.level, np.full(grow, np.nan)]
        self.trend = np.r_[self.trend, np.zeros(grow)]
        self.count = np.r_[self.count, np.zeros(grow)]
        self.forecast = np.r_[self.forecast, np.full(grow, np.nan)]

    def judge(self, targets: Ints, readings: Readings, now: float) -> Judged:
        self._ensure(int(targets.max()) + 1 if len(targets) else 0)
        value, at = readings.value, readings.at
        fresh = self.new.new(targets, value, at)
        idx, x, t = targets[fresh], value[fresh], at[fresh]
        if len(idx):
            gap = self.new.took(idx, t)
            self.ts[idx, :-1] = self.ts[idx, 1:]
            self.values[idx, :-1] = self.values[idx, 1:]
            self.ts[idx, -1] = t
            self.values[idx, -1] = x
            self.count[idx] += 1
            if self.spec.method == "holt":
                self._holt(idx, x, gap)
            else:
                self._linear(idx)
        forecast = np.where(np.isnan(value), np.nan, self.forecast[targets])
        if self.op in (">", ">="):
            signal = np.fmax(value, forecast)
        elif self.op in ("<", "<="):
            signal = np.fmin(value, forecast)
        else:
            signal = forecast
        return compared(
            self.op, np.where(np.isnan(value), np.nan, signal), self.threshold, self.clear
        )

    def _linear(self, idx: Ints) -> None:
        ts, values = self.ts[idx], self.values[idx]
        inside = (ts > ts[:, -1:] - self.spec.window_s) & ~np.isnan(values)
        slope = deriv(ts, values, inside)
        oldest = np.min(np.where(inside, ts, np.inf), axis=1)
        spanned = ts[:, -1] - oldest >= self.spec.window_s / 2
        self.forecast[idx] = np.where(spanned, values[:, -1] + slope * self.spec.horizon_s, np.nan)

    def _holt(self, idx: Ints, x: Floats, gap: Floats) -> None:
        a, b = self.spec.alpha, self.spec.beta
        level, trend = self.level[idx], self.trend[idx]
        first = np.isnan(level)
        dt = np.where(np.isfinite(gap) & (gap > 0), gap, np.nan)
        predicted = level + trend * np.nan_to_num(dt, nan=0.0)
        new_level = np.where(first, x, a * x + (1 - a) * predicted)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (new_level - level) / dt
        seeded = self.count[idx] == 2
        new_trend = np.where(seeded, slope, b * slope + (1 - b) * trend)
        new_trend = np.where(first | np.isnan(new_trend), trend, new_trend)
        self.level[idx] = new_level
        self.trend[idx] = new_trend
        ready = self.count[idx] >= 3
        self.forecast[idx] = np.where(ready, new_level + new_trend * self.spec.horizon_s, np.nan)

    def phrase(self, subject: str, value: float, signal: float) -> str:
        horizon = format_duration(self.spec.horizon_s)
        return (
            f"{subject} {number(value)} now, {number(signal)} within {horizon} ({self.spec.method})"
        )

    def limit(self, value: float) -> str:
        return number(value)
