"""The condition language in policy files: every kind loads into what analytics evaluates."""

from __future__ import annotations

import pytest

from bus.conditions import AnomalySpec, BaselineSpec, ConditionSpec, ForecastSpec
from policy.conditions import conditions_of
from policy.loader import parse_text

POLICY = """\
apiVersion: assure/v1
kind: KpiPolicy
metadata: {{name: p}}
spec:
  target: {{vnfd: vfw}}
  conditions:
    - {condition}
  action: {{type: scale_out, aspect: fw-scale}}
"""


def problems(condition: str) -> list[str]:
    parsed = parse_text(POLICY.format(condition=condition))
    return [f"{p.place}: {p.message}" for p in parsed.problems]


def load(condition: str) -> ConditionSpec:
    parsed = parse_text(POLICY.format(condition=condition))
    assert not parsed.problems, [p.format() for p in parsed.problems]
    (spec,) = conditions_of([policy for policy, _ in parsed.policies])
    return spec


def test_window_functions_persistence_and_hysteresis_load() -> None:
    spec = load(
        "{name: c, kpi: vnf_requests_total, scope: vnf, function: rate, window: 1m, "
        "aggregate: quantile, aggregate_quantile: 0.9, op: '<', threshold: 5, clear: 8, "
        "n_of_m: [3, 5], clear_for: 2m, labels: {device: eth0}}"
    )
    assert (spec.function, spec.range_s, spec.aggregate, spec.aggregate_quantile) == (
        "rate", 60.0, "quantile", 0.9,
    )  # fmt: skip
    assert (spec.n_of_m, spec.clear_for_s, spec.labels) == ((3, 5), 120.0, {"device": "eth0"})


def test_detector_kinds_load_with_their_settings() -> None:
    forecast = load(
        "{name: c, kind: forecast, kpi: cpu, scope: vnf, op: '>', threshold: 90, "
        "forecast: {method: holt, horizon: 10m, alpha: 0.4}}"
    )
    assert forecast.forecast == ForecastSpec(horizon_s=600.0, method="holt", alpha=0.4)
    baseline = load(
        "{name: c, kind: baseline, kpi: rps, scope: vnfc, baseline: {method: seasonal, band: 4}}"
    )
    assert baseline.baseline == BaselineSpec(method="seasonal", band=4.0)
    assert baseline.op == "!="  # either way, unless said otherwise
    anomaly = load("{name: c, kind: anomaly, kpi: latency, scope: vnfc, anomaly: {score: 0.7}}")
    assert anomaly.anomaly == AnomalySpec(score=0.7)
    stale = load("{name: c, kind: stale, kpi: rps, scope: vnfc, for: 15s}")
    assert stale.kind == "stale"


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("{name: c, kpi: x, scope: vnf, function: rate, op: '>', threshold: 1}",
         "spec.conditions[0].window: function rate needs a window"),
        ("{name: c, kpi: x, scope: vnf, window: 1m, op: '>', threshold: 1}",
         "spec.conditions[0].window: function last reads no window"),
        ("{name: c, kpi: x, scope: vnf, function: histogram_quantile, window: 1m, op: '>', "
         "threshold: 1}",
         "spec.conditions[0].quantile: function histogram_quantile needs a quantile"),
        ("{name: c, kpi: x, scope: vnf, op: '>', threshold: 1, for: 30s, n_of_m: [2, 3]}",
         "spec.conditions[0].n_of_m: give for or n_of_m, not both"),
        ("{name: c, kpi: x, scope: vnf, op: '>', threshold: 1, n_of_m: [4, 3]}",
         "spec.conditions[0].n_of_m: needs 1 <= N <= M <= 64"),
        ("{name: c, kind: forecast, kpi: x, scope: vnf, op: '>', threshold: 1}",
         "spec.conditions[0].forecast: a forecast condition needs forecast"),
        ("{name: c, kind: baseline, kpi: x, scope: vnf, threshold: 3}",
         "spec.conditions[0].threshold: a baseline condition has no threshold"),
        ("{name: c, kind: anomaly, kpi: x, scope: vnf, op: '<'}",
         "spec.conditions[0].op: an anomaly condition compares its score with '>' only"),
        ("{name: c, kpi: x, scope: vnf, op: '>', threshold: 1, baseline: {band: 3}}",
         "spec.conditions[0].baseline: baseline settings need kind: baseline"),
        ("{name: c, kpi: x, scope: vnf, op: '>', threshold: 1, clear_for: 30}",
         "spec.conditions[0].clear_for: a duration needs a unit"),
    ],
)  # fmt: skip
def test_conditions_that_do_not_fit_together_are_refused_at_their_place(
    condition: str, problem: str
) -> None:
    found = problems(condition)
    assert any(p.startswith(problem) for p in found), found
