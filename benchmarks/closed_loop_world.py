"""The simulated day of ``benchmarks/closed_loop.py``: firewalls under load, and what breaks.

Each VNF is a vfw (its VNFD's bounds: 2 to 5 VNFCs). Its offered load
follows a diurnal curve (own phase and height) with surges; each serving
VNFC takes an equal share, and its CPU is that share over its capacity
(halved on a degraded host). The objective is the VNFD's: the VNF's
average CPU at most 75%; a VNF with no serving VNFC breaks it too.

Faults come from one seeded schedule, the same for every run: VNFC
crashes (the server stops; its exporter goes silent) and host
degradations (lasting ``DEGRADED_S``). Without a closed loop an operator
repairs a crashed VNFC ``MANUAL_REPAIR_S`` after the crash.

Operations take simulated time: a scale-out boots a server
(``BOOT_S``), a scale-in removes the newest VNFC, a heal reboots (a
soft reboot cures a crash with probability ``SOFT_CURES``, a hard one
or anything higher always), a migration moves the VNFC to the
least-loaded healthy host.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from bus.contracts import Sample
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance

DAY_S = 86_400.0
STEP_S = 15.0
CAPACITY_RPS = 100.0
"""Requests per second one VNFC serves at 100% CPU."""
OBJECTIVE = 75.0
MIN_VNFCS, MAX_VNFCS = 2, 5
BOOT_S = 60.0
REBOOT_S = {"soft_reboot": 30.0, "hard_reboot": 60.0, "rebuild": 120.0, "recreate": 180.0}
SOFT_CURES = 0.6
MIGRATE_S = 30.0
SCALE_IN_S = 10.0
DEGRADED_S = 2 * 3600.0
MANUAL_REPAIR_S = 3600.0
HOSTS = 12


@dataclass
class Vnfc:
    id: str
    host: str
    created_at: float
    ready_at: float
    """When it serves (booted); a crash sets ``crashed_at``."""
    crashed_at: float | None = None
    busy_until: float = 0.0

    def serving(self, now: float) -> bool:
        return self.crashed_at is None and now >= self.ready_at


@dataclass
class Vnf:
    id: str
    phase: float
    """Hour of its daily peak."""
    peak_rps: float
    vnfcs: list[Vnfc] = field(default_factory=list)
    serial: int = 0


@dataclass
class Surge:
    vnf: str
    start: float
    end: float
    factor: float


@dataclass
class Faults:
    crashes: list[tuple[float, str, int]]
    """(when, VNF id, which VNFC by index modulo its count)."""
    degradations: list[tuple[float, str]]
    surges: list[Surge]


def fault_schedule(vnfs: int, seed: int, *, crashes: int, degradations: int, surges: int) -> Faults:
    rng = random.Random(seed)
    ids = [f"vfw-{i:02d}" for i in range(vnfs)]
    return Faults(
        crashes=sorted((rng.uniform(0, DAY_S), rng.choice(ids), rng.randrange(5))
                       for _ in range(crashes)),
        degradations=sorted((rng.uniform(0, DAY_S - DEGRADED_S), f"compute-{rng.randrange(HOSTS)}")
                            for _ in range(degradations)),
        surges=[Surge(v, s, s + rng.uniform(900, 3600), rng.uniform(1.3, 1.6))
                for v, s in ((rng.choice(ids), rng.uniform(0, DAY_S)) for _ in range(surges))],
    )  # fmt: skip


@dataclass
class Metrics:
    broken_s: float = 0.0
    actions: int = 0
    oscillations: int = 0
    recoveries: list[float] = field(default_factory=list)
    vm_s: float = 0.0
    scale_marks: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Per VNF, the last scale (when it ended, +1 out / -1 in), for oscillations."""


