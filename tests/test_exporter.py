"""The simulated VNFC exporter serves its own KPIs over real HTTP on its VNFC's address."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from assure.simulation.exporter import (
    KPIS,
    ExporterFleet,
    ExporterSpec,
    VnfcExporter,
    specs_from_vnfs,
)
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance


async def fetch(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


def values(text: str) -> dict[str, float]:
    return {
        s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples
    }


async def test_serves_its_kpis_on_a_loopback_address_of_its_own() -> None:
    exporter = VnfcExporter("127.77.3.5", 0)
    await exporter.start()
    try:
        exporter.set("vnf_cpu_utilisation", 81.5)
        exporter.set("vnf_request_latency_seconds", 0.125)
        status, content_type, text = await fetch(exporter.url)
    finally:
        await exporter.stop()
    assert exporter.url.startswith("http://127.77.3.5:")
    assert status == 200
    assert content_type.startswith("text/plain")
    got = values(text)
    assert got["vnf_cpu_utilisation"] == 81.5
    assert got["vnf_request_latency_seconds"] == 0.125
    # Only the VNF's KPIs: no process or GC metrics of the simulator leak in.
    assert set(got) == set(KPIS)


async def test_exporters_on_the_same_port_keep_their_own_values() -> None:
    first = VnfcExporter("127.77.3.6", 0, "/custom")
    await first.start()
    second = VnfcExporter("127.77.3.7", first.port, "/custom")
    await second.start()
    try:
        first.set("vnf_active_sessions", 10)
        second.set("vnf_active_sessions", 20)
        _, _, text_first = await fetch(first.url)
        _, _, text_second = await fetch(second.url)
    finally:
        await first.stop()
        await second.stop()
    assert values(text_first)["vnf_active_sessions"] == 10
    assert values(text_second)["vnf_active_sessions"] == 20


async def test_a_stopped_exporter_refuses_scrapes() -> None:
    exporter = VnfcExporter("127.77.3.8", 0)
    await exporter.start()
    was_running = exporter.running
    await exporter.stop()
    await exporter.stop()  # idempotent
    assert was_running and not exporter.running
    with pytest.raises(aiohttp.ClientConnectorError):
        await fetch(exporter.url)


def test_an_unknown_kpi_is_refused_with_the_known_ones() -> None:
    exporter = VnfcExporter("127.77.3.9", 0)
    with pytest.raises(ValueError, match="vnf_cpu_utilisation"):
        exporter.set("cpu", 1.0)


async def test_fleet_follows_the_set_of_vnfcs() -> None:
    fleet = ExporterFleet()
    a = ExporterSpec("vnfc-a", "127.77.4.1", 0)
    b = ExporterSpec("vnfc-b", "127.77.4.2", 0)
    try:
        started, stopped = await fleet.sync([a, b])
        assert (sorted(started), stopped) == (["vnfc-a", "vnfc-b"], [])
        fleet["vnfc-b"].set("vnf_requests_per_second", 42)
        _, _, text = await fetch(fleet["vnfc-b"].url)
        assert values(text)["vnf_requests_per_second"] == 42

        old_a = fleet["vnfc-a"]
        moved_b = ExporterSpec("vnfc-b", "127.77.4.3", 0)
        started, stopped = await fleet.sync([a, moved_b])
        assert started == ["vnfc-b"] and stopped == ["vnfc-b"]
        assert fleet["vnfc-a"] is old_a  # unchanged VNFCs are left alone
        assert fleet["vnfc-b"].address == "127.77.4.3"

        started, stopped = await fleet.sync([moved_b])
        assert (started, stopped) == ([], ["vnfc-a"])
        assert "vnfc-a" not in fleet and not old_a.running
    finally:
        await fleet.stop_all()
    assert len(fleet) == 0


async def test_fleet_reports_an_address_it_cannot_bind_and_retries_it() -> None:
    squatter = VnfcExporter("127.77.4.9", 0)
    await squatter.start()
    fleet = ExporterFleet()
    spec = ExporterSpec("vnfc-x", "127.77.4.9", squatter.port)
    try:
        started, _ = await fleet.sync([spec])
        assert started == [] and "vnfc-x" in fleet.failed
        assert f"127.77.4.9:{squatter.port}" in fleet.failed["vnfc-x"]
        await squatter.stop()
        started, _ = await fleet.sync([spec])
        assert started == ["vnfc-x"] and fleet.failed == {}
    finally:
        await squatter.stop()
        await fleet.stop_all()


def test_specs_come_from_the_vnfcs_metrics_urls() -> None:
    def vnfc(vnfc_id: str, url: str | None) -> VnfcInstance:
        return VnfcInstance(vnfc_id, "fw", f"srv-{vnfc_id}", "h1", "127.9.0.2", url, 0.0)

    vnf = VnfInstance(
        "vnf-1",
        "fw",
        "fw-vnfd",
        "sim",
        InstantiationState.INSTANTIATED,
        {},
        [vnfc("c1", "http://127.9.0.2:9100/metrics"), vnfc("c2", None)],
        0.0,
        0.0,
    )
    assert specs_from_vnfs([vnf]) == [ExporterSpec("c1", "127.9.0.2", 9100, "/metrics")]
