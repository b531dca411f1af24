"""Violation events: the ONSET and ABATED messages and the evidence they carry.

Each event says in one line why it was raised, e.g.
``avg(vnf_cpu_utilisation) 82.1 > 75 for 30s``,
``avg(rate(vnf_requests_total[1m])) 61 <= 65 after 2m10s`` or
``no vnf_requests_per_second sample for 45s``, and carries the values
behind it (per VNFC, per device, per object on a host), the window its
function read and the sample time of its value.
"""

from __future__ import annotations

import math

import numpy as np

from analytics.compare import CLEARED_TEXT
from analytics.judges import Judge
from analytics.membership import Membership
from analytics.readings import Readings
from analytics.table import SeriesTable
from bus.conditions import ConditionSpec
from bus.contracts import Evidence, Target, TargetKind, Violation, ViolationStatus
from bus.units import format_duration


def expression(cond: ConditionSpec) -> str:
    """The function a condition applies to each series: ``rate(x[1m])``, or the KPI."""
    if cond.function == "last":
        return cond.kpi
    window = format_duration(cond.range_s)
    if cond.function == "histogram_quantile":
        return f"histogram_quantile({cond.quantile:g}, rate({cond.series_kpi}[{window}]))"
    if cond.function == "quantile_over_time":
        return f"quantile_over_time({cond.quantile:g}, {cond.kpi}[{window}])"
    return f"{cond.function}({cond.kpi}[{window}])"


class Explainer:
    """Builds the evidence and the events of one condition."""

    def __init__(
        self, cond: ConditionSpec, table: SeriesTable, detector: str = "threshold"
    ) -> None:
        self.cond = cond
        self.table = table
        self.detector = detector
        self._expr = expression(cond)
        self._range = cond.range_s if cond.range_s > 0 else None

    def subject(self, values: dict[str, float]) -> str:
        """What is compared: ``avg(kpi)``, or the bare series for one VNFC series."""
        cond = self.cond
        if cond.scope is TargetKind.VNFC and len(values) <= 1:
            return self._expr
        how: str = cond.aggregate
        if how == "quantile":
            how = f"quantile({cond.aggregate_quantile:g})"
        return f"{how}({self._expr})"

    def values(self, m: Membership, r: Readings, pos: int) -> dict[str, float]:
        """The known values behind target position ``pos``: per object, or per series."""
        objs = np.flatnonzero(m.obj_tgt == pos).tolist()
        if self.cond.scope is TargetKind.VNFC:
            units = np.flatnonzero(np.isin(r.unit_obj, objs) & ~np.isnan(r.unit_value)).tolist()
            if len(units) > 1:
                names = self._series_names(m, r, units)
                return {n: float(r.unit_value[u]) for n, u in zip(names, units, strict=True)}
        return {
            m.obj_names[o]: float(r.obj_value[o]) for o in objs if not math.isnan(r.obj_value[o])
        }

    def _series_names(self, m: Membership, r: Readings, units: list[int]) -> list[str]:
        table_labels = [self._labels_of(r, u) for u in units]
        shared = set.intersection(*(set(labels.items()) for labels in table_labels))
        return [
            ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if (k, v) not in shared)
            for labels in table_labels
        ]

    def _labels_of(self, r: Readings, unit: int) -> dict[str, str]:
        labels = dict(self.table.labels(int(r.unit_row[unit])))
        labels.pop("le", None)
        labels.pop("host", None)
        return labels

    def reading(
        self,
        status: ViolationStatus,
        m: Membership,
        r: Readings,
        *,
        pos: int,
        signal: float,
        since: float,
        now: float,
        judge: Judge,
    ) -> Evidence:
        """Why a value condition started (ONSET) or stopped (ABATED) holding."""
        value = float(r.value[pos])
        at = float(r.at[pos])
        held = (at if not math.isnan(at) else now) - since
        values = self.values(m, r, pos)
        if status is ViolationStatus.ONSET:
            how = f"{judge.op} {judge.limit(judge.threshold)} for {format_duration(held)}"
        else:
            cleared = CLEARED_TEXT[judge.op]
            how = f"{cleared} {judge.limit(judge.clear)} after {format_duration(held)}"
        phrase = judge.phrase(self.subject(values), value, signal)
        return Evidence(
            value=value,
            values=values,
            window_s=held,
            threshold=judge.threshold,
            clear=judge.clear,
            description=f"{phrase} {how}",
            range_s=self._range,
            observed_at=None if math.isnan(at) else at,
            score=None if judge.name == "threshold" or math.isnan(signal) else signal,
            detector=self.detector,
        )

    def silent(self, since: float, now: float, *, never_sent: bool = False) -> Evidence:
        """Why an absent (or stale) condition started: the VNFC went silent
        (``never_sent``: it has sent no sample since its creation)."""
        description = f"no {self.cond.kpi} sample for {format_duration(now - since)}"
        if never_sent and self.cond.startup_s > 0:
            description += f" after its {format_duration(self.cond.startup_s)} startup"
        return Evidence(
            value=None,
            values={},
            window_s=now - since,
            threshold=None,
            description=description,
            detector=self.cond.kind,
        )

    def returned(self, since: float, now: float) -> Evidence:
        """Why an absent (or stale) condition stopped: samples came back."""
        return Evidence(
            value=None,
            values={},
            window_s=now - since,
            threshold=None,
            description=f"{self.cond.kpi} samples returned after {format_duration(now - since)}",
            detector=self.cond.kind,
        )

    def gone(self, target: Target, since: float, now: float) -> Evidence:
        """Why an episode abated: its VNF or VNFC left the inventory."""
        cond = self.cond
        threshold = cond.threshold if not cond.watches_silence else None
        clear = None if threshold is None else (threshold if cond.clear is None else cond.clear)
        return Evidence(
            value=None,
            values={},
            window_s=now - since,
            threshold=threshold,
            clear=clear,
            description=(
                f"{target.kind.value} {target.id} left the inventory"
                f" after {format_duration(now - since)}"
            ),
            detector=self.detector if not cond.watches_silence else cond.kind,
        )

    def violation(
        self,
        target: Target,
        violation_id: str,
        status: ViolationStatus,
        evidence: Evidence,
        *,
        started_at: float,
        now: float,
        caused_by: str | None,
    ) -> Violation:
        """The event of one episode."""
        cond = self.cond
        return Violation(
            id=violation_id,
            status=status,
            policy=cond.policy,
            condition=cond.name,
            target=target,
            evidence=evidence,
            started_at=started_at,
            at=now,
            request_id=f"{violation_id}.{status.value.lower()}",
            labels={"kpi": cond.kpi, "kind": cond.kind},
            caused_by=caused_by,
        )
