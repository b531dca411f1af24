"""The closed loop without Redis: in-memory facts and records, on a clock the caller moves.

:class:`OfflineLoop` runs the same :class:`~policy.loop.ClosedLoop` as the
live engine (:mod:`policy.engine`), with violations routed by the same
:class:`~policy.targets.TargetRouter`, but keeps each VNF's record in a
dict and answers the loop's questions from a :class:`MemoryWorld` (the
VNF instances and descriptors the caller keeps up to date). Time is only
what the caller passes, so a backtest runs recorded history at the pace of
the CPU and a simulated day runs in seconds.

What the live engine reads from operators (mode overrides, opt-outs,
approvals) is empty here: each policy runs in the mode its file says, and
a decision that waits for approval gets the policy's default when its
approval timeout ends. Network services are not modelled: a violation of
scope ``ns`` concerns nothing here.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bus.contracts import Decision, GuardResult, OpResult, TargetKind, Violation, ViolationStatus
from mano_core.errors import NotFound
from mano_core.models import VnfcInstance, VnfInstance
from mano_core.nfvo.records import NsInstance
from mano_core.nsd import Nsd
from mano_core.vnfd import Vnfd
from policy.guards import CONCURRENCY
from policy.loop import ClosedLoop, Effects
from policy.schema import KpiPolicy, Mode
from policy.state import Episode, Phase, VnfLoop
from policy.targets import TargetRouter

ONSET_WINDOW_S = 86_400.0
"""How long ONSETs are counted for the blast-radius breaker."""
_TICK_S = 1.0
"""The least time between two follow-ups of a record still due (the live engine's tick)."""


@dataclass
class MemoryWorld:
    """The VNF instances and VNFDs an offline loop sees; the caller keeps them current."""

    vnfs: dict[str, VnfInstance] = field(default_factory=dict)
    vnfds: dict[str, Vnfd] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    """Every host known (for the blast radius's share of failing hosts); the
    hosts of the VNFCs count too."""

    # --- what the router reads (the inventory's and the catalogue's questions) ---------
    async def find(self, vnf_id: str) -> VnfInstance | None:
        return self.vnfs.get(vnf_id)

    async def find_vnfc(self, vnfc_id: str) -> tuple[VnfInstance, VnfcInstance] | None:
        for vnf in self.vnfs.values():
            vnfc = vnf.vnfc(vnfc_id)
            if vnfc is not None:
                return vnf, vnfc
        return None

    async def vnfcs_on_host(self, host: str) -> list[tuple[VnfInstance, VnfcInstance]]:
        return [(v, c) for v in self.vnfs.values() for c in v.vnfcs if c.host == host]

    async def get(self, vnfd_id: str, version: str | None = None) -> Vnfd:
        vnfd = self.vnfds.get(vnfd_id)
        if vnfd is None or (version is not None and vnfd.version != version):
            raise NotFound(f"VNFD {vnfd_id} {version or ''} is not known".replace("  ", " "))
        return vnfd

    def known_hosts(self) -> set[str]:
        return self.hosts | {c.host for v in self.vnfs.values() for c in v.vnfcs if c.host}


class MemoryFacts:
    """The loop's facts (:class:`~policy.facts.Facts`) from a :class:`MemoryWorld`.

    ``max_concurrent`` / ``max_concurrent_per_host`` cap the operations
    under way at once (0: no cap), as the live engine's settings do.
    """

    def __init__(
        self, world: MemoryWorld, *, max_concurrent: int = 0, max_concurrent_per_host: int = 0
    ) -> None:
        self.world = world
        self.max_concurrent = max_concurrent
        self.max_concurrent_per_host = max_concurrent_per_host
        self.onsets: list[float] = []
        """When ONSETs arrived (the blast radius counts them)."""
        self.failing_hosts: dict[str, str] = {}
        """Violation id -> host, for the host violations open now."""
        self._slots: dict[str, str] = {}
        """Decision id -> host ("" for none) of the operations under way."""

    async def vnf(self, vnf_id: str) -> VnfInstance | None:
        return self.world.vnfs.get(vnf_id)

    async def vnfd_of(self, vnf: VnfInstance) -> Vnfd | None:
        try:
            return await self.world.get(vnf.vnfd_id, vnf.vnfd_version)
        except NotFound:
            return None

    async def ns(self, ns_id: str) -> NsInstance | None:
        return None  # network services are not modelled offline

    async def nsd_of(self, ns: NsInstance) -> Nsd | None:
        return None

    async def busy(self, loop_id: str) -> str | None:
        return None

    async def mode(self, policy: KpiPolicy) -> Mode:
        return policy.spec.mode

    async def opted_out(self, vnf: str, hosts: Sequence[str]) -> str | None:
        return None

    async def approval(self, decision_id: str) -> tuple[str, str] | None:
        return None

    async def onsets_since(self, since: float) -> int:
        return sum(1 for at in self.onsets if at >= since)

    async def failing_host_share(self) -> float:
        known = self.world.known_hosts()
        failing = set(self.failing_hosts.values()) & known
        return len(failing) / len(known) if known else 0.0

    async def capacity(self, vnf: VnfInstance, vnfd: Vnfd, vdu: str, count: int) -> GuardResult:
        return GuardResult("capacity", True, "no granter to ask; not checked")

    async def claim_slot(self, decision_id: str, host: str | None, now: float) -> GuardResult:
        if decision_id in self._slots:
            return GuardResult(CONCURRENCY, True, f"{len(self._slots)} operation(s) under way")
        running = len(self._slots)
        on_host = sum(1 for h in self._slots.values() if host and h == host)
        if self.max_concurrent and running >= self.max_concurrent:
            return GuardResult(
                CONCURRENCY,
                False,
                f"{running} operations under way (at most {self.max_concurrent} at once)",
            )
        if host and self.max_concurrent_per_host and on_host >= self.max_concurrent_per_host:
            return GuardResult(
                CONCURRENCY,
                False,
                f"{on_host} operations under way on host {host} "
                f"(at most {self.max_concurrent_per_host} per host)",
            )
        self._slots[decision_id] = host or ""
        return GuardResult(CONCURRENCY, True, f"{running + 1} operation(s) under way")

    async def release_slot(self, decision_id: str) -> None:
        self._slots.pop(decision_id, None)


class OfflineLoop:
    """The closed loop over in-memory records: violations, results and time in, decisions out.

    ``closed`` collects every episode as it closes (with its whole chain).
    """

    def __init__(
        self,
        policies: Sequence[KpiPolicy],
        world: MemoryWorld,
        *,
        max_concurrent: int = 0,
        max_concurrent_per_host: int = 0,
        requeue_s: float = 5.0,
    ) -> None:
        self.world = world
        self.facts = MemoryFacts(
            world, max_concurrent=max_concurrent, max_concurrent_per_host=max_concurrent_per_host
        )
        self.loop = ClosedLoop(policies, self.facts, requeue_s=requeue_s)
        self._router = TargetRouter(world, world)
        self.states: dict[str, VnfLoop] = {}
        self._routes: dict[str, set[str]] = {}
        self.closed: list[Episode] = []
        self._seen_closed: set[str] = set()

    async def violation(self, violation: Violation, now: float) -> list[Decision]:
        """Take one ONSET or ABATED through the loop, as the live engine does."""
        policy = self.loop.policy(violation.policy)
        if policy is None:
            return []
        host = violation.target.kind is TargetKind.HOST
        if violation.status is ViolationStatus.ABATED:
            if host:
                self.facts.failing_hosts.pop(violation.id, None)
            vnfs = self._routes.pop(violation.id, set())
            if not vnfs and not host:
                vnfs = {violation.target.vnf or violation.target.id}
            out: list[Decision] = []
            for vnf_id in sorted(vnfs):
                state = self._state(vnf_id)
                out += self._apply(state, await self.loop.abated(state, violation, now), now)
            return out
        self.facts.onsets = [at for at in self.facts.onsets if now - at < ONSET_WINDOW_S]
        self.facts.onsets.append(now)
        if host:
            self.facts.failing_hosts[violation.id] = violation.target.id
        route = await self._router.route(policy, violation)
        self._routes[violation.id] = set(route.targets)
        out = []
        for vnf_id, targets in route.targets.items():
            state = self._state(vnf_id)
            out += self._apply(state, await self.loop.onset(state, violation, targets, now), now)
        return out

    async def result(self, result: OpResult, now: float) -> list[Decision]:
        """The operation of a decision ended."""
        vnf_id = result.vnf or result.target.vnf or ""
        if vnf_id not in self.states:
            return []
        state = self.states[vnf_id]
        return self._apply(state, await self.loop.result(state, result, now), now)

    async def tick(self, now: float) -> list[Decision]:
        """Follow up every VNF whose record is due at ``now``."""
        out: list[Decision] = []
        for state in list(self.states.values()):
            due = state.next_at()
            if due is not None and due <= now:
                out += self._apply(state, await self.loop.tick(state, now), now)
        return out

    def next_due(self) -> float:
        """When the soonest record is due (``inf``: none is)."""
        times = [t for s in self.states.values() if (t := s.next_at()) is not None]
        return min(times, default=math.inf)

    async def run_until(
        self, until: float, tick: Callable[[float], Awaitable[list[Decision]]] | None = None
    ) -> list[Decision]:
        """Tick at every due time up to ``until`` (inclusive), soonest first.

        ``tick`` replaces :meth:`tick` (to do what the caller must first, or
        after). A record still due after its tick is looked at again a
        second later at the earliest, as the live engine's tick would.
        """
        out: list[Decision] = []
        last = -math.inf
        while (due := max(self.next_due(), last + _TICK_S)) <= until:
            out += await (tick or self.tick)(due)
            last = due
        return out

    def _state(self, vnf_id: str) -> VnfLoop:
        state = self.states.get(vnf_id)
        if state is None:
            state = self.states[vnf_id] = VnfLoop(vnf=vnf_id)
        return state

    def _apply(self, state: VnfLoop, fx: Effects, now: float) -> list[Decision]:
        state.prune(now)
        for episode in fx.episodes.values():
            if episode.phase is Phase.CLOSED and episode.id not in self._seen_closed:
                self._seen_closed.add(episode.id)
                self.closed.append(episode)
        return list(fx.decisions)


__all__ = ["MemoryFacts", "MemoryWorld", "OfflineLoop"]
