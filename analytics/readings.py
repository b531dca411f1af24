"""What each target of a condition shows now: readings for thresholds, silences for absence.

A condition's targets come from two places: VNF and VNFC targets from the
inventory snapshot (so a VNFC added by a scale-out counts at once and a
removed one stops counting), host targets from the ``host`` label of the
KPI's series. Freshness is judged on sample timestamps: a value older than
``stale_after_s`` is left out, and a target without any fresh value gets a
reading of ``None`` (no evaluation, never a breach).

One object may expose several series of a KPI, e.g. one per network
device (``device="eth0"``, ``device="eth1"``). Its value combines all its
fresh matching series with the condition's ``aggregate`` (``max``: the
busiest device), whatever the order they arrived in. The one exception
is series that differ in their ``host`` label alone: that is one series
whose VNFC moved (a migration), and its newest sample speaks for it. For
scope ``vnf`` the per-VNFC values then combine across the VNF's VNFCs with
the same aggregate (so ``avg`` weighs every VNFC alike, whatever its
number of devices); for scope ``host``, the per-object values (VNFC,
server or the host itself) combine the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
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
    """The fresh values behind it: VNFC id (or object name for hosts) -> value.

    For scope ``vnfc``, a VNFC with several series lists each one under the
    labels that tell them apart (e.g. ``device=eth0``).
    """


@dataclass(frozen=True)
class Silence:
    """How long one VNFC has not sent a KPI."""

    target: Target
    since: float
    """When the silence began: max(last sample, VNFC created, counting began)."""
    last_sample: float | None
    """The timestamp of the VNFC's latest sample of the KPI, if any was seen."""
    until: float
    """How far the silence is known: the newest scrape batch that went without it."""

    @property
    def silent_s(self) -> float:
        """How long the VNFC is known to be silent (negative: not yet)."""
        return self.until - self.since


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


def _but_host(sample: Sample) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, value) for name, value in sample.labels.items() if name != "host"))


def _recency(sample: Sample) -> tuple[float, str]:
    # Equal timestamps are settled by host name, never by arrival or set order.
    return (sample.ts, sample.labels.get("host", ""))


def current_series(samples: Iterable[Sample]) -> list[Sample]:
    """One sample per series, in label order; of series equal but for ``host``, the newest."""
    newest: dict[tuple[tuple[str, str], ...], Sample] = {}
    for sample in samples:
        key = _but_host(sample)
        known = newest.get(key)
        if known is None or _recency(sample) > _recency(known):
            newest[key] = sample
    return [newest[key] for key in sorted(newest)]


def series_names(samples: Sequence[Sample]) -> list[str]:
    """Names that tell ``samples`` apart: the labels not all of them share (``device=eth0``)."""
    shared = set.intersection(*(set(s.labels.items()) for s in samples)) if samples else set()
    return [
        ",".join(
            f"{name}={value}"
            for name, value in sorted(s.labels.items())
            if (name, value) not in shared
        )
        for s in samples
    ]


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

    def vnfc_series(self, cond: ConditionSpec, vnfc_id: str) -> list[Sample]:
        """The VNFC's fresh series of the KPI (one per series: see the module docstring)."""
        usable = [s for s in self._latest.of_vnfc(cond.kpi, vnfc_id) if _usable(s, cond)]
        if len(usable) > 1:  # the common case is one series: nothing to settle
            usable = current_series(usable)
        return [s for s in usable if self._fresh(s)]

    def vnfc_value(self, cond: ConditionSpec, vnfc_id: str) -> float | None:
        """The VNFC's value of the KPI, None when it is stale or missing.

        Several fresh series (e.g. one per device) combine with the
        condition's aggregate.
        """
        series = self.vnfc_series(cond, vnfc_id)
        return aggregate(cond.aggregate, (s.value for s in series)) if series else None

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
                series = self.vnfc_series(cond, vnfc.id)
                names = series_names(series) if len(series) > 1 else [vnfc.id] * len(series)
                values = {name: s.value for name, s in zip(names, series, strict=True)}
                value = aggregate(cond.aggregate, values.values()) if values else None
                out.append(Reading(vnfc_target(vnf, vnfc), value, values))
        return out

    def _host_readings(self, cond: ConditionSpec) -> list[Reading]:
        out = []
        for host, samples in self._latest.by_host(cond.kpi):
            by_object: dict[str, list[float]] = {}
            # Every series here has this host's label, so none differ in it
            # alone: each counts. Aggregates do not depend on their order.
            for sample in samples:
                if not (_usable(sample, cond) and self._fresh(sample)):
                    continue
                # A host series carries no vnfd label and always counts; a
                # VNFC series on the host counts only for the condition's VNFD.
                vnfd = sample.labels.get("vnfd")
                if cond.vnfd is not None and vnfd is not None and vnfd != cond.vnfd:
                    continue
                name = sample.labels.get("vnfc") or sample.labels.get("server") or host
                by_object.setdefault(name, []).append(sample.value)
            values = {
                name: aggregate(cond.aggregate, found) for name, found in sorted(by_object.items())
            }
            value = aggregate(cond.aggregate, values.values()) if values else None
            out.append(Reading(host_target(host), value, values))
        return out

    def vnfc_keys(self, cond: ConditionSpec) -> set[str]:
        """The ``Target.key()`` of every VNFC an absent condition watches."""
        return {
            vnfc_target(vnf, vnfc).key() for vnf in _vnfs_of(cond, self._vnfs) for vnfc in vnf.vnfcs
        }

    def silences(self, cond: ConditionSpec, since: float, until: float) -> dict[str, Silence]:
        """Every VNFC an absent condition watches, keyed by ``Target.key()``.

        Silence counts from ``since`` at the earliest: before it this worker
        could not see what arrived (it started then, or the scrape feed
        resumed then after a gap), so a restart or a collector outage must
        not flood absent alarms. It is known up to ``until`` only, the newest
        scrape batch that went without the VNFC.
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
                began = max(vnfc.created_at, since, last if last is not None else 0.0)
                target = vnfc_target(vnf, vnfc)
                out[target.key()] = Silence(target, began, last, until)
        return out
