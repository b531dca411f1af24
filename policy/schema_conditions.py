"""The condition language of KPI policies: what a condition may say, as pydantic models.

The analytics stage evaluates each condition (see :mod:`bus.conditions` for
what every field means there)::

    conditions:
      - name: cpu-high                   # the value against a threshold
        kpi: vnf_cpu_utilisation
        scope: vnf                       # vnf | vnfc | host
        aggregate: avg                   # avg | max | min | sum | count | quantile
        op: ">"                          # > >= < <= == !=
        threshold: 75
        clear: 60                        # hysteresis: ABATED once back to 60
        for: 30s                         # or n_of_m: [3, 5]; clear_for: 1m
      - name: requests-rate
        kpi: vnf_requests_total
        function: rate                   # a window function of each series...
        window: 1m                       # ...over the last minute of samples
        scope: vnf
        aggregate: sum
        op: "<"
        threshold: 10
      - name: latency-p95
        kpi: vnf_request_duration_seconds
        function: histogram_quantile     # from the <kpi>_bucket series
        quantile: 0.95
        window: 1m
        scope: vnfc
        op: ">"
        threshold: 0.05
      - name: cpu-will-saturate          # forecast: will cross 90 within 10m?
        kind: forecast
        kpi: vnf_cpu_utilisation
        scope: vnf
        op: ">"
        threshold: 90
        forecast: {method: holt, horizon: 10m}
      - name: traffic-unusual            # 3 standard deviations off the usual
        kind: baseline
        kpi: vnf_requests_per_second
        scope: vnfc
        op: "!="                         # > above, < below, != either way
        baseline: {method: seasonal, band: 3}
      - name: latency-anomalous          # a learned model's anomaly score
        kind: anomaly
        kpi: vnf_latency_seconds
        scope: vnfc
        anomaly: {score: 0.8}
      - name: requests-absent            # a VNFC that stopped sending the KPI
        kind: absent
        kpi: vnf_requests_per_second
        scope: vnfc
        for: 15s

Every field is checked where it stands, so an error names its own place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, StrictInt, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from bus.conditions import WINDOW_FUNCTIONS, Aggregate, Comparison, Function, Kind
from bus.fields import Duration
from bus.problems import rule_error
from policy.schema_base import NAME_PATTERN, Scope, Strict

_VALUE_KINDS = ("threshold", "forecast")
"""Kinds that compare with a threshold and need ``op`` and ``threshold``."""


class ForecastModel(Strict):
    """``kind: forecast``: will the value cross the threshold within the horizon?"""

    method: Literal["linear", "holt"] = "linear"
    """``linear``: least squares over ``window`` of the target's values;
    ``holt``: double exponential smoothing (level and trend)."""
    horizon: Duration
    window: Duration = 1800.0
    """``linear``: how far back the line is fitted."""
    alpha: float = Field(default=0.5, gt=0.0, le=1.0)
    """Holt: weight of a new value in the level."""
    beta: float = Field(default=0.3, gt=0.0, le=1.0)
    """Holt: weight of a new slope in the trend."""

    @field_validator("horizon", "window")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise PydanticCustomError("positive", "must be longer than 0", {})
        return value


class BaselineModel(Strict):
    """``kind: baseline``: is the value ``band`` standard deviations off its usual?"""

    method: Literal["ewma", "seasonal"] = "ewma"
    band: float = Field(default=3.0, gt=0.0, allow_inf_nan=False)
    """The normal band, in standard deviations."""
    half_life: Duration = 3600.0
    """How fast the baseline forgets (a value this old weighs half)."""
    season: Duration = 86_400.0
    """``seasonal``: the period of the pattern (a day)."""
    buckets: StrictInt = Field(default=24, ge=1, le=10_000)
    """``seasonal``: buckets per season (24: one per hour of the day)."""
    warmup: StrictInt = Field(default=20, ge=2)
    """Values the baseline (each bucket) needs before it judges."""


class AnomalyModel(Strict):
    """``kind: anomaly``: the anomaly score (0..1) of a model of the KPI's recent shape."""

    score: float = Field(default=0.8, gt=0.0, lt=1.0)
    """The score above which a value is anomalous."""
    min_history: StrictInt = Field(default=500, ge=50)
    """Values of the KPI (per VNFD) a model is first trained on; until then a
    streaming statistical detector scores."""
    retrain: Duration = 3600.0
    """How often the model is trained again on the newest history."""