class World:
    """The VNFs, hosts and faults of the day, at the time :meth:`advance` moved to."""

    def __init__(self, vnfs: int, faults: Faults, seed: int, *, cooldown_s: float) -> None:
        rng = random.Random(seed)
        self.rng = random.Random(seed + 1)
        self.faults = faults
        self.cooldown_s = cooldown_s
        self.now = 0.0
        self.vnfs: dict[str, Vnf] = {}
        self.degraded: dict[str, float] = {}
        """Host -> when its degradation ends."""
        self._crash, self._degrade = 0, 0
        self.metrics = Metrics()
        for i in range(vnfs):
            vnf = Vnf(f"vfw-{i:02d}", phase=rng.uniform(10, 21), peak_rps=rng.uniform(180, 260))
            self.vnfs[vnf.id] = vnf
            for _ in range(self.needed(vnf.id, 0.0)):
                self.add_vnfc(vnf, ready_at=0.0)

    # --- load and KPIs ----------------------------------------------------------------
    def load(self, vnf_id: str, t: float) -> float:
        vnf = self.vnfs[vnf_id]
        hours = (t % DAY_S) / 3600.0
        diurnal = 0.3 + 0.7 * (0.5 + 0.5 * math.cos(2 * math.pi * (hours - vnf.phase) / 24))
        surge = max((s.factor for s in self.faults.surges
                     if s.vnf == vnf_id and s.start <= t < s.end), default=1.0)  # fmt: skip
        return vnf.peak_rps * diurnal * surge

    def factor(self, vnfc: Vnfc) -> float:
        return 0.5 if vnfc.host in self.degraded else 1.0

    def cpu(self, vnf_id: str) -> dict[str, float]:
        """Each serving VNFC's CPU now (%)."""
        serving = [c for c in self.vnfs[vnf_id].vnfcs if c.serving(self.now)]
        if not serving:
            return {}
        share = self.load(vnf_id, self.now) / len(serving)
        return {c.id: min(100.0, 100.0 * share / (CAPACITY_RPS * self.factor(c))) for c in serving}

    def broken(self, vnf_id: str) -> bool:
        cpu = self.cpu(vnf_id)
        return not cpu or sum(cpu.values()) / len(cpu) > OBJECTIVE

    def needed(self, vnf_id: str, t: float) -> int:
        """The fewest VNFCs that keep the objective at ``t`` on healthy hosts."""
        want = math.ceil(self.load(vnf_id, t) / (CAPACITY_RPS * OBJECTIVE / 100) - 1e-9)
        return max(MIN_VNFCS, min(MAX_VNFCS, want))

    def samples(self) -> list[Sample]:
        """What the exporters and the VIM report now (a crashed VNFC reports nothing)."""
        out = []
        for vnf in self.vnfs.values():
            cpu = self.cpu(vnf.id)
            for vnfc in vnf.vnfcs:
                if vnfc.id not in cpu:
                    continue
                labels = {"vnf": vnf.id, "vnfc": vnfc.id, "vnfd": "vfw", "host": vnfc.host}
                out.append(Sample("vnf_cpu_utilisation", labels, self.now, cpu[vnfc.id]))
                rps = self.load(vnf.id, self.now) / len(cpu)
                out.append(Sample("vnf_requests_per_second", labels, self.now, rps))
        for h in range(HOSTS):
            host = f"compute-{h}"
            degraded = 1.0 if host in self.degraded else 0.0
            out.append(Sample("vim_host_degraded", {"host": host}, self.now, degraded))
        return out

    # --- time -------------------------------------------------------------------------
    def advance(self, to: float, *, manual_repair: bool) -> list[tuple[str, str]]:
        """Account for ``[now, to)`` and move on; returns the faults that began ``(kind, id)``."""
        dt = to - self.now
        for vnf in self.vnfs.values():
            self.metrics.vm_s += dt * len(vnf.vnfcs)
            if self.broken(vnf.id):
                self.metrics.broken_s += dt
        self.now = to
        began: list[tuple[str, str]] = []
        for host, until in list(self.degraded.items()):
            if until <= to:
                del self.degraded[host]
        while self._degrade < len(self.faults.degradations):
            at, host = self.faults.degradations[self._degrade]
            if at > to:
                break
            self.degraded[host] = at + DEGRADED_S
            began.append(("degrade", host))
            self._degrade += 1
        while self._crash < len(self.faults.crashes):
            at, vnf_id, index = self.faults.crashes[self._crash]
            if at > to:
                break
            self._crash += 1
            alive = [c for c in self.vnfs[vnf_id].vnfcs if c.crashed_at is None]
            if alive:
                victim = alive[index % len(alive)]
                victim.crashed_at = at
                began.append(("crash", victim.id))
        if manual_repair:
            for vnf in self.vnfs.values():
                for vnfc in vnf.vnfcs:
                    if vnfc.crashed_at is not None and to - vnfc.crashed_at >= MANUAL_REPAIR_S:
                        self.recovered(vnfc)
        return began

    # --- changes ------------------------------------------------------------------------
    def add_vnfc(self, vnf: Vnf, *, ready_at: float) -> Vnfc:
        vnf.serial += 1
        vnfc = Vnfc(f"{vnf.id}-c{vnf.serial}", self.placement(), self.now, ready_at)
        vnf.vnfcs.append(vnfc)
        return vnfc

    def remove_newest(self, vnf: Vnf) -> None:
        newest = max(vnf.vnfcs, key=lambda c: c.created_at)
        if newest.crashed_at is not None:
            self.metrics.recoveries.append(self.now - newest.crashed_at)
        vnf.vnfcs.remove(newest)

    def recovered(self, vnfc: Vnfc) -> None:
        if vnfc.crashed_at is not None:
            self.metrics.recoveries.append(self.now - vnfc.crashed_at)
            vnfc.crashed_at = None

    def placement(self) -> str:
        """The healthy host with the fewest VNFCs."""
        count = {f"compute-{h}": 0 for h in range(HOSTS)}
        for vnf in self.vnfs.values():
            for c in vnf.vnfcs:
                count[c.host] += 1
        healthy = [h for h in count if h not in self.degraded] or list(count)
        return min(healthy, key=lambda h: (count[h], h))

    def scaled(self, vnf_id: str, direction: int) -> None:
        """Count a scale action and an oscillation (the reverse within the cooldown)."""
        self.metrics.actions += 1
        last = self.metrics.scale_marks.get(vnf_id)
        if last is not None and last[1] != direction and self.now - last[0] < self.cooldown_s:
            self.metrics.oscillations += 1
        self.metrics.scale_marks[vnf_id] = (self.now, direction)

    def instance(self, vnf_id: str) -> VnfInstance:
        """The VNF as the inventory lists it: its VNFCs that booted (crashed ones included)."""
        vnf = self.vnfs[vnf_id]
        listed = [c for c in vnf.vnfcs if self.now >= c.ready_at]
        return VnfInstance(
            id=vnf.id, name=vnf.id, vnfd_id="vfw", vim="sim",
            state=InstantiationState.INSTANTIATED,
            scale_levels={"fw-scale": max(0, min(3, len(listed) - MIN_VNFCS))},
            vnfcs=[VnfcInstance(c.id, "fw", f"srv-{c.id}", c.host, None, None, c.created_at)
                   for c in listed],
            created_at=0.0, updated_at=self.now,
        )  # fmt: skip
