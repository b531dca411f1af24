"""The PromQL source against a real Prometheus: VNFC series by their labels, ranges, errors."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from bus.clock import WallClock
from bus.keys import Keys
from bus.sample_view import read_samples
from collector.instances import InstanceLabels
from collector.promql_source import PromQLQuery, PromQLSource
from collector.service import Collector
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vnfd import MonitoringParameter
from tests.monitoring import Prometheus
from tests.test_scrape import http_server

SESSIONS = PromQLQuery("vnf_sessions", "vnf_sessions_total")


async def test_promql_kpis_become_samples_of_the_vnfcs_their_labels_name(
    redis: Any, keys: Keys
) -> None:
    async def exporter(_request: web.Request) -> web.Response:
        return web.Response(text="# TYPE vnf_sessions_total gauge\nvnf_sessions_total 42\n")

    inventory = Inventory(redis, keys)
    await inventory.save(
        VnfInstance(
            "vnf-1", "fw", "vfw", "sim", InstantiationState.INSTANTIATED, {},
            [VnfcInstance("vnfc-1", "fw", "srv-1", "host-a", "10.0.0.5", None, 0.0)], 0.0, 0.0,
        )
    )  # fmt: skip
    async with http_server("127.77.11.1", exporter) as url:
        target = url.removeprefix("http://").removesuffix("/metrics")
        prometheus = Prometheus(
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "vnfc",
                     "static_configs": [{"targets": [target], "labels": {"vnfc_id": "vnfc-1"}}]}
                ],
            }
        )  # fmt: skip
        await prometheus.start()
        source = PromQLSource(prometheus.url, InstanceLabels(inventory))
        try:
            deadline = time.monotonic() + 60
            while not await prometheus.query("vnf_sessions_total"):
                assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
                await asyncio.sleep(0.2)
            now = await source.collect([SESSIONS, PromQLQuery("broken", "sum(")])
            await asyncio.sleep(1.5)
            past = await source.backfill([SESSIONS], time.time() - 3, time.time(), 1.0)
            clock = WallClock()
            collector = Collector(
                redis, keys, inventory, [], clock, promql=source,
                promql_queries=lambda: _queries([SESSIONS]),
            )  # fmt: skip
            report = await collector.promql_cycle()
            await collector.stop()
        finally:
            prometheus.stop()
            await source.aclose()
        down = await PromQLSource(prometheus.url, InstanceLabels(inventory)).collect([SESSIONS])

    (sample,) = now.samples
    assert sample.kpi == "vnf_sessions" and sample.value == 42.0
    assert sample.labels["vnfc"] == "vnfc-1" and sample.labels["vnf"] == "vnf-1"
    assert sample.labels["job"] == "vnfc"
    assert abs(sample.ts - time.time()) < 60
    assert "broken" in now.errors and "parse error" in now.errors["broken"]
    assert len(past.samples) >= 2 and {s.value for s in past.samples} == {42.0}
    assert report.samples == 1 and report.errors == {}
    (batch,) = [b for _, b in await read_samples(redis, keys) if b.source == "promql"]
    assert batch.samples[0].labels["vnfc"] == "vnfc-1"
    assert "vnf_sessions" in down.errors  # Prometheus gone: an error, not an exception


async def _queries(queries: list[PromQLQuery]) -> list[PromQLQuery]:
    return queries


def test_a_promql_kpi_needs_its_query_and_only_it_has_one() -> None:
    good = MonitoringParameter.model_validate(
        {"name": "lat", "source": "promql", "unit": "s", "query": "max(latency)"}
    )
    assert good.query == "max(latency)"
    for bad in (
        {"name": "lat", "source": "promql", "unit": "s"},
        {"name": "lat", "source": "exporter", "unit": "s", "query": "x"},
    ):
        with pytest.raises(ValidationError, match="needs a query"):
            MonitoringParameter.model_validate(bad)
