"""The simulated VNF application: offered traffic turned into per-VNFC KPIs.

Traffic offered to a VNF is shared by a load balancer across its VNFCs
that serve (server ACTIVE, or live-migrating). Each VNFC's CPU follows its
share of the traffic; its p95 latency follows a queueing curve that climbs
steeply near saturation, and triples on a degraded host. Each serving VNFC
runs a Prometheus exporter on its server's address; a VNFC whose server is
down has no exporter, so scrapes of it fail, as they would in a real cloud.

This is the ground truth of the demo: :class:`WorkloadState` says whether
the KPI objective holds, independently of what the platform detects.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from assure.simulation.exporter import ExporterFleet, specs_from_vnfs
from mano_core.inventory import Inventory
from mano_core.models import VnfcInstance
from mano_core.vim.base import ServerInfo, ServerStatus

SERVING = (ServerStatus.ACTIVE, ServerStatus.MIGRATING)


class HostView(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def degraded(self) -> bool: ...


class Infrastructure(Protocol):
    """What the workload reads of the cloud under the VNF (the truth, not the platform's
    view), and the load it reports back: a :class:`~mano_core.vim.simulated.SimulatedVim`,
    or :class:`~assure.demo.openstack_world.OpenStackWorld` on a real cloud."""

    async def servers(self) -> Sequence[ServerInfo]: ...

    async def hosts(self) -> Sequence[HostView]: ...

    async def set_server_cpu(self, cpus: Mapping[str, float]) -> None: ...


@dataclass(frozen=True)
class WorkloadModel:
    """How traffic turns into load."""

    capacity_rps: float = 1000.0
    """Requests per second one VNFC serves at 100% CPU."""
    base_latency_s: float = 0.010
    """p95 latency of an idle VNFC."""
    degraded_latency_factor: float = 4.0
    """Latency multiplier on a degraded host."""
    latency_objective_s: float = 0.050
    """The KPI objective: p95 latency at or below this on every VNFC."""
    noise_pct: float = 1.5
    """Standard deviation of the CPU noise, in percentage points."""


@dataclass(frozen=True)
class VnfcKpis:
    vnfc: str
    host: str | None
    serving: bool
    rps: float
    cpu: float
    latency_s: float


@dataclass(frozen=True)
class WorkloadState:
    """One moment of the simulated VNF, as a user of its service would see it."""

    at: float
    offered_rps: float
    vnfcs: tuple[VnfcKpis, ...]
    objective_met: bool
    why_broken: str = ""

    @property
    def serving(self) -> int:
        return sum(1 for v in self.vnfcs if v.serving)

    @property
    def avg_cpu(self) -> float:
        serving = [v.cpu for v in self.vnfcs if v.serving]
        return sum(serving) / len(serving) if serving else 0.0

    @property
    def max_latency_s(self) -> float:
        return max((v.latency_s for v in self.vnfcs if v.serving), default=0.0)


@dataclass
class Workload:
    """Drives the KPIs of one VNF instance from the traffic offered to it."""

    vim: Infrastructure
    inventory: Inventory
    vnf_id: str
    model: WorkloadModel = field(default_factory=WorkloadModel)
    seed: int = 0
    offered_rps: float = 0.0
    """Set by the scenario: the traffic the VNF's users send now."""
    exporters: ExporterFleet = field(default_factory=ExporterFleet)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def tick(self, now: float) -> WorkloadState:
        """Recompute every VNFC's KPIs and make exporters follow their servers."""
        vnf = await self.inventory.get(self.vnf_id)
        servers = {s.id: s for s in await self.vim.servers()}
        degraded = {h.name for h in await self.vim.hosts() if h.degraded}
        serving: list[VnfcInstance] = []
        for vnfc in vnf.vnfcs:
            server = servers.get(vnfc.server_id)
            if server is not None and server.status in SERVING:
                serving.append(vnfc)
        # An exporter runs exactly for each serving VNFC that has monitoring.
        serving_ids = {c.id for c in serving}
        await self.exporters.sync(s for s in specs_from_vnfs([vnf]) if s.vnfc_id in serving_ids)

        share = self.offered_rps / len(serving) if serving else 0.0
        kpis: list[VnfcKpis] = []
        cpus: dict[str, float] = {}
        for vnfc in vnf.vnfcs:
            server = servers.get(vnfc.server_id)
            host = server.host if server else vnfc.host
            if vnfc not in serving:
                kpis.append(VnfcKpis(vnfc.id, host, False, 0.0, 0.0, 0.0))
                continue
            rho = min(share / self.model.capacity_rps, 0.99)
            cpu = max(0.0, min(100.0, rho * 100 + self._rng.gauss(0, self.model.noise_pct)))
            latency = self.model.base_latency_s / (1.0 - min(rho, 0.95))
            if host in degraded:
                latency *= self.model.degraded_latency_factor
                cpu = min(100.0, cpu + 10.0)  # stolen cycles on a sick host
            served = min(share, self.model.capacity_rps)
            kpis.append(VnfcKpis(vnfc.id, host, True, served, cpu, latency))
            cpus[vnfc.server_id] = cpu
            exporter = self.exporters.get(vnfc.id)
            if exporter is not None and exporter.running:
                exporter.set("vnf_requests_per_second", served)
                exporter.set("vnf_cpu_utilisation", cpu)
                exporter.set("vnf_request_latency_seconds", latency)
                exporter.set("vnf_active_sessions", served * 2.0)
        await self.vim.set_server_cpu(cpus)
        return self._judge(now, kpis)

    def _judge(self, now: float, kpis: list[VnfcKpis]) -> WorkloadState:
        down = [k.vnfc for k in kpis if not k.serving]
        slow = [k for k in kpis if k.serving and k.latency_s > self.model.latency_objective_s]
        why = ""
        if down:
            why = f"{len(down)} VNFC(s) down"
        elif slow:
            worst_ms = max(k.latency_s for k in slow) * 1000
            why = f"p95 {worst_ms:.0f} ms > {self.model.latency_objective_s * 1000:.0f} ms"
        return WorkloadState(
            at=now,
            offered_rps=self.offered_rps,
            vnfcs=tuple(kpis),
            objective_met=not why,
            why_broken=why,
        )

    async def aclose(self) -> None:
        await self.exporters.stop_all()
