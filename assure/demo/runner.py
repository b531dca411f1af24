"""Runs the demo scenario against the real platform and judges what it did.

The platform runs as in production (private Redis, collector scraping real
HTTP exporters, analytics, policy engine, actuator) on two simulated sites,
in accelerated time. The NFVO instantiates the network service ``edge``
(the firewall ``vfw`` behind the load balancer ``vlb``, each on a site of
its own); the scenario's faults hit the firewall. The runner plays the
world around it: it offers the traffic to both VNFs, injects the planned
faults, keeps the ground truth of the firewall's KPI objective, and
watches the platform's streams to tell what it detected and did.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from assure.demo.plan import ScenarioPlan
from assure.demo.progress import Progress
from assure.demo.report import ActionOutcome, DemoReport
from assure.demo.worlds import DemoWorld, open_worlds, pinned_nsd
from assure.platform import ROLES, Platform
from assure.settings import DEFAULTS_DIR, Settings
from assure.simulation.workload import Workload
from bus.clock import ScaledClock
from bus.contracts import Decision, OpResult, Violation, ViolationStatus, decode
from bus.streams import FIELD
from mano_core.models import VnfInstance
from mano_core.nfvo.records import NsInstance, NsOpState

NSD_FILE = DEFAULTS_DIR / "nsds" / "edge.yaml"
NSD_ID = "edge"
FIREWALL = "fw"
"""The NS member the scenario's faults hit and whose KPI objective is judged."""
TICK_S = 1.0
"""Scenario seconds between two workload updates."""
GRACE_S = 30.0
HOLD_MAX_S = 120.0
"""How long a due fault waits for the actions still outstanding (scenario seconds)."""
"""Scenario seconds to keep watching after the last expected action, to catch extra ones."""


@dataclass
class Observed:
    """What the platform said on its streams, keyed for matching."""

    violations: dict[str, Violation] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    results: list[OpResult] = field(default_factory=list)
    paired: set[str] = field(default_factory=set)
    """Operation ids already paired with an expected action; any other is unexpected."""
    episodes: dict[str, ActionOutcome] = field(default_factory=dict)
    """The expected action each paired episode carried out (its later steps join it)."""


@dataclass
class World:
    """The running scenario: the platform under test and the simulated world around it."""

    platform: Platform
    vim: DemoWorld
    """The firewall's VIM."""
    workload: Workload
    """The firewall's: its state is the ground truth."""
    others: list[Workload]
    """The other members' (offered the same traffic; not judged)."""
    vnf_id: str
    vnf_name: str
    clock: ScaledClock
    t0: float
    """Scenario start, in clock time."""
    expected: list[ActionOutcome] = field(default_factory=list)

    def expect(self, action: str, fault: str, vnfc: str | None, at: float) -> None:
        label = vnfc or self.vnf_name
        self.expected.append(ActionOutcome(action, fault, self.vnf_id, vnfc, at, label=label))


class StreamWatcher:
    """Reads new entries of the platform's event streams without joining their groups."""

    def __init__(self, platform: Platform) -> None:
        self._redis = platform.redis
        self._last = {
            platform.keys.stream(name): "0-0" for name in ("violations", "decisions", "op_results")
        }

    async def poll(self) -> list[Violation | Decision | OpResult]:
        out: list[Violation | Decision | OpResult] = []
        for key, last in self._last.items():
            response = await self._redis.xread({key: last}, count=500)
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    self._last[key] = entry_id.decode()
                    message = decode(fields[FIELD])
                    if isinstance(message, Violation | Decision | OpResult):
                        out.append(message)
        return out


