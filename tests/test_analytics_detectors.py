"""The episode state machine (persistence, hysteresis), and conditions analytics refuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from analytics.compare import cleared, holds
from analytics.episodes import Episodes
from analytics.validate import check_conditions
from tests.analytics_support import T0, cpu_high, rps_absent


def run(
    cond_overrides: dict[str, Any], timeline: Sequence[tuple[float, float | None]]
) -> list[str]:
    """Feed (sample time after T0, value) readings of one target; returns ``"<t> <event>"``."""
    cond = cpu_high(**cond_overrides)
    assert cond.threshold is not None
    clear = cond.threshold if cond.clear is None else cond.clear
    episodes = Episodes(for_s=cond.for_s, clear_for_s=cond.clear_for_s, n_of_m=cond.n_of_m)
    episodes.ensure(1)
    idx = np.array([0])
    out = []
    for offset, value in timeline:
        v = np.array([np.nan if value is None else value])
        at = np.array([np.nan if value is None else T0 + offset])
        step = episodes.step(
            idx, holds(cond.op, v, cond.threshold), cleared(cond.op, v, clear), at, T0 + offset
        )
        out += [f"{offset:g} ONSET"] * len(step.onset) + [f"{offset:g} ABATED"] * len(step.abated)
    return out


def test_below_threshold_with_hysteresis() -> None:
    # Requests per second below 10 for 20s; cleared only at 20 or more.
    low = {"kpi": "rps", "op": "<", "threshold": 10.0, "clear": 20.0, "for_s": 20.0}
    timeline = [(0, 5.0), (10, 5.0), (20, 9.0), (30, 15.0), (40, 19.9), (50, 20.0), (60, 25.0)]
    assert run(low, timeline) == ["20 ONSET", "50 ABATED"]


def test_exactly_at_the_threshold() -> None:
    # ">" is strict, ">=" is not; the clear value itself clears a ">" condition.
    at_75 = [(0, 75.0), (10, 75.0)]
    assert run({"for_s": 0.0}, at_75) == []
    assert run({"for_s": 0.0, "op": ">="}, at_75) == ["0 ONSET"]
    assert run({"for_s": 0.0}, [(0, 76.0), (10, 65.0)]) == ["0 ONSET", "10 ABATED"]
    assert run({"for_s": 0.0}, [(0, 76.0), (10, 65.1)]) == ["0 ONSET"]


def test_equality_operators() -> None:
    assert run(
        {"for_s": 0.0, "op": "==", "threshold": 0.0, "clear": None}, [(0, 1.0), (5, 0.0), (9, 1.0)]
    ) == ["5 ONSET", "9 ABATED"]
    assert run(
        {"for_s": 0.0, "op": "!=", "threshold": 1.0, "clear": None}, [(0, 1.0), (5, 0.0), (9, 1.0)]
    ) == ["5 ONSET", "9 ABATED"]


def test_missing_data_resets_a_pending_episode() -> None:
    timeline = [(0, 90.0), (20, None), (30, 90.0), (50, 90.0), (60, 90.0)]
    assert run({}, timeline) == ["60 ONSET"]


def test_for_is_timed_from_sample_timestamps_not_from_evaluations() -> None:
    # The same reading judged again (no newer sample) does not advance the timer.
    timeline = [(0, 90.0), (0, 90.0), (0, 90.0), (29, 90.0), (30, 90.0)]
    assert run({}, timeline) == ["30 ONSET"]


def test_flapping_around_the_threshold_raises_one_episode_with_hysteresis() -> None:
    flapping = [(t, 76.0 if t % 20 == 0 else 74.0) for t in range(0, 200, 10)]
    # Without hysteresis every crossing is an episode; with clear 65 it is one.
    assert len(run({"for_s": 0.0, "clear": None}, flapping)) == 20
    assert run({"for_s": 0.0, "clear": 65.0}, flapping) == ["0 ONSET"]


def test_clear_for_keeps_firing_until_cleared_long_enough() -> None:
    timeline = [(0, 90.0), (10, 50.0), (20, 80.0), (30, 50.0), (40, 50.0), (60, 50.0)]
    assert run({"for_s": 0.0, "clear_for_s": 30.0}, timeline) == ["0 ONSET", "60 ABATED"]


def test_n_of_m_counts_readings_that_hold() -> None:
    # 3 of the last 5 readings above 75; unknown readings record nothing.
    timeline = [(0, 80.0), (10, 50.0), (20, None), (30, 80.0), (40, 50.0), (50, 80.0), (60, 50.0)]
    assert run({"for_s": 0.0, "n_of_m": (3, 5)}, timeline) == ["50 ONSET", "60 ABATED"]


def test_n_of_m_forgets_old_breaches() -> None:
    timeline = [(0, 80.0), (10, 50.0), (20, 50.0), (30, 80.0), (40, 50.0), (50, 50.0), (60, 80.0)]
    assert run({"for_s": 0.0, "n_of_m": (2, 3)}, timeline) == []


def test_nan_never_breaches_and_inf_does() -> None:
    assert run({"for_s": 0.0}, [(0, float("nan")), (5, float("inf"))]) == ["5 ONSET"]
    low = {"for_s": 0.0, "op": "<", "threshold": 1.0, "clear": 5.0}
    assert run(low, [(0, float("nan")), (5, float("-inf"))]) == ["5 ONSET"]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"threshold": None}, "a threshold condition needs a threshold"),
        ({"clear": 80.0}, "clear 80.0 must be <= threshold 75.0"),
        ({"op": "<", "threshold": 10.0, "clear": 5.0}, "clear 5.0 must be >= threshold 10.0"),
        ({"for_s": -1.0}, "for_s and clear_for_s must not be negative"),
        ({"function": "rate"}, "rate needs a window"),
        (
            {"function": "quantile_over_time", "range_s": 60.0},
            "quantile_over_time needs a quantile",
        ),
        ({"n_of_m": (4, 3)}, "n_of_m needs 1 <= N <= M <= 64"),
        ({"n_of_m": (2, 3)}, "give for_s or n_of_m, not both"),
        ({"aggregate": "quantile"}, "aggregate quantile needs aggregate_quantile"),
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
