"""Every metric name the platform's ``/metrics`` can expose (for checking dashboards)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from assure.api.http_metrics import HttpMetrics
from assure.api.loop_metrics import CallbackCounter, LoopCollector, LoopLatency
from bus.keys import Keys

_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def platform_metric_names() -> set[str]:
    registry = CollectorRegistry()
    HttpMetrics(registry)
    LoopLatency(None, Keys(), registry)
    registry.register(LoopCollector(None, Keys()))
    registry.register(CallbackCounter("nfva_samples_ingested", "", lambda: 0))
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
    return names
