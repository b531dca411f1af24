"""The detectors beyond the threshold at the edges: NaN and Inf, gaps, late samples.

Synthetic series of one VNFC go through the same engine the stage runs
(the replay, in time order; the stage over Redis for samples out of order).
"""

from __future__ import annotations

import math
import random
from typing import Any

from analytics.replay import replay
from bus.conditions import AnomalySpec, BaselineSpec, ConditionSpec, ForecastSpec
from bus.contracts import Sample, TargetKind
from bus.keys import Keys
from mano_core.inventory import Inventory
from tests.analytics_support import CPU, T0, analytics, cpu_high, vnf, vnfc, vnfc_batch

STEP = 10.0
LABELS = {"vnf": "fw-1", "vnfc": "c1", "vnfd": "fw", "host": "h1"}


def linear() -> ConditionSpec:
    return cpu_high(
        name="will-saturate", kind="forecast", threshold=90.0, clear=80.0, for_s=0.0,
        scope=TargetKind.VNFC,
        forecast=ForecastSpec(horizon_s=300.0, method="linear", window_s=300.0),
    )  # fmt: skip


def holt() -> ConditionSpec:
    return cpu_high(
        name="will-saturate", kind="forecast", threshold=90.0, clear=80.0, for_s=0.0,
        scope=TargetKind.VNFC, forecast=ForecastSpec(horizon_s=300.0, method="holt"),
    )  # fmt: skip


def baseline() -> ConditionSpec:
    return cpu_high(
        name="unusual", kind="baseline", op="!=", threshold=None, clear=None, for_s=0.0,
        scope=TargetKind.VNFC,
        baseline=BaselineSpec(method="ewma", band=4.0, half_life_s=3600.0, warmup=10),
    )  # fmt: skip


def anomaly() -> ConditionSpec:
    return cpu_high(
        name="odd", kind="anomaly", scope=TargetKind.VNFC, threshold=None, clear=None,
        for_s=0.0, anomaly=AnomalySpec(score=0.5, min_history=200, retrain_s=3600.0),
    )  # fmt: skip


def noise(n: int = 300, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [50.0 + rng.gauss(0, 1) for _ in range(n)]


def events(
    cond: ConditionSpec, values: list[float], times: list[float] | None = None
) -> list[tuple[float, str]]:
    """``(sample index, status)`` of each event of ``cond`` on the series."""
    times = times or [T0 + i * STEP for i in range(len(values))]
    samples = [Sample(CPU, LABELS, t, v) for t, v in zip(times, values, strict=True)]
    found = replay(samples, [cond], stale_after_s=30.0).events
    return [(times.index(e.at), e.status.value) for e in found]


def test_nan_and_inf_neither_fire_nor_poison_the_baseline_and_the_anomaly_score() -> None:
    # A NaN or an Inf is no value to them: not judged, not learned, so
    # the spike 100 samples later is found exactly as without it.
    for cond in (baseline(), anomaly()):
        clean = noise()
        clean[250] = 95.0
        expected = events(cond, clean)
        assert (250, "ONSET") in expected
        for bad in (math.nan, math.inf, -math.inf):
            series = list(clean)
            series[150] = bad
            assert events(cond, series) == expected, (cond.kind, bad)


def test_inf_breaches_a_forecast_as_it_breaches_a_threshold_and_nan_does_not() -> None:
    for cond in (linear(), holt()):
        series = noise()
        series[150] = math.inf
        assert events(cond, series) == [(150, "ONSET"), (151, "ABATED")]
        series[150] = math.nan
        assert events(cond, series) == []


def test_a_forecast_does_not_extrapolate_two_samples_after_a_gap() -> None:
    # Two hours without samples, then the same noise: no line through two
    # points. A real climb after the gap is still forecast, once the
    # samples span half the window.
    values = noise()
    times = [T0 + i * STEP + (7200.0 if i >= 200 else 0.0) for i in range(len(values))]
    for cond in (linear(), holt()):
        assert events(cond, values, times) == []
    climbing = values[:200] + [50.0 + 0.5 * k for k in range(100)]
    found = events(linear(), climbing, times)
    assert found and found[0][1] == "ONSET"
    # 0.5 per sample: 15 more in the 300 s horizon; 90 forecast from 75 on.
    assert 200 + 15 <= found[0][0] <= 200 + 52


async def test_a_late_sample_is_neither_judged_nor_learned_by_the_detectors(
    redis: Any, keys: Keys
) -> None:
    # A sample older than the newest is history: it may fill a window,
    # but the value judged is the newest, and the statistics learn each
    # value once, in time order.
    fw = vnf("fw-1", [vnfc("c1")])
    for n, cond in enumerate((baseline(), anomaly(), holt())):
        own = Keys(prefix=f"{keys.prefix}-{n}")  # each detector a deployment of its own
        await Inventory(redis, own).save(fw)
        stage = analytics(redis, own, [cond], stale_after_s=30.0)
        raised = []
        series = noise(260)
        series[250] = 95.0
        for i, value in enumerate(series):
            await stage.ingest(vnfc_batch(fw, CPU, {"c1": value}, T0 + i * STEP))
            if i == 200:  # arrives 50 s late, wildly off
                await stage.ingest(vnfc_batch(fw, CPU, {"c1": 500.0}, T0 + 195 * STEP))
            raised += [(i, v.status.value) for v in await stage.evaluate(T0 + i * STEP)]
        assert raised == events(cond, series)[: len(raised)], cond.kind
        assert (250, "ONSET") in raised, cond.kind
