"""What each target of a condition shows now: readings for thresholds, silences for absence.

A condition's targets come from two places: VNF and VNFC targets from the
inventory snapshot (so a VNFC added by a scale-out counts at once and a
removed one stops counting), host targets from the ``host`` label of the
KPI's series. Freshness is judged on sample timestamps: a value older than
``stale_after_s`` is left out, and a target without any fresh value gets a
reading of ``None`` (no evaluation, never a breach).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from analytics.windows import LatestValues
from bus.conditions import Aggregate, ConditionSpec
from bus.contracts import Sample, Target, TargetKind
from mano_core.models import VnfcInstance, VnfInstance


@dataclass(frozen=True)
class Reading:
    """The value one target of a threshold condition shows now."""

    target: Target
    value: float | None
    """The aggregate of the fresh values; None when there is no fresh value."""
    values: dict[str, float]
    """The fresh values behind it: VNFC id (or series name for hosts) -> value."""


@dataclass(frozen=True)
class Silence:
    """How long one VNFC has not sent a KPI."""

    target: Target
    since: float
    """When the silence began: max(last sample, VNFC created, watching began)."""
    last_sample: float | None
    """The timestamp of the VNFC's latest sample of the KPI, if any was seen."""


def aggregate(how: Aggregate, values: Iterable[float]) -> float:
    """Combine per-object values; ``values`` must not be empty."""
    items = list(values)
    if how == "avg":
        return math.fsum(items) / len(items)
    if how == "max":
        return max(items)
    if how == "min":
        return min(items)
    return math.fsum(items)


def vnf_target(vnf: VnfInstance) -> Target:
    return Target(kind=TargetKind.VNF, id=vnf.id, vnf=vnf.id, vnfd=vnf.vnfd_id)


def vnfc_target(vnf: VnfInstance, vnfc: VnfcInstance) -> Target:
    return Target(kind=TargetKind.VNFC, id=vnfc.id, vnf=vnf.id, vnfd=vnf.vnfd_id, host=vnfc.host)


def host_target(host: str) -> Target:
    return Target(kind=TargetKind.HOST, id=host, host=host)


def matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Whether a series carries every label matcher of a condition."""
    return all(labels.get(name) == value for name, value in wanted.items())


def _vnfs_of(cond: ConditionSpec, vnfs: Iterable[VnfInstance]) -> Iterable[VnfInstance]:
    return (vnf for vnf in vnfs if cond.vnfd is None or vnf.vnfd_id == cond.vnfd)


def _usable(sample: Sample, cond: ConditionSpec) -> bool:
    # NaN (e.g. an exporter's "no data yet") compares false with everything
    # and would poison an average; it counts as no value.
    return not math.isnan(sample.value) and matches(sample.labels, cond.labels)


class ReadingBuilder:
    """Builds the readings and silences of conditions from one snapshot of data."""

    def __init__(
        self,
        latest: LatestValues,
        vnfs: list[VnfInstance],
        now: float,
        stale_after_s: float,
    ) -> None:
        self._latest = latest
        self._vnfs = vnfs
        self._now = now
        self._stale_after_s = stale_after_s

    def _fresh(self, sample: Sample) -> bool:
        return self._now - sample.ts <= self._stale_after_s

    def vnfc_value(self, cond: ConditionSpec, vnfc_id: str) -> float | None:
        """The VNFC's newest value of the KPI, None when it is stale or missing.

        When a VNFC has several matching series (its ``host`` label changed
        after a migration), the newest one speaks for it.
        """
        samples = [s for s in self._latest.of_vnfc(cond.kpi, vnfc_id) if _usable(s, cond)]
        if not samples:
            return None
        newest = max(samples, key=lambda s: s.ts)
        return newest.value if self._fresh(newest) else None

    def readings(self, cond: ConditionSpec) -> dict[str, Reading]:
        """Every target of a threshold condition, keyed by ``Target.key()``."""
        if cond.scope is TargetKind.HOST:
            found = self._host_readings(cond)
        elif cond.scope is TargetKind.VNF:
            found = self._vnf_readings(cond)
        else:
            found = self._vnfc_readings(cond)
        return {reading.target.key(): reading for reading in found}

    def _vnf_readings(self, cond: ConditionSpec) -> list[Reading]:
        out = []
        for vnf in _vnfs_of(cond, self._vnfs):
            values = {}
            for vnfc in vnf.vnfcs:
                value = self.vnfc_value(cond, vnfc.id)
                if value is not None:
                    values[vnfc.id] = value
            value = aggregate(cond.aggregate, values.values()) if values else None
            out.append(Reading(vnf_target(vnf), value, values))
        return out

    def _vnfc_readings(self, cond: ConditionSpec) -> list[Reading]:
        out = []
        for vnf in _vnfs_of(cond, self._vnfs):
            for vnfc in vnf.vnfcs:
                value = self.vnfc_value(cond, vnfc.id)
                values = {vnfc.id: value} if value is not None else {}
                out.append(Reading(vnfc_target(vnf, vnfc), value, values))
        return out

    def _host_readings(self, cond: ConditionSpec) -> list[Reading]:
        out = []
        for host, samples in self._latest.by_host(cond.kpi):
            newest: dict[str, Sample] = {}
            for sample in samples:
                if not (_usable(sample, cond) and self._fresh(sample)):
                    continue
                # A host series carries no vnfd label and always counts; a
                # VNFC series on the host counts only for the condition's VNFD.
                vnfd = sample.labels.get("vnfd")
                if cond.vnfd is not None and vnfd is not None and vnfd != cond.vnfd:
                    continue
                name = sample.labels.get("vnfc") or sample.labels.get("server") or host
                if name not in newest or newest[name].ts < sample.ts:
                    newest[name] = sample
            values = {name: sample.value for name, sample in newest.items()}
            value = aggregate(cond.aggregate, values.values()) if values else None
            out.append(Reading(host_target(host), value, values))
        return out

    def silences(self, cond: ConditionSpec, watching_since: float) -> dict[str, Silence]:
        """Every VNFC an absent condition watches, keyed by ``Target.key()``.

        ``watching_since`` is when this worker began to see samples: before
        it, the worker cannot know what arrived, so silence counts from
        there at the earliest (a restart must not flood absent alarms).
        """
        out = {}
        for vnf in _vnfs_of(cond, self._vnfs):
            for vnfc in vnf.vnfcs:
                seen = [
                    s.ts
                    for s in self._latest.of_vnfc(cond.kpi, vnfc.id)
                    if matches(s.labels, cond.labels)
                ]
                last = max(seen) if seen else None
                since = max(vnfc.created_at, watching_since, last if last is not None else 0.0)
                target = vnfc_target(vnf, vnfc)
                out[target.key()] = Silence(target, since, last)
        return out
