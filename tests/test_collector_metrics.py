"""The collector's self-metrics: what was written, dropped, buffered, failed, per source."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bus.clock import ScaledClock
from bus.keys import Keys
from collector.metrics import CollectorMetrics
from collector.push.stats import PushStats
from collector.service import Collector
from mano_core.inventory import Inventory
from tests.test_collector import vnf, vnfc
from tests.test_scrape import GOOD_TEXT, http_server, text_handler


def values(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_self_metrics_follow_what_the_collector_did(redis: Any, keys: Keys) -> None:
    inventory = Inventory(redis, keys)
    async with http_server("127.77.12.1", text_handler(GOOD_TEXT)) as good:
        await inventory.save(
            vnf("vnf-1", [vnfc("c-good", "s1", "h", good), vnfc("c-gone", "s2", "h",
                                                                "http://127.77.12.2:1/m")])
        )  # fmt: skip
        collector = Collector(redis, keys, inventory, [], ScaledClock(speed=100))
        push = PushStats()
        push.took("remote_write", 5, 0.01)
        push.failed("remote_write")
        registry = CollectorRegistry()
        registry.register(CollectorMetrics(collector, push=push))
        try:
            report = await collector.scrape_cycle()
        finally:
            await collector.stop()
    found = values(registry)
    scrape = (("source", "scrape"),)
    assert found[("nfva_collector_samples_written_total", scrape)] == report.samples == 1 + 6
    assert found[("nfva_collector_cycles_total", scrape)] == 1
    assert found[("nfva_collector_failures_total", scrape)] == 1  # the target that is gone
    assert found[("nfva_collector_samples_dropped_total", ())] == 0
    assert found[("nfva_collector_samples_buffered", ())] == 0
    rw = (("source", "remote_write"),)
    assert found[("nfva_push_requests_total", rw)] == 2
    assert found[("nfva_push_refused_total", rw)] == 1
    assert found[("nfva_push_samples_total", rw)] == 5
