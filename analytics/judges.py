"""Detectors that judge a target's value: whether it holds, whether it has cleared.

A :class:`Judge` turns the readings of a condition's targets into a
*signal* per target (what is compared: the value itself, its forecast,
its distance from a baseline, an anomaly score) and says where the
condition holds and where it has cleared. Persistence and hysteresis in
time are the episodes' business (:mod:`analytics.episodes`); a judge
only compares, and says in words what it compared.

- ``threshold``: the value itself.
- ``baseline``: how many standard deviations the value is from its own
  usual (an EWMA, or one per time-of-day bucket, forgetting with
  ``half_life_s``), against ``band``: ``>`` above, ``<`` below, ``!=``
  either way. Each value is judged before it is learned; a baseline
  with fewer than ``warmup`` values (per bucket) does not judge.
- ``forecast`` and ``anomaly``: :mod:`analytics.forecast`, :mod:`analytics.anomaly`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from analytics.compare import cleared, holds
from analytics.readings import Readings
from analytics.streaming import Moments, NewValues, decay
from analytics.table import Bools, Floats, Ints
from bus.conditions import BaselineSpec, Comparison, ConditionSpec


def number(value: float) -> str:
    """A short human form of a value: ``82.1``, ``75``, ``0.0125``, ``1.2e+07``."""
    if not np.isfinite(value):
        return str(value)
    if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3):
        return f"{value:.3g}"
    # One decimal is what a KPI reading needs (82.4%); small values keep
    # three significant digits (0.0125 s).
    text = f"{value:.1f}" if abs(value) >= 1 else f"{value:.3g}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


@dataclass(frozen=True)
class Judged:
    signal: Floats
    """What was compared, per target position (NaN: unknown)."""
    holds: Bools
    cleared: Bools


class Judge(Protocol):
    """Judges the targets of one condition."""

    name: str
    """How evidence names it: ``threshold``, ``forecast/holt``, ..."""
    op: Comparison
    threshold: float
    """What the signal is compared with."""
    clear: float
    """What the signal must cross back for ABATED."""

    def judge(self, targets: Ints, readings: Readings, now: float) -> Judged: ...

    def phrase(self, subject: str, value: float, signal: float) -> str:
        """What was compared, in words: ``avg(cpu) 82.1``."""
        ...

    def limit(self, value: float) -> str:
        """A threshold in words: ``75``, ``3 sd``, ``0.8``."""
        ...


def clear_of(cond: ConditionSpec) -> float:
    """The clear threshold of a condition (its threshold when unset)."""
    assert cond.threshold is not None, "checked by check_conditions"
    return cond.threshold if cond.clear is None else cond.clear


def compared(op: Comparison, signal: Floats, threshold: float, clear: float) -> Judged:
    return Judged(signal, holds(op, signal, threshold), cleared(op, signal, clear))


class ThresholdJudge:
    """The value against the threshold; clears past the clear threshold."""

    name = "threshold"

    def __init__(self, cond: ConditionSpec) -> None:
        assert cond.threshold is not None, "checked by check_conditions"
        self.op: Comparison = cond.op
        self.threshold = cond.threshold
        self.clear = clear_of(cond)

    def judge(self, targets: Ints, readings: Readings, now: float) -> Judged:
        return compared(self.op, readings.value, self.threshold, self.clear)

    def phrase(self, subject: str, value: float, signal: float) -> str:
        return f"{subject} {number(value)}"

    def limit(self, value: float) -> str:
        return number(value)


class BaselineJudge:
    """Distance from the target's own usual, in standard deviations (see the module docstring)."""

    def __init__(self, cond: ConditionSpec) -> None:
        spec = cond.baseline or BaselineSpec()
        self.spec = spec
        self.name = f"baseline/{spec.method}"
        self.direction: Comparison = cond.op
        # The signal is signed for ">" and "<"; for "!=" it is |z| against +band.
        self.op: Comparison = "<" if cond.op == "<" else ">"
        self.threshold = -spec.band if cond.op == "<" else spec.band
        band = spec.band if cond.clear is None else cond.clear
        self.clear = -band if cond.op == "<" else band
        self.new = NewValues()
        buckets = spec.buckets if spec.method == "seasonal" else 1
        self.moments = Moments(buckets, spec.season_s)
        self.z: Floats = np.full(16, np.nan)
        self.usual: Floats = np.full(16, np.nan)

    def judge(self, targets: Ints, readings: Readings, now: float) -> Judged:
        size = int(targets.max()) + 1 if len(targets) else 0
        self.new.ensure(size)
        self.moments.ensure(size)
        if len(self.z) < size:
            grow = np.full(size - len(self.z), np.nan)
            self.z, self.usual = np.r_[self.z, grow], np.r_[self.usual, grow]
        value, at = readings.value, readings.at
        self.z[targets[np.isnan(value)]] = np.nan
        fresh = self.new.new(targets, value, at)
        idx, x, t = targets[fresh], value[fresh], at[fresh]
        if len(idx):
            keep = decay(self.new.took(idx, t), self.spec.half_life_s)
            z = self.moments.z(idx, x, t, warmup=self.spec.warmup)
            self.usual[idx] = self.moments.mean(idx, t)
            self.moments.update(idx, x, t, keep)
            self.z[idx] = np.abs(z) if self.direction == "!=" else z
        return compared(self.op, self.z[targets], self.threshold, self.clear)

    def phrase(self, subject: str, value: float, signal: float) -> str:
        return f"{subject} {number(value)} at {signal:+.1f} sd from its {self.spec.method} baseline"

    def limit(self, value: float) -> str:
        return f"{value:g} sd"


def judge_for(cond: ConditionSpec) -> Judge:
    """The judge of a value condition, by its kind (anomaly judges come from the engine)."""
    from analytics.forecast import ForecastJudge  # noqa: PLC0415 - forecast builds on Judged

    if cond.kind == "threshold":
        return ThresholdJudge(cond)
    if cond.kind == "baseline":
        return BaselineJudge(cond)
    if cond.kind == "forecast":
        return ForecastJudge(cond)
    raise ValueError(f"condition {cond.key}: no judge for kind {cond.kind!r}")
