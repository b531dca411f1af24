"""The collector's self-metrics, computed at scrape time from the collector and the receivers.

A prometheus-client collector (register it on the registry the server's
``/metrics`` renders): samples written per source, dropped and waiting in
the writer's buffer (Redis unreachable), cycles, target failures and time
spent per source, and push requests, failures and samples per receiver.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as MetricsCollector

from collector.push.stats import PushStats
from collector.service import Collector
from collector.writer import SampleWriter


class CollectorMetrics(MetricsCollector):
    """Self-metrics of one collector and/or the push receivers (and their writers)."""

    def __init__(
        self,
        collector: Collector | None = None,
        *,
        writers: Sequence[SampleWriter] = (),
        push: PushStats | None = None,
    ) -> None:
        self._collector = collector
        self._writers = [*([collector.writer] if collector else []), *writers]
        self._push = push

    def collect(self) -> Iterator[Metric]:
        written = CounterMetricFamily(
            "nfva_collector_samples_written", "Samples written to the samples stream.",
            labels=["source"],
        )  # fmt: skip
        by_source: dict[str, int] = {}
        for writer in self._writers:
            for source, count in writer.written_by_source.items():
                by_source[source] = by_source.get(source, 0) + count
        for source, count in sorted(by_source.items()):
            written.add_metric([source], count)
        yield written
        dropped = CounterMetricFamily(
            "nfva_collector_samples_dropped",
            "Samples dropped because Redis stayed unreachable with the buffer full.",
        )
        dropped.add_metric([], sum(w.dropped for w in self._writers))
        yield dropped
        buffered = GaugeMetricFamily(
            "nfva_collector_samples_buffered", "Samples waiting for Redis (the queue depth)."
        )
        buffered.add_metric([], sum(w.buffered for w in self._writers))
        yield buffered
        if self._collector is not None:
            stats = self._collector.stats
            cycles = CounterMetricFamily(
                "nfva_collector_cycles", "Collection cycles run.", labels=["source"]
            )
            failures = CounterMetricFamily(
                "nfva_collector_failures",
                "Targets (VIMs, queries) that failed, summed over cycles.",
                labels=["source"],
            )
            seconds = CounterMetricFamily(
                "nfva_collector_cycle_seconds", "Time the cycles took.", labels=["source"]
            )
            for source in sorted(stats.cycles):
                cycles.add_metric([source], stats.cycles[source])
                failures.add_metric([source], stats.failures[source])
                seconds.add_metric([source], stats.seconds[source])
            yield from (cycles, failures, seconds)
        if self._push is not None:
            requests = CounterMetricFamily(
                "nfva_push_requests", "Push requests received.", labels=["source"]
            )
            refused = CounterMetricFamily(
                "nfva_push_refused", "Push requests refused (4xx).", labels=["source"]
            )
            samples = CounterMetricFamily(
                "nfva_push_samples", "Samples taken from pushes.", labels=["source"]
            )
            for source in sorted(self._push.requests):
                requests.add_metric([source], self._push.requests[source])
                refused.add_metric([source], self._push.failures[source])
                samples.add_metric([source], self._push.samples[source])
            yield from (requests, refused, samples)
