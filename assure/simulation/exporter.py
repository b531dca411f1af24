"""Simulated VNFC exporters: one Prometheus endpoint per VNFC, served over real HTTP.

A :class:`VnfcExporter` is what a VNFC's own metrics endpoint would be: an
aiohttp server on the VNFC's (loopback) address serving its KPIs in the
Prometheus text exposition format, rendered by prometheus-client from a
registry of its own, so exporters never share or leak each other's values.
An :class:`ExporterFleet` starts and stops exporters so that they follow
the VNFCs the inventory holds (the demo calls :meth:`ExporterFleet.sync`
after every lifecycle change).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from mano_core.models import VnfInstance

log = logging.getLogger(__name__)

KPIS: dict[str, str] = {
    "vnf_requests_per_second": "Requests handled per second.",
    "vnf_request_latency_seconds": "95th percentile request latency, seconds.",
    "vnf_cpu_utilisation": "CPU utilisation of the VNFC, percent 0-100.",
    "vnf_active_sessions": "Sessions open now.",
}
"""The KPIs every simulated VNFC exports, with their help text."""


class VnfcExporter:
    """The Prometheus endpoint of one simulated VNFC.

    ``port=0`` binds a free port; :attr:`port` holds the real one once started.
    """

    def __init__(self, address: str, port: int, path: str = "/metrics") -> None:
        self.address = address
        self.port = port
        self.path = path
        self.registry = CollectorRegistry(auto_describe=True)
        self._gauges = {
            name: Gauge(name, help_text, registry=self.registry) for name, help_text in KPIS.items()
        }
        self._runner: web.AppRunner | None = None

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}{self.path}"

    def set(self, kpi: str, value: float) -> None:
        """Set a KPI to ``value``; the next scrape sees it."""
        try:
            gauge = self._gauges[kpi]
        except KeyError:
            raise ValueError(f"unknown KPI {kpi!r}: expected one of {sorted(KPIS)}") from None
        gauge.set(value)

    def render(self) -> bytes:
        """The exposition a scrape would get now."""
        return generate_latest(self.registry)

    async def start(self) -> None:
        """Bind ``address:port`` and serve; raises OSError when the address is taken."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get(self.path, self._handle)
        # No access log: the collector scrapes every exporter every few seconds.
        # A short shutdown timeout: stopping an exporter must not wait for a
        # scrape that is still in flight (a stopped VNFC just goes silent).
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.address, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        """Stop serving; a later scrape is refused. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _handle(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@dataclass(frozen=True)
class ExporterSpec:
    """Where the exporter of one VNFC listens."""

    vnfc_id: str
    address: str
    port: int
    path: str = "/metrics"


def specs_from_vnfs(vnfs: Iterable[VnfInstance]) -> list[ExporterSpec]:
    """One spec per VNFC that has a ``metrics_url`` (as the VNFM wrote it)."""
    specs = []
    for vnf in vnfs:
        for vnfc in vnf.vnfcs:
            if not vnfc.metrics_url:
                continue
            url = urlsplit(vnfc.metrics_url)
            if url.hostname is None or url.port is None:
                log.warning("VNFC %s has an unusable metrics_url %r", vnfc.id, vnfc.metrics_url)
                continue
            specs.append(ExporterSpec(vnfc.id, url.hostname, url.port, url.path or "/metrics"))
    return specs


class ExporterFleet:
    """Exporters that follow a set of VNFCs: started when they appear, stopped when gone."""

    def __init__(self) -> None:
        self._exporters: dict[str, VnfcExporter] = {}
        self._specs: dict[str, ExporterSpec] = {}
        self.failed: dict[str, str] = {}
        """VNFC id -> why its exporter could not start at the last sync."""

    def __len__(self) -> int:
        return len(self._exporters)

    def __iter__(self) -> Iterator[str]:
        return iter(self._exporters)

    def __contains__(self, vnfc_id: object) -> bool:
        return vnfc_id in self._exporters

    def __getitem__(self, vnfc_id: str) -> VnfcExporter:
        return self._exporters[vnfc_id]

    def get(self, vnfc_id: str) -> VnfcExporter | None:
        return self._exporters.get(vnfc_id)

    async def sync(self, specs: Iterable[ExporterSpec]) -> tuple[list[str], list[str]]:
        """Start, stop or move exporters to match ``specs``.

        Returns ``(started, stopped)`` VNFC ids (an exporter that moved to a
        new address is in both). An exporter whose address
        cannot be bound is left out and recorded in :attr:`failed`; the next
        sync tries it again (the address may have been freed meanwhile).
        """
        wanted = {spec.vnfc_id: spec for spec in specs}
        stopped = [
            vnfc_id
            for vnfc_id, spec in self._specs.items()
            if vnfc_id not in wanted or wanted[vnfc_id] != spec
        ]
        for vnfc_id in stopped:
            await self._exporters.pop(vnfc_id).stop()
            del self._specs[vnfc_id]
        started = []
        self.failed = {}
        for vnfc_id, spec in wanted.items():
            if vnfc_id in self._exporters:
                continue
            exporter = VnfcExporter(spec.address, spec.port, spec.path)
            try:
                await exporter.start()
            except OSError as exc:
                self.failed[vnfc_id] = f"cannot bind {spec.address}:{spec.port}: {exc}"
                log.warning("exporter of VNFC %s not started: %s", vnfc_id, self.failed[vnfc_id])
                continue
            self._exporters[vnfc_id] = exporter
            self._specs[vnfc_id] = spec
            started.append(vnfc_id)
        return started, stopped

    async def stop_all(self) -> None:
        """Stop every exporter."""
        exporters = list(self._exporters.values())
        self._exporters.clear()
        self._specs.clear()
        for exporter in exporters:
            await exporter.stop()
