"""The latest sample of every series the conditions watch, indexed by VNFC and host.

Detectors compare what a target shows *now*, so one sample per series is
enough: a series is a KPI plus its full label set, and a newer sample
replaces an older one (an older one arriving late is ignored). Series are
indexed by their ``vnfc`` and ``host`` labels so evaluation never scans
every series of a KPI. Nothing here knows about freshness: callers decide
what is stale from the sample timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from bus.contracts import Sample

SeriesKey = tuple[tuple[str, str], ...]
"""The sorted label pairs of a series (its identity within one KPI)."""


def series_key(labels: dict[str, str]) -> SeriesKey:
    """The identity of a series within its KPI."""
    return tuple(sorted(labels.items()))


class LatestValues:
    """Latest sample per series, for the KPIs in ``kpis`` only (all when None)."""

    def __init__(self, kpis: Iterable[str] | None = None) -> None:
        self._kpis = frozenset(kpis) if kpis is not None else None
        self._series: dict[str, dict[SeriesKey, Sample]] = {}
        self._by_vnfc: dict[str, dict[str, set[SeriesKey]]] = {}
        self._by_host: dict[str, dict[str, set[SeriesKey]]] = {}

    def __len__(self) -> int:
        return sum(len(per_kpi) for per_kpi in self._series.values())

    def add(self, sample: Sample) -> bool:
        """Keep ``sample`` if it is the newest of its series; returns whether it was kept."""
        if self._kpis is not None and sample.kpi not in self._kpis:
            return False
        key = series_key(sample.labels)
        per_kpi = self._series.setdefault(sample.kpi, {})
        known = per_kpi.get(key)
        if known is not None and known.ts > sample.ts:
            return False
        per_kpi[key] = sample
        if known is None:
            vnfc = sample.labels.get("vnfc")
            if vnfc is not None:
                self._by_vnfc.setdefault(sample.kpi, {}).setdefault(vnfc, set()).add(key)
            host = sample.labels.get("host")
            if host is not None:
                self._by_host.setdefault(sample.kpi, {}).setdefault(host, set()).add(key)
        return True

    def of_vnfc(self, kpi: str, vnfc: str) -> list[Sample]:
        """The latest sample of each ``kpi`` series labelled ``vnfc``."""
        keys = self._by_vnfc.get(kpi, {}).get(vnfc, ())
        per_kpi = self._series[kpi] if keys else {}
        return [per_kpi[key] for key in keys]

    def by_host(self, kpi: str) -> Iterator[tuple[str, list[Sample]]]:
        """Each host and the latest sample of each ``kpi`` series labelled with it."""
        per_kpi = self._series.get(kpi, {})
        for host, keys in self._by_host.get(kpi, {}).items():
            yield host, [per_kpi[key] for key in keys]

    def prune(self, before: float) -> int:
        """Forget series whose latest sample is older than ``before``; returns how many.

        Keeps memory bounded as VNFCs come and go (every scale-in or
        recreate leaves series that will never be written again).
        """
        removed = 0
        for kpi, per_kpi in self._series.items():
            old = [key for key, sample in per_kpi.items() if sample.ts < before]
            for key in old:
                labels = dict(key)
                del per_kpi[key]
                _unindex(self._by_vnfc.get(kpi), labels.get("vnfc"), key)
                _unindex(self._by_host.get(kpi), labels.get("host"), key)
            removed += len(old)
        return removed


def _unindex(index: dict[str, set[SeriesKey]] | None, name: str | None, key: SeriesKey) -> None:
    if index is None or name is None:
        return
    keys = index.get(name)
    if keys is None:
        return
    keys.discard(key)
    if not keys:
        del index[name]
