"""Detectors that judge a target's value: whether it holds, whether it has cleared.

A :class:`Judge` turns the readings of a condition's targets into a
*signal* per target (what is compared: the value itself, its forecast,
its distance from a baseline, an anomaly score) and says where the
condition holds and where it has cleared. Persistence and hysteresis in
time are the episodes' business (:mod:`analytics.episodes`); a judge
only compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from analytics.compare import cleared, holds
from analytics.readings import Readings
from analytics.table import Bools, Floats, Ints
from bus.conditions import ConditionSpec


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

    def judge(self, targets: Ints, readings: Readings, now: float) -> Judged: ...


def clear_of(cond: ConditionSpec) -> float:
    """The clear threshold of a condition (its threshold when unset)."""
    assert cond.threshold is not None, "checked by check_conditions"
    return cond.threshold if cond.clear is None else cond.clear


class ThresholdJudge:
    """The value against the threshold; clears past the clear threshold."""

    name = "threshold"

    def __init__(self, cond: ConditionSpec) -> None:
        assert cond.threshold is not None, "checked by check_conditions"
        self.cond = cond
        self.threshold = cond.threshold
        self.clear = clear_of(cond)

    def judge(self, targets: Ints, readings: Readings, now: float) -> Judged:
        value = readings.value
        return Judged(
            value,
            holds(self.cond.op, value, self.threshold),
            cleared(self.cond.op, value, self.clear),
        )


def judge_for(cond: ConditionSpec) -> Judge:
    """The judge of a value condition, by its kind."""
    if cond.kind == "threshold":
        return ThresholdJudge(cond)
    raise ValueError(f"condition {cond.key}: no judge for kind {cond.kind!r}")
