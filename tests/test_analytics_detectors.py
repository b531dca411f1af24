"""The threshold state machine for "below" conditions, and conditions analytics refuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from analytics.detectors import DetectorState, check_conditions, step_threshold
from analytics.readings import Reading
from bus.contracts import Target, TargetKind, ViolationStatus
from tests.analytics_support import T0, cpu_high, rps_absent

FW = Target(kind=TargetKind.VNF, id="fw-1", vnf="fw-1", vnfd="fw")


def run(
    cond_overrides: dict[str, Any], timeline: Sequence[tuple[float, float | None]]
) -> list[str]:
    """Feed (seconds after T0, value) readings; returns ``"<offset> <event>"`` per event."""
    cond = cpu_high(**cond_overrides)
    state: DetectorState | None = None
    out = []
    for offset, value in timeline:
        values = {} if value is None else {"c1": value}
        step = step_threshold(cond, state, Reading(FW, value, values), T0 + offset)
        state = step.state
        if step.event is not None:
            out.append(f"{offset:g} {step.event.value}")
    return out


def test_below_threshold_with_hysteresis() -> None:
    # Requests per second below 10 for 20s; cleared only at 20 or more.
    low = {"kpi": "rps", "op": "<", "threshold": 10.0, "clear": 20.0, "for_s": 20.0}
    timeline = [(0, 5.0), (10, 5.0), (20, 9.0), (30, 15.0), (40, 19.9), (50, 20.0), (60, 25.0)]
    assert run(low, timeline) == [f"20 {ViolationStatus.ONSET}", f"50 {ViolationStatus.ABATED}"]


def test_missing_data_resets_a_pending_episode() -> None:
    timeline = [(0, 90.0), (20, None), (30, 90.0), (50, 90.0), (60, 90.0)]
    assert run({}, timeline) == [f"60 {ViolationStatus.ONSET}"]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"threshold": None}, "a threshold condition needs a threshold"),
        ({"clear": 80.0}, "clear 80.0 must be <= threshold 75.0"),
        ({"op": "<", "threshold": 10.0, "clear": 5.0}, "clear 5.0 must be >= threshold 10.0"),
        ({"for_s": -1.0}, "for_s must not be negative"),
    ],
)
def test_conditions_that_cannot_be_evaluated_are_refused(
    overrides: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=f"fw-scale-out/cpu-high: {problem}"):
        check_conditions([cpu_high(**overrides)])


def test_absent_needs_a_duration_and_keys_are_unique() -> None:
    with pytest.raises(ValueError, match="needs for_s > 0"):
        check_conditions([rps_absent(for_s=0.0)])
    with pytest.raises(ValueError, match="appears twice"):
        check_conditions([cpu_high(), cpu_high()])
