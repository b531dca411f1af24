"""The conditions the analytics stage must evaluate, taken from the loaded policies."""

from __future__ import annotations

from collections.abc import Iterable

from bus.conditions import AnomalySpec, BaselineSpec, ConditionSpec, ForecastSpec
from bus.contracts import TargetKind
from policy.schema import Condition, KpiPolicy


def conditions_of(policies: Iterable[KpiPolicy]) -> list[ConditionSpec]:
    """One :class:`ConditionSpec` per condition of each policy, in policy order."""
    return [condition_spec(p, c) for p in policies for c in p.spec.conditions]


def condition_spec(policy: KpiPolicy, condition: Condition) -> ConditionSpec:
    """The bus form of one condition of ``policy``."""
    scope = TargetKind(condition.scope)
    threshold = condition.threshold
    op = condition.op or ">"
    baseline = anomaly = forecast = None
    if condition.forecast is not None:
        f = condition.forecast
        forecast = ForecastSpec(
            horizon_s=f.horizon, method=f.method, window_s=f.window, alpha=f.alpha, beta=f.beta
        )
    if condition.kind == "baseline":
        b = condition.baseline
        baseline = BaselineSpec() if b is None else BaselineSpec(
            method=b.method, band=b.band, half_life_s=b.half_life, season_s=b.season,
            buckets=b.buckets, warmup=b.warmup,
        )  # fmt: skip
        op = condition.op or "!="
    if condition.kind == "anomaly":
        a = condition.anomaly
        anomaly = AnomalySpec() if a is None else AnomalySpec(
            score=a.score, min_history=a.min_history, retrain_s=a.retrain
        )  # fmt: skip
    return ConditionSpec(
        policy=policy.name,
        name=condition.name,
        kind=condition.kind,
        kpi=condition.kpi,
        scope=scope,
        # Host series carry no VNFD label: filtering them by VNFD would hide
        # every host. The engine narrows a host violation to the policy's
        # VNFD when it picks the VNFCs on that host.
        # An NS's value combines all its VNFs, whatever their VNFD.
        vnfd=None if scope in (TargetKind.HOST, TargetKind.NS) else policy.vnfd,
        function=condition.function,
        range_s=condition.window or 0.0,
        quantile=condition.quantile,
        aggregate=condition.aggregate or "avg",
        aggregate_quantile=condition.aggregate_quantile,
        op=op,
        threshold=threshold,
        clear=condition.clear,
        for_s=condition.for_s,
        startup_s=condition.startup or 0.0,
        n_of_m=condition.n_of_m,
        clear_for_s=condition.clear_for or 0.0,
        labels=dict(condition.labels),
        forecast=forecast,
        baseline=baseline,
        anomaly=anomaly,
    )