class DemoRunner:
    def __init__(
        self,
        settings: Settings,
        plan: ScenarioPlan,
        progress: Progress,
        *,
        speed: float = 20.0,
        policies: Path | None = None,
        firewall_vim: str | None = None,
    ) -> None:
        self.settings = settings
        self.firewall_vim = firewall_vim
        """The VIM the firewall is pinned to (None: where the NFVO places it)."""
        self.ns_id: str | None = None
        self.plan = plan
        self.progress = progress
        self.speed = speed
        self.policies = policies
        self.observed = Observed()
        self.states: list[tuple[float, float, bool]] = []
        """(scenario time, seconds covered, objective met) of every tick."""

    async def run(self) -> DemoReport:
        wall0 = time.monotonic()
        # The stages' modules take seconds to import on a busy machine: import
        # them now, not inside the scenario's first tick (where the jump in
        # scenario time would run its first faults together).
        importlib.import_module("assure.roles")
        report = DemoReport(seed=self.plan.seed)
        clock = ScaledClock(self.speed)
        platform = await Platform.open(self.settings, clock, seed=self.plan.seed)
        worlds: dict[str, DemoWorld] = {}
        members: dict[str, VnfInstance] | None = None
        workload: Workload | None = None
        others: list[Workload] = []
        stop = asyncio.Event()
        roles: asyncio.Task[None] | None = None
        try:
            await platform.onboard_dir(self.settings.policy.vnfd_dir)
            loaded = platform.load_policies(self.policies)
            for problem in loaded.problems:
                self.progress.warn(f"policy skipped: {problem.format()}")
            if not loaded.policies:
                report.problems.append("no valid policy loaded: nothing can act")
                return report
            self.progress.info(
                f"loaded {len(loaded.policies)} policies: "
                + ", ".join(p.metadata.name for p in loaded.policies)
            )
            members = await self._instantiate(platform, report)
            if members is None:
                return report
            worlds = await open_worlds(platform, self.settings, (v.vim for v in members.values()))
            vnf = members[FIREWALL]
            vim = worlds[vnf.vim]
            workload = Workload(
                vim.infrastructure, platform.inventory, vnf.id, seed=self.plan.noise_seed
            )
            others = [
                Workload(worlds[other.vim].infrastructure, platform.inventory, other.id, seed=i)
                for i, other in enumerate(v for m, v in members.items() if m != FIREWALL)
            ]
            for each in (workload, *others):
                each.offered_rps = self.plan.base_rps
                # The exporters serve before the collector's first scrape: a slow first
                # reading of a real cloud must not read as VNFCs gone silent.
                await each.tick(clock.now())
            roles = asyncio.create_task(platform.run_roles(ROLES, stop, loaded))
            world = World(platform, vim, workload, others, vnf.id, vnf.name, clock, clock.now())
            await self._play(world, report, roles)
        finally:
            stop.set()
            if roles is not None:
                try:
                    await roles
                except Exception as exc:  # reported, and the run fails
                    report.problems.append(f"platform stopped with an error: {exc!r}")
            for each in ([workload] if workload is not None else []) + others:
                await each.aclose()
            try:
                report.problems += await self._give_back(platform, worlds, members)
            finally:
                for each_world in worlds.values():
                    await each_world.aclose()
                await platform.aclose()
            report.wall_seconds = time.monotonic() - wall0
        return report

    async def _instantiate(
        self, platform: Platform, report: DemoReport
    ) -> dict[str, VnfInstance] | None:
        """Onboard the NSD and instantiate the NS through the NFVO; its VNFs by member."""
        text = NSD_FILE.read_text(encoding="utf-8")
        if self.firewall_vim is not None:
            text = pinned_nsd(text, FIREWALL, self.firewall_vim)
        await platform.onboarding.nsd(text, str(NSD_FILE))
        taken = {ns.name for ns in await platform.nslcm.list()}
        name = next(n for n in (NSD_ID, *(f"{NSD_ID}-{i}" for i in range(2, 10_000)))
                    if n not in taken)  # fmt: skip
        ns: NsInstance = await platform.nslcm.create(NSD_ID, name)
        self.ns_id = ns.id
        op = await platform.nslcm.instantiate(ns.id)
        if op.state is not NsOpState.COMPLETED:
            report.problems.append(f"instantiation of NS {name} ended {op.state}: {op.error}")
            return None
        ns = await platform.nslcm.get(ns.id)
        members: dict[str, VnfInstance] = {}
        for member in ns.vnfs:
            assert member.vnf_id is not None  # instantiated
            vnf = await platform.inventory.get(member.vnf_id)
            members[member.member] = vnf
            self.progress.names[vnf.id] = vnf.name
            self.progress.info(
                f"VNF {vnf.name} ({vnf.vnfd_id}) with {len(vnf.vnfcs)} VNFCs on {vnf.vim}: "
                + ", ".join(sorted({c.host or "?" for c in vnf.vnfcs}))
            )
        self.progress.info(f"instantiated NS {ns.name} ({ns.id}) through the NFVO")
        return members

    async def _give_back(
        self,
        platform: Platform,
        worlds: dict[str, DemoWorld],
        members: dict[str, VnfInstance] | None,
    ) -> list[str]:
        """On a cloud that keeps what the demo created: terminate the NS through the NFVO,
        then each world checks that nothing of its VNFs is left; the problems."""
        if self.ns_id is None or not any(w.keeps_resources for w in worlds.values()):
            return []
        problems = []
        op = await platform.nslcm.terminate(self.ns_id)
        if op.state is not NsOpState.COMPLETED:
            problems.append(f"termination of NS {self.ns_id} ended {op.state}: {op.error}")
        else:
            self.progress.info(f"terminated NS {self.ns_id} through the NFVO")
        for name, world in worlds.items():
            vnf_ids = [v.id for v in (members or {}).values() if v.vim == name]
            problems += await world.finish(vnf_ids, self.progress)
        return problems

    async def _play(self, world: World, report: DemoReport, roles: asyncio.Task[None]) -> None:
        watcher = StreamWatcher(world.platform)
        faults = self._faults(world)
        finished_at: float | None = None
        last_progress = -1e9
        last_tick = 0.0
        held = 0.0
        """Scenario seconds the faults (and the deadline) were held back, in all."""
        holding_since: float | None = None
        while True:
            t = world.clock.now() - world.t0
            if roles.done():
                report.problems.append("the platform's roles stopped before the scenario ended")
                break
            while faults and faults[0][0] + held <= t:
                outstanding = any(a.completed_at is None for a in world.expected)
                if outstanding and (holding_since is None or t - holding_since < HOLD_MAX_S):
                    # A fault is attributed to the action it calls for only when the
                    # earlier ones are done: on a slow machine the plan slides, and the
                    # faults stay apart.
                    holding_since = t if holding_since is None else holding_since
                    held += t - last_tick
                    break
                holding_since = None
                _, inject = faults.pop(0)
                await inject(t)
            state = await world.workload.tick(world.clock.now())
            for other in world.others:
                await other.tick(world.clock.now())
            self.states.append((t, t - last_tick, state.objective_met))
            last_tick = t
            for event in await watcher.poll():
                self._observe(event, world.t0)
            if t - last_progress >= 10.0:
                self.progress.kpis(t, state)
                last_progress = t
            self._match(world.expected, world.t0)
            if (
                finished_at is None
                and not faults
                and all(a.completed_at is not None for a in world.expected)
            ):
                finished_at = t
            if (finished_at is not None and t >= finished_at + GRACE_S) or (
                t >= self.plan.deadline + held
            ):
                break
            await world.clock.sleep(TICK_S)
        report.actions = world.expected
        self._account(report, world.t0)

    def _faults(self, world: World) -> list[tuple[float, Callable[[float], Awaitable[None]]]]:
        """The planned faults in time order, each a coroutine that injects it."""
        plan, vim, workload = self.plan, world.vim, world.workload

        def traffic(
            rps: float, what: str, expect: str | None
        ) -> Callable[[float], Awaitable[None]]:
            async def inject(t: float) -> None:
                self.progress.fault(t, f"{what}: {workload.offered_rps:.0f} -> {rps:.0f} rps")
                for each in (workload, *world.others):
                    each.offered_rps = rps
                if expect is not None:
                    world.expect(expect, what, None, t)

            return inject

        async def crash(t: float) -> None:
            vnf = await world.platform.inventory.get(world.vnf_id)
            victim = vnf.vnfcs[plan.seed % len(vnf.vnfcs)]
            what = await vim.crash(victim.server_id)
            self.progress.fault(t, f"VNFC {victim.id} {what}")
            world.expect("heal", "VNFC crash", victim.id, t)

        async def degrade(t: float) -> None:
            vnf = await world.platform.inventory.get(world.vnf_id)
            by_host: dict[str, list[str]] = {}
            for c in vnf.vnfcs:
                by_host.setdefault(c.host or "?", []).append(c.id)
            host = max(sorted(by_host), key=lambda h: len(by_host[h]))
            what = await vim.degrade(host)
            self.progress.fault(t, f"host {host} {what}; it carries {', '.join(by_host[host])}")
            for vnfc_id in by_host[host]:
                world.expect("migrate", f"{host} degraded", vnfc_id, t)

        return [
            (plan.surge_at, traffic(plan.surge_rps, "traffic surge", "scale_out")),
            (plan.surge_end_at, traffic(plan.after_surge_rps, "surge over", None)),
            (plan.crash_at, crash),
            (plan.degrade_at, degrade),
            (plan.drop_at, traffic(plan.drop_rps, "traffic drop", "scale_in")),
        ]

    def _observe(self, event: Violation | Decision | OpResult, t0: float) -> None:
        obs = self.observed
        if isinstance(event, Violation):
            if event.status == ViolationStatus.ONSET:
                obs.violations[event.id] = event
            self.progress.violation(event.at - t0, event)
        elif isinstance(event, Decision):
            obs.decisions[event.id] = event
            self.progress.decision(event.decided_at - t0, event)
        else:
            obs.results.append(event)
            at = (event.finished_at or event.started_at) - t0
            self.progress.result(at, event)

    def _match(self, expected: list[ActionOutcome], t0: float) -> None:
        """Pair each expected action with the operation that carried it out.

        The steps of one episode (a heal climbing its ladder) are one action:
        its last operation is the one that carried it out.
        """
        for result in self.observed.results:
            if not result.state.final or result.op_id in self.observed.paired:
                continue
            decision = self.observed.decisions.get(result.decision_id)
            episode = decision.episode if decision is not None else ""
            earlier = self.observed.episodes.get(episode) if episode else None
            if earlier is not None and earlier.action == result.action.value:
                earlier.completed_at = (result.finished_at or result.started_at) - t0
                earlier.state = result.state.value
                self.observed.paired.add(result.op_id)
                continue
            for outcome in expected:
                if outcome.completed_at is not None or outcome.action != result.action.value:
                    continue
                if outcome.vnfc is not None and result.target.id != outcome.vnfc:
                    continue
                if result.started_at - t0 < outcome.fault_at:
                    continue
                violation = (
                    self.observed.violations.get(decision.violation_id) if decision else None
                )
                outcome.detected_at = violation.at - t0 if violation else None
                outcome.completed_at = (result.finished_at or result.started_at) - t0
                outcome.state = result.state.value
                self.observed.paired.add(result.op_id)
                if episode:
                    self.observed.episodes[episode] = outcome
                break

    def _account(self, report: DemoReport, t0: float) -> None:
        report.objective_broken_seconds = sum(dt for _, dt, met in self.states if not met)
        for outcome in report.actions:
            end = outcome.completed_at if outcome.completed_at is not None else float("inf")
            outcome.objective_broken_seconds = sum(
                dt for t, dt, met in self.states if not met and outcome.fault_at <= t <= end
            )
        for result in self.observed.results:
            decision = self.observed.decisions.get(result.decision_id)
            if decision is None or not decision.approved or result.op_id in self.observed.paired:
                continue
            report.unexpected.append(
                f"{result.action.value} on {result.target.key()} at "
                f"{(result.started_at - t0):.0f}s ({result.state.value}): {decision.reason}"
            )