class Condition(Strict):
    """One condition; the analytics stage evaluates it (see :mod:`bus.conditions`)."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: Kind = "threshold"
    kpi: str = Field(min_length=1)
    scope: Scope
    function: Function = "last"
    """What each series contributes: its last sample, or a function over ``window``."""
    window: Duration | None = None
    """The window of ``function`` (required for every function but ``last``)."""
    quantile: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    """φ of ``quantile_over_time`` and ``histogram_quantile``."""
    aggregate: Aggregate | None = None
    """How series, then objects, combine into the target's value (default ``avg``)."""
    aggregate_quantile: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    """φ of ``aggregate: quantile``."""
    op: Comparison | None = Field(default=None, validate_default=True)
    threshold: float | None = Field(default=None, validate_default=True, allow_inf_nan=False)
    clear: float | None = Field(default=None, allow_inf_nan=False)
    """Hysteresis: the value to cross back for ABATED; defaults to the threshold."""
    for_: Duration | None = Field(default=None, alias="for")
    """How long the condition must hold, timed from sample timestamps
    (``absent``/``stale``: how long the series is silent)."""
    startup: Duration | None = None
    """``absent`` only: how long a new VNFC's guest may take to boot and start
    its exporter. A VNFC that has sent no sample yet is silent only from this
    long after it was listed ACTIVE (the cloud reports a server ACTIVE before
    its guest has booted); once it has sent one, silence counts as usual."""
    n_of_m: tuple[StrictInt, StrictInt] | None = None
    """Instead of ``for``: N of the target's last M values must hold."""
    clear_for: Duration | None = None
    """Hysteresis in time: how long the value must stay cleared before ABATED."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra label matchers a sample must carry to count."""
    forecast: ForecastModel | None = None
    baseline: BaselineModel | None = None
    anomaly: AnomalyModel | None = None

    @field_validator("op", "threshold")
    @classmethod
    def _threshold_fields(cls, value: object, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        field = info.field_name
        if kind in _VALUE_KINDS and value is None:
            raise PydanticCustomError(
                "missing_for_kind",
                "required for a {kind} condition (kind defaults to threshold)",
                {"field": field, "kind": kind},
            )
        if kind in ("absent", "stale") and value is not None:
            raise PydanticCustomError(
                "not_for_kind",
                "an {kind} condition has no {field} (it fires when the series stops)",
                {"field": field, "kind": kind},
            )
        if kind in ("baseline", "anomaly") and field == "threshold" and value is not None:
            where = "baseline.band" if kind == "baseline" else "anomaly.score"
            raise PydanticCustomError(
                "not_for_kind",
                "a {kind} condition has no threshold (its {where} is one)",
                {"kind": kind, "where": where},
            )
        if kind == "anomaly" and field == "op" and value not in (None, ">"):
            raise PydanticCustomError(
                "not_for_kind", "an anomaly condition compares its score with '>' only", {}
            )
        return value

    @field_validator("clear")
    @classmethod
    def _clear_on_the_safe_side(cls, value: float | None, info: ValidationInfo) -> Any:
        if value is None:
            return value
        op, threshold = info.data.get("op"), info.data.get("threshold")
        if info.data.get("kind") in ("absent", "stale"):
            raise PydanticCustomError("not_for_kind", "an absent condition has no clear", {})
        if op is None or threshold is None:
            return value  # the missing op/threshold is reported on its own
        if op in (">", ">=") and value > threshold:
            raise PydanticCustomError(
                "clear_side",
                "clear {clear} must not be above threshold {threshold} for op '{op}' "
                "(the condition clears when the value falls back to it)",
                {"clear": f"{value:g}", "threshold": f"{threshold:g}", "op": op},
            )
        if op in ("<", "<=") and value < threshold:
            raise PydanticCustomError(
                "clear_side",
                "clear {clear} must not be below threshold {threshold} for op '{op}' "
                "(the condition clears when the value rises back to it)",
                {"clear": f"{value:g}", "threshold": f"{threshold:g}", "op": op},
            )
        return value

    @model_validator(mode="after")
    def _silence_rules(self) -> Condition:
        if self.kind not in ("absent", "stale"):
            if self.startup is not None:
                raise rule_error(
                    "startup is for absent conditions (how long a new VNFC may stay silent)",
                    "startup",
                )
            return self
        # Absence is detected per VNFC the inventory knows (a VNFC that stopped answering).
        if self.scope != "vnfc":
            raise rule_error(
                f"an {self.kind} condition needs scope vnfc, got {self.scope}", "scope"
            )
        if self.for_ is None:
            raise rule_error(
                f"an {self.kind} condition needs for (how long the series must be silent, "
                "e.g. '15s')",
                "for",
            )
        if self.startup is not None and self.kind == "stale":
            raise rule_error(
                "a stale condition watches only VNFCs that sent the KPI: it has no startup "
                "(use kind absent)",
                "startup",
            )
        return self

    @model_validator(mode="after")
    def _function_rules(self) -> Condition:
        if self.function in WINDOW_FUNCTIONS and self.window is None:
            raise rule_error(f"function {self.function} needs a window, e.g. '1m'", "window")
        if self.function == "last" and self.window is not None:
            raise rule_error("function last reads no window: give a function too", "window")
        needs_q = self.function in ("quantile_over_time", "histogram_quantile")
        if needs_q and self.quantile is None:
            raise rule_error(f"function {self.function} needs a quantile, e.g. 0.95", "quantile")
        if not needs_q and self.quantile is not None:
            raise rule_error(f"function {self.function} takes no quantile", "quantile")
        if (self.aggregate == "quantile") != (self.aggregate_quantile is not None):
            raise rule_error(
                "aggregate quantile and aggregate_quantile go together", "aggregate_quantile"
            )
        return self

    @model_validator(mode="after")
    def _persistence_rules(self) -> Condition:
        if self.n_of_m is not None:
            n, m = self.n_of_m
            if not 1 <= n <= m <= 64:
                raise rule_error(f"needs 1 <= N <= M <= 64, got [{n}, {m}]", "n_of_m")
            if self.for_ is not None:
                raise rule_error("give for or n_of_m, not both", "n_of_m")
            if self.kind in ("absent", "stale"):
                raise rule_error(f"an {self.kind} condition counts silence with for", "n_of_m")
        if self.clear_for is not None and self.kind in ("absent", "stale"):
            raise rule_error(f"an {self.kind} condition abates on the first sample", "clear_for")
        return self

    @model_validator(mode="after")
    def _detector_rules(self) -> Condition:
        own = {"forecast": self.forecast, "baseline": self.baseline, "anomaly": self.anomaly}
        for kind, given in own.items():
            if given is not None and self.kind != kind:
                raise rule_error(f"{kind} settings need kind: {kind}", kind)
        if self.kind == "forecast" and self.forecast is None:
            raise rule_error("a forecast condition needs forecast: {horizon: ...}", "forecast")
        if self.kind == "baseline" and self.op not in (None, ">", "<", "!="):
            raise rule_error("a baseline condition takes op '>', '<' or '!='", "op")
        if self.kind == "anomaly" and self.clear is not None:
            score = (self.anomaly or AnomalyModel()).score
            if self.clear > score:
                raise rule_error(
                    f"clear {self.clear:g} must not be above anomaly.score {score:g} "
                    "(the condition clears when the score falls back to it)",
                    "clear",
                )
        return self

    @property
    def for_s(self) -> float:
        return self.for_ or 0.0
