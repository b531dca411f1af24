"""The condition contract: what the analytics stage evaluates, as the policy stage defines it.

The policy stage turns each condition of a KPI policy into a
:class:`ConditionSpec`; the analytics stage evaluates them and raises
violations that name the policy and the condition. Neither stage imports
the other: this is where they meet.

A condition reads in three steps, each named by a field:

1. ``function`` turns each series' recent samples into one value: the
   ``last`` sample, or a function over the ``range_s`` window that ends at
   the series' newest sample (``avg_over_time``, ``rate``, ...).
2. ``aggregate`` combines the values of the series of one object (a VNFC's
   devices), then of the objects of the target (a VNF's VNFCs, a host's
   VNFCs).
3. The ``kind`` of detector judges the target's value: against a
   ``threshold`` directly, its ``forecast``, its distance from a learned
   ``baseline``, or an ``anomaly`` model's score; ``absent`` and ``stale``
   judge the silence of a VNFC instead. Persistence (``for_s`` or
   ``n_of_m``) and hysteresis (``clear``, ``clear_for_s``) then decide
   when an episode starts (ONSET) and ends (ABATED).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from bus.contracts import TargetKind

Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
Aggregate = Literal["avg", "max", "min", "sum", "count", "quantile"]
Kind = Literal["threshold", "absent", "stale", "forecast", "baseline", "anomaly"]
Function = Literal[
    "last",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "quantile_over_time",
    "stddev_over_time",
    "rate",
    "increase",
    "delta",
    "deriv",
    "histogram_quantile",
]

WINDOW_FUNCTIONS: frozenset[str] = frozenset(
    {
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "quantile_over_time",
        "stddev_over_time",
        "rate",
        "increase",
        "delta",
        "deriv",
        "histogram_quantile",
    }
)
"""The functions that need a window (``range_s`` > 0)."""

COUNTER_FUNCTIONS: frozenset[str] = frozenset({"rate", "increase", "histogram_quantile"})
"""The functions of counters: a drop in value is a counter reset, not a decrease."""


class ForecastSpec(msgspec.Struct, frozen=True):
    """``kind: forecast``: will the value cross the threshold within ``horizon_s``?"""

    horizon_s: float
    """How far ahead to look."""
    method: Literal["linear", "holt"] = "linear"
    """``linear``: least squares over the last ``window_s`` of the target's values;
    ``holt``: double exponential smoothing (level and trend) of every value."""
    window_s: float = 1800.0
    """``linear``: how far back the line is fitted."""
    alpha: float = 0.5
    """Holt: weight of a new value in the level (0..1]."""
    beta: float = 0.3
    """Holt: weight of a new slope in the trend (0..1]."""


class BaselineSpec(msgspec.Struct, frozen=True):
    """``kind: baseline``: is the value ``band`` standard deviations off what it usually is?"""

    method: Literal["ewma", "seasonal"] = "ewma"
    """``ewma``: one exponentially weighted mean and variance; ``seasonal``: one per
    time-of-day bucket (``buckets`` buckets per ``season_s``)."""
    band: float = 3.0
    """Width of the normal band in standard deviations (the threshold)."""
    half_life_s: float = 3600.0
    """How fast the baseline forgets: a value this old weighs half as much."""
    season_s: float = 86_400.0
    """Seasonal: the period (a day)."""
    buckets: int = 24
    """Seasonal: buckets per period (24: one per hour of the day)."""
    warmup: int = 20
    """Values the baseline (each bucket, for seasonal) needs before it judges."""


class AnomalySpec(msgspec.Struct, frozen=True):
    """``kind: anomaly``: a model's anomaly score of the value's recent shape, 0..1."""

    score: float = 0.8
    """The score above which a value is anomalous (the threshold)."""
    min_history: int = 500
    """Values of the KPI (per VNFD) before a model is trained; until then a
    streaming statistical detector scores."""
    retrain_s: float = 3600.0
    """How often a model is trained again on the newest history."""


class ConditionSpec(msgspec.Struct, frozen=True):
    """One condition of one policy."""

    policy: str
    """The policy's name (``metadata.name``)."""
    name: str
    """The condition's name, unique within its policy."""
    kind: Kind
    """What judges the value; see the module docstring. ``absent``: a VNFC of
    the inventory sent no sample of the KPI for ``for_s`` (never sent counts);
    ``stale``: a VNFC that did send the KPI stopped for ``for_s``."""
    kpi: str
    scope: TargetKind
    """``vnf``: aggregated across the VNF's VNFCs; ``vnfc``: each VNFC on its
    own; ``host``: each host; ``ns``: each NS instance, aggregated across its
    VNFs (each VNF's value aggregated across its VNFCs first)."""
    vnfd: str | None = None
    """Only VNF instances of this VNFD (None: every VNF)."""
    function: Function = "last"
    """What each series contributes; see the module docstring."""
    range_s: float = 0.0
    """The window of a window function, ending at the series' newest sample."""
    quantile: float | None = None
    """φ of ``quantile_over_time`` and ``histogram_quantile`` (0..1)."""
    aggregate: Aggregate = "avg"
    """How values combine, in every scope. The several series one VNFC (or one
    object on a host) exposes of the KPI, e.g. one per ``device`` label, combine
    into its value; for scope ``vnf`` the per-VNFC values then combine across
    the VNF's VNFCs, and for scope ``host`` the per-object values across the
    host. Series that differ in their ``host`` label alone are one VNFC that
    moved (a migration): the newest of them speaks for it."""
    aggregate_quantile: float | None = None
    """φ of ``aggregate: quantile``."""
    op: Comparison = ">"
    threshold: float | None = None
    """Required for ``threshold`` and ``forecast`` conditions."""
    clear: float | None = None
    """The value that must be crossed back for ABATED (hysteresis); defaults
    to ``threshold``. For ``>`` it must be <= threshold, for ``<`` >= threshold."""
    for_s: float = 0.0
    """How long the condition must hold before ONSET, timed from sample
    timestamps; for ``absent``/``stale``, how long the series must be silent."""
    startup_s: float = 0.0
    """``absent``: a VNFC that has sent no sample yet is silent only from this
    long after its creation (its guest boots first)."""
    n_of_m: tuple[int, int] | None = None
    """Instead of ``for_s``: ONSET once N of the target's last M values hold."""
    clear_for_s: float = 0.0
    """How long the value must stay cleared before ABATED (hysteresis in time)."""
    labels: dict[str, str] = {}
    """Extra label matchers a sample must carry to count."""
    forecast: ForecastSpec | None = None
    """Required for ``kind: forecast``."""
    baseline: BaselineSpec | None = None
    """For ``kind: baseline`` (defaults when None)."""
    anomaly: AnomalySpec | None = None
    """For ``kind: anomaly`` (defaults when None)."""

    @property
    def key(self) -> str:
        return f"{self.policy}/{self.name}"

    @property
    def series_kpi(self) -> str:
        """The KPI of the series read: ``<kpi>_bucket`` for ``histogram_quantile``."""
        if self.function == "histogram_quantile" and not self.kpi.endswith("_bucket"):
            return f"{self.kpi}_bucket"
        return self.kpi

    @property
    def watches_silence(self) -> bool:
        """Whether it judges silence (``absent``, ``stale``) rather than values."""
        return self.kind in ("absent", "stale")


def breaches(op: Comparison, value: float, threshold: float) -> bool:
    """Whether ``value`` breaks ``threshold`` under ``op``."""
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == "==":
        return value == threshold
    return value != threshold
