"""Onboarding acceptance: run a VNFD in a sandbox under its load profile and judge its KPIs.

``nfv-assure vnfd accept NAME`` instantiates the onboarded VNFD on a
sandbox: a simulated VIM of its own, sized like a site of the deployment,
in accelerated time, with the VNF's records under a key prefix of their own
so the running platform never sees (nor scales, nor heals) it. The
simulated workload (:mod:`assure.simulation.workload`) offers the traffic of
the descriptor's ``load_profile`` and runs each VNFC's exporter; the KPIs of
``monitoring_parameters`` are measured the way the collector measures them
(each VNFC's exporter scraped over HTTP, or the VIM's telemetry), combined
across VNFCs by each KPI's ``aggregate``, and judged against its objective
at every measurement after the warm-up. Then the VNF is terminated and the
sandbox checked for leftovers.

The catalogue entry becomes ``validated`` with the measured KPIs (each the
worst value seen), or ``rejected`` with the reasons: instantiation failed, a
KPI broke its objective (when, at which load), a KPI was never measured, or
termination left servers behind.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assure.settings import Settings
from assure.simulation.workload import Workload
from bus.clock import ScaledClock
from bus.conditions import Aggregate
from bus.contracts import OpState
from bus.keys import Keys
from collector.scrape import Scraper
from collector.targets import ScrapeTarget
from mano_core.catalogue import Catalogue, CatalogueEntry
from mano_core.errors import InvalidRequest
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import VnfInstance
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vnfd import MonitoringParameter, Vnfd
from mano_core.vnfm import Vnfm

Progress = Callable[[str], None]


@dataclass
class AcceptanceReport:
    """What an acceptance run found."""

    vnfd: str
    version: str
    validated: bool = False
    measured: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    measurements: int = 0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Run:
    """The VNF under acceptance and the sandbox around it."""

    vnf: VnfInstance
    vim: SimulatedVim
    workload: Workload
    clock: ScaledClock


class _EveryScrape:
    """Series definitions on every scrape: each result carries all its samples."""

    token = 0

    def reregister_after_s(self) -> float:
        return 0.0


def combine(values: list[float], aggregate: Aggregate) -> float:
    if aggregate == "max":
        return max(values)
    if aggregate == "min":
        return min(values)
    if aggregate == "sum":
        return sum(values)
    return sum(values) / len(values)


class Acceptance:
    """Runs acceptance of catalogue entries on sandboxes built from ``settings``."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        catalogue: Catalogue,
        settings: Settings,
        *,
        speed: float = 50.0,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._catalogue = catalogue
        self._settings = settings
        self._speed = speed
        self._seed = seed
        self._progress = progress or (lambda _line: None)

    async def run(self, vnfd_id: str, version: str | None = None) -> AcceptanceReport:
        """Accept one VNFD version; records the verdict in the catalogue and returns it."""
        entry = await self._catalogue.entry("vnfd", vnfd_id, version)
        vnfd = await self._catalogue.get(entry.id, entry.version)
        if vnfd.load_profile is None:
            raise InvalidRequest(f"VNFD {entry.ref} declares no load_profile to be accepted under")
        if not vnfd.kpis_with_objectives():
            raise InvalidRequest(f"VNFD {entry.ref} has no monitoring parameter with an objective")
        report = AcceptanceReport(entry.id, entry.version)
        await self._sandbox(entry, vnfd, report)
        report.validated = not report.reasons
        await self._catalogue.record_acceptance(
            entry.id,
            entry.version,
            "validated" if report.validated else "rejected",
            measured=report.measured,
            reasons=report.reasons,
            vim="sandbox",
        )
        return report

    async def _sandbox(self, entry: CatalogueEntry, vnfd: Vnfd, report: AcceptanceReport) -> None:
        clock = ScaledClock(self._speed)
        keys = Keys(prefix=f"{self._keys.prefix}:sandbox:{uuid.uuid4().hex[:12]}")
        vim = await self._vim(clock, vnfd, keys)
        inventory = Inventory(self._redis, keys)
        ops = OpOccStore(self._redis, keys, clock)
        vnfm = Vnfm(
            vim,
            inventory,
            self._catalogue,
            ops,
            clock,
            timeout_s=self._settings.actuator.op_timeout,
        )
        hosts = len(await vim.hosts())
        self._progress(f"instantiating {entry.ref} on a sandbox VIM ({hosts} hosts)")
        vnf, op = await vnfm.instantiate(entry.id, f"accept-{entry.id}", version=entry.version)
        try:
            if op.state is not OpState.COMPLETED:
                report.reasons.append(f"instantiation ended {op.state}: {op.error}")
                return
            workload = Workload(vim, inventory, vnf.id, seed=self._seed)
            try:
                await self._drive(vnfd, _Run(vnf, vim, workload, clock), report)
            finally:
                await workload.aclose()
        finally:
            await self._terminate(vnfm, vim, vnf, report)
            await self._forget(keys)

    async def _vim(self, clock: ScaledClock, vnfd: Vnfd, keys: Keys) -> SimulatedVim:
        """A simulated VIM of the sandbox's own (its state under the sandbox's keys)."""
        s = self._settings.vim
        hosts = [SimHost(f"sandbox-{i + 1}", s.host_vcpus, s.host_ram_mb) for i in range(s.hosts)]
        vim = SimulatedVim(
            clock,
            self._redis,
            keys,
            hosts,
            name="sandbox",
            boot_s=s.boot,
            reboot_s=s.reboot,
            migrate_s=s.migrate,
            seed=self._seed,
        )
        for vdu in vnfd.vdus:
            await vim.add_image(vdu.image.name, vdu.image.version)
        return vim

    async def _drive(self, vnfd: Vnfd, run: _Run, report: AcceptanceReport) -> None:
        assert vnfd.load_profile is not None
        vnf, vim, workload, clock = run.vnf, run.vim, run.workload, run.clock
        profile = vnfd.load_profile
        interval = self._settings.collector.scrape_interval
        kpis = vnfd.monitoring_parameters
        broken: dict[str, str] = {}
        scraper = Scraper(clock, _EveryScrape(), timeout_s=self._settings.collector.scrape_timeout)
        phases = [(profile.phases[0].requests_per_second, profile.warmup, False)]
        phases += [(p.requests_per_second, p.duration, True) for p in profile.phases]
        try:
            for rps, duration, judged in phases:
                if duration <= 0:
                    continue
                workload.offered_rps = rps
                self._progress(f"{'load' if judged else 'warm-up'}: {rps:g} rps for {duration:g}s")
                end = clock.now() + duration
                next_measure = clock.now() + interval
                while clock.now() < end:
                    await workload.tick(clock.now())
                    if clock.now() >= next_measure:
                        next_measure += interval
                        if judged:
                            values = await self._measure(kpis, vnf, vim, scraper)
                            report.measurements += 1
                            self._judge(kpis, values, rps, report, broken)
                    await clock.sleep(1.0)
        finally:
            await scraper.aclose()
        for kpi in vnfd.kpis_with_objectives():
            if kpi.name not in report.measured:
                report.reasons.append(f"{kpi.name} was never measured")
        report.reasons.extend(broken.values())

    async def _measure(
        self,
        kpis: list[MonitoringParameter],
        vnf: VnfInstance,
        vim: SimulatedVim,
        scraper: Scraper,
    ) -> dict[str, float]:
        """Each KPI's VNF value now, combined across VNFCs (absent when nothing reported it)."""
        targets = [
            ScrapeTarget(c.metrics_url, {"vnfc": c.id, "vdu": c.vdu})
            for c in vnf.vnfcs
            if c.metrics_url
        ]
        scraped: dict[tuple[str, str], float] = {}  # (kpi, vnfc) -> value
        for result in await scraper.scrape_all(targets):
            if not result.up:
                continue
            for sample in result.samples:
                scraped[(sample.kpi, result.target.labels["vnfc"])] = sample.value
        servers = {c.server_id: c for c in vnf.vnfcs}
        from_vim = {
            (p.kpi, servers[p.labels["server"]].id): p.value
            for p in await vim.telemetry()
            if p.labels.get("server") in servers
        }
        values: dict[str, float] = {}
        for kpi in kpis:
            source = scraped if kpi.source == "exporter" else from_vim
            of_vnfcs = [
                source[(kpi.name, c.id)]
                for c in vnf.vnfcs
                if (kpi.vdu is None or c.vdu == kpi.vdu) and (kpi.name, c.id) in source
            ]
            if of_vnfcs:
                values[kpi.name] = combine(of_vnfcs, kpi.aggregate)
        return values

    def _judge(
        self,
        kpis: list[MonitoringParameter],
        values: dict[str, float],
        rps: float,
        report: AcceptanceReport,
        broken: dict[str, str],
    ) -> None:
        for kpi in kpis:
            value = values.get(kpi.name)
            if value is None:
                continue
            objective = kpi.objective
            worse = max if objective is None or objective.op in ("<", "<=") else min
            seen = report.measured.get(kpi.name)
            report.measured[kpi.name] = value if seen is None else worse(seen, value)
            if objective is not None and not objective.met(value) and kpi.name not in broken:
                broken[kpi.name] = (
                    f"{kpi.name} was {value:g} {kpi.unit} at {rps:g} rps "
                    f"(objective {objective.describe()})"
                )

    async def _terminate(
        self, vnfm: Vnfm, vim: SimulatedVim, vnf: VnfInstance, report: AcceptanceReport
    ) -> None:
        if await vnfm.inventory.find(vnf.id) is not None:
            op = await vnfm.terminate(vnf.id)
            if op.state is not OpState.COMPLETED:
                report.reasons.append(f"termination ended {op.state}: {op.error}")
        left = [s.id for s in await vim.servers() if s.metadata.get("vnf") == vnf.id]
        if left:
            report.reasons.append(f"termination left servers behind: {', '.join(left)}")

    async def _forget(self, keys: Keys) -> None:
        """Delete the sandbox's records (inventory, operations) from Redis."""
        pattern = f"{keys.prefix}:*"
        async for key in self._redis.scan_iter(match=pattern, count=500):
            await self._redis.delete(key)
