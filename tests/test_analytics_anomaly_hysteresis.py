"""An anomaly score flapping around its threshold raises one episode, not one per crossing.

As a threshold condition's ``clear``, an anomaly condition's ``clear`` is
the score to fall back to for ABATED: above it the episode stays open
while the score wanders back and forth across ``anomaly.score``.
"""

from __future__ import annotations

import random

import pytest

from analytics.anomaly import AnomalyJudge
from analytics.engine import Engine
from bus.conditions import AnomalySpec, ConditionSpec
from bus.contracts import Sample, TargetKind, Violation, ViolationStatus
from tests.analytics_support import CPU, T0, cpu_high, vnf, vnfc

SCORE = 0.5
CLEAR = 0.2
LABELS = {"vnf": "fw-1", "vnfc": "c1", "vnfd": "fw", "host": "h1"}
STAIRS = 450
"""Where the staircase starts (the scorer has learnt the noise by then)."""


def odd(name: str, clear: float | None) -> ConditionSpec:
    return cpu_high(
        name=name, kind="anomaly", scope=TargetKind.VNFC, threshold=None, clear=clear,
        for_s=0.0, anomaly=AnomalySpec(score=SCORE, min_history=10**9, retrain_s=3600.0),
    )  # fmt: skip


def values() -> list[float]:
    """Noise while the scorer learns, then a staircase: every third value a new high."""
    rng = random.Random(3)
    out: list[float] = []
    for k in range(520):
        x = 50.0 + rng.gauss(0.0, 2.0)
        if STAIRS <= k < STAIRS + 30 and (k - STAIRS) % 3 == 0:
            high, low = max(out), min(out)
            # Just above the highs at first (unusual), then new extremes.
            x = high + (0.04 if k < STAIRS + 18 else 0.15) * (high - low)
        out.append(x)
    return out


def onsets(events: list[Violation], condition: str) -> int:
    return sum(e.condition == condition and e.status is ViolationStatus.ONSET for e in events)


def on_stairs(events: list[Violation]) -> list[Violation]:
    return [e for e in events if e.at >= T0 + STAIRS * 10.0]


def test_an_anomaly_score_flapping_around_its_threshold_stays_one_episode() -> None:
    engine = Engine([odd("odd", CLEAR), odd("odd-bare", None)], stale_after_s=30.0)
    engine.topology.replace([vnf("fw-1", [vnfc("c1")])])
    judge = next(e.judge for e in engine.evaluators if e.cond.name == "odd")
    assert isinstance(judge, AnomalyJudge)
    events: list[Violation] = []
    scores: list[tuple[float, float]] = []
    for k, x in enumerate(values()):
        ts = T0 + k * 10.0
        engine.ingest([Sample(CPU, LABELS, ts, x)])
        events.extend(on_stairs(engine.evaluate(ts, None).events))
        scores.append((ts, float(judge.scores[0])))

    # The score does flap: above the threshold, back under it (not down to clear), and up again.
    first = next(i for i in range(STAIRS, len(scores)) if scores[i][1] > SCORE)
    settled = next(i for i in range(first, len(scores)) if scores[i][1] <= CLEAR)
    above = [s > SCORE for _, s in scores[first:settled]]
    rises = sum(b and not a for a, b in zip([False, *above], above, strict=False))
    assert rises >= 3
    # Without a clear level every rise is an episode of its own...
    assert onsets(events, "odd-bare") == rises
    # ...with one, a single ONSET, and ABATED once the score is down to clear.
    mine = [(e.status, e.at) for e in events if e.condition == "odd"]
    assert mine == [
        (ViolationStatus.ONSET, scores[first][0]),
        (ViolationStatus.ABATED, scores[settled][0]),
    ]


def test_an_anomaly_clear_above_its_score_is_refused() -> None:
    # It would hold and clear at once between the two: ONSET and ABATED on every value.
    refused = r"fw-scale-out/odd: clear 0\.9 must be <= anomaly\.score 0\.5"
    with pytest.raises(ValueError, match=refused):
        Engine([odd("odd", 0.9)])
