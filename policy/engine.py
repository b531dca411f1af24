"""The policy engine: the closed loop (:mod:`policy.loop`) run live on Redis.

It consumes the ``violations`` stream (ONSET and ABATED) and the
``op_results`` stream (how the actuator's operations ended), each with a
consumer group so several policy workers share the work, and looks at the
VNFs (and network services, with ``ns_inventory``) that are due
(:mod:`policy.store`) on its clock. Every change of a VNF's loop is one
compare-and-set of its record; the decisions it produced are saved in the
record's outbox first and published after, so a worker that dies in between
has them published by the next one that touches the VNF (the actuator runs
each decision id once). Every decision, approved or not, is published to
``decisions``; every episode it touched is written to the audit trail
(:mod:`policy.audit`).

An ONSET read after its violation already abated (a backlog) is not acted
on: the ``active`` guard denies it. A violation that concerns no VNF the
policy applies to is answered by one denied decision saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bus.clock import Clock
from bus.contracts import (
    Decision,
    GuardResult,
    Message,
    OpResult,
    TargetKind,
    Violation,
    ViolationStatus,
    decode,
    encode,
)
from bus.keys import Keys
from bus.locks import KeyedLocks
from bus.redis import is_transient, reply_text
from bus.streams import ConsumerSettings, StreamConsumer, StreamPublisher, consumer_name
from bus.tasks import cancel_and_wait, raise_if_cancelled, wait_for_stop
from mano_core.catalogue import Catalogue
from mano_core.grants import Granter
from mano_core.inventory import Inventory
from mano_core.nfvo.inventory import NsInventory
from mano_core.vim.base import VimDriver
from policy.audit import AuditTrail
from policy.guards import TARGET, active_guard
from policy.guards_ns import scaled_members
from policy.loop import ClosedLoop, Effects
from policy.records import unrouted
from policy.reload import PolicyDirectory
from policy.replacements import PolicyReplacements
from policy.schema import KpiPolicy
from policy.state import VnfLoop, ns_loop_id
from policy.store import Conflict, LoopStore, RedisFacts
from policy.targets import TargetRouter

log = logging.getLogger(__name__)

_RETRIES = 8
"""Compare-and-set attempts on one VNF's record before the event is retried as a whole."""
_ROUTE_TTL_S = 86_400
"""How long (wall seconds) a violation remembers the VNFs it was routed to."""
_ONSET_WINDOW_S = 86_400.0
"""How long ONSETs are counted for the blast-radius breaker (clock seconds)."""

Work = Callable[[VnfLoop, float], Awaitable[Effects]]


class PolicyEngine:
    """Decides what to do about violations, per the loaded KPI policies, and follows up.

    ``tick_s`` is how often (clock seconds) it looks for VNFs that are due;
    ``claim_s`` how long a due VNF it works on is kept from the others.
    ``max_concurrent`` / ``max_concurrent_per_host`` cap the operations
    under way at once (0: no cap). The decisions stream is trimmed to about
    ``maxlen`` entries. ``ns_inventory`` holds the network services that
    violations of scope ``ns`` name (None: those concern nothing).
    """

    def __init__(  # noqa: PLR0917 -- the positional collaborators are the documented API
        self,
        redis: Any,
        keys: Keys,
        inventory: Inventory,
        catalogue: Catalogue,
        clock: Clock,
        policies: Sequence[KpiPolicy],
        *,
        group: str = "policy",
        consumer: str | None = None,
        settings: ConsumerSettings | None = None,
        maxlen: int = 100_000,
        ns_inventory: NsInventory | None = None,
        vim: VimDriver | None = None,
        granter: Granter | None = None,
        max_concurrent: int = 0,
        max_concurrent_per_host: int = 0,
        tick_s: float = 1.0,
        claim_s: float = 30.0,
        requeue_s: float = 5.0,
        settle_s: float = 0.0,
        reloader: PolicyDirectory | None = None,
        reload_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.facts = RedisFacts(
            redis,
            keys,
            inventory,
            catalogue,
            clock,
            ns_inventory=ns_inventory,
            vim=vim,
            granter=granter,
            max_concurrent=max_concurrent,
            max_concurrent_per_host=max_concurrent_per_host,
        )
        self.loop = ClosedLoop(policies, self.facts, requeue_s=requeue_s, settle_s=settle_s)
        self._router = TargetRouter(inventory, catalogue, ns_inventory)
        self._store = LoopStore(redis, keys)
        self.audit = AuditTrail(redis, keys, clock)
        self._locks = KeyedLocks()
        self.tick_s = tick_s
        self.claim_s = claim_s
        self.reloader = reloader
        self.reload_s = reload_s
        self._replacements = PolicyReplacements(redis, keys)
        self._publisher = StreamPublisher(redis, keys.stream("decisions"), maxlen=maxlen)
        name = consumer or consumer_name("policy")
        self.consumer = StreamConsumer(
            redis,
            keys.stream("violations"),
            group,
            name,
            self._on_violation,
            settings=settings,
            dead_letter_key=keys.dead_letters("violations"),
        )
        self.results_consumer = StreamConsumer(
            redis,
            keys.stream("op_results"),
            group,
            name,
            self._on_result,
            settings=settings,
            dead_letter_key=keys.dead_letters("op_results"),
        )

    @property
    def policies(self) -> list[KpiPolicy]:
        return self.loop.policies

    def set_policies(self, policies: Sequence[KpiPolicy]) -> None:
        """Replace the policies in force (hot reload)."""
        self.loop.set_policies(policies)

    # --- running ------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume violations and results, and follow up due VNFs, until ``stop`` is set.

        With a policy directory, what is in force there (and replaced) is
        read first, so that no violation meets a policy an operator replaced.
        """
        if self.reloader is not None and self.reload_s > 0:
            await self.reload(self.reloader)
        tasks = [
            asyncio.create_task(self.consumer.run(stop)),
            asyncio.create_task(self.results_consumer.run(stop)),
            asyncio.create_task(self._ticks(stop)),
        ]
        if self.reloader is not None and self.reload_s > 0:
            tasks.append(asyncio.create_task(self._reloads(self.reloader, stop)))
        try:
            await asyncio.gather(*tasks)
        finally:
            await cancel_and_wait(tasks)

    async def _ticks(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            raise_if_cancelled()
            try:
                await self.tick()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("cannot reach Redis to follow up due VNFs (%s); retrying", exc)
            await wait_for_stop(stop, self._clock.to_wall(self.tick_s))

    async def reload(self, reloader: PolicyDirectory) -> bool:
        """Read the policy directory again, with the operator's replacements laid over it
        (:mod:`policy.replacements`); True when the policies in force changed.

        What is in force, and the problems of files that are not, are
        recorded at ``keys.policy_status()`` for ``nfv-assure policy status``.
        """
        replacements = await self._replacements.texts()
        snapshot = await asyncio.to_thread(reloader.poll, replacements)
        current = reloader.snapshot
        if snapshot is not None:
            self.set_policies(snapshot.policies)
            log.info(
                "policies reloaded from %s: %s (version %s)",
                reloader.directory,
                ", ".join(p.name for p in snapshot.policies) or "none",
                snapshot.version,
            )
        await self._redis.hset(
            self._keys.policy_status(),
            mapping={
                "version": current.version,
                "policies": json.dumps([p.name for p in current.policies]),
                "problems": json.dumps([p.format() for p in current.problems]),
                "directory": str(reloader.directory),
                "at": repr(self._clock.now()),
            },
        )
        return snapshot is not None

    async def _reloads(self, reloader: PolicyDirectory, stop: asyncio.Event) -> None:
        while not stop.is_set():
            raise_if_cancelled()
            try:
                await self.reload(reloader)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                log.warning("cannot record the policies reloaded (%s); retrying", exc)
            await wait_for_stop(stop, self._clock.to_wall(self.reload_s))

    async def _on_violation(self, message: Message) -> None:
        if not isinstance(message, Violation):
            log.warning("ignoring a %s on the violations stream", type(message).__name__)
            return
        await self.handle(message)

    async def _on_result(self, message: Message) -> None:
        if isinstance(message, OpResult):
            await self.handle_result(message)

    # --- events -------------------------------------------------------------------
    async def handle(self, violation: Violation) -> list[Decision]:
        """Take one ONSET or ABATED through the loop; returns the decisions it published."""
        policy = self.loop.policy(violation.policy)
        if policy is None:
            log.warning(
                "violation %s names unknown policy %r; no decision [request %s]",
                violation.id,
                violation.policy,
                violation.request_id,
            )
            return []
        if violation.status is ViolationStatus.ABATED:
            return await self._abated(violation)
        # Routing only reads: done beside the status check, one wait for Redis, not two.
        active, route = await asyncio.gather(
            active_guard(self._redis, self._keys, violation.id, violation.source),
            self._router.route(policy, violation),
            return_exceptions=True,
        )
        if isinstance(active, BaseException):
            raise active
        if not active.passed:
            return await self._unrouted(policy, violation, active)
        if isinstance(route, BaseException):
            raise route  # only an ONSET still active needs its route
        await self._record_onset(violation, list(route.targets))
        if not route.targets:
            return await self._unrouted(
                policy, violation, GuardResult(TARGET, False, route.why_not)
            )
        decisions: list[Decision] = []
        for vnf_id, targets in route.targets.items():

            async def onset(state: VnfLoop, now: float, targets: Any = targets) -> Effects:
                return await self.loop.onset(state, violation, targets, now)

            decisions.extend(await self.on_vnf(vnf_id, onset))
        return decisions

    async def _abated(self, violation: Violation) -> list[Decision]:
        if violation.target.kind is TargetKind.HOST:
            await self._redis.srem(
                self._keys.policy_failing_hosts(), f"{violation.target.id}|{violation.id}"
            )
        members = await self._redis.smembers(self._keys.violation_vnfs(violation.id))
        vnfs = {reply_text(m) for m in members}
        if not vnfs and violation.target.kind is TargetKind.NS:
            vnfs = {ns_loop_id(violation.target.id)}
        elif not vnfs and violation.target.kind is not TargetKind.HOST:
            vnf = violation.target.vnf or violation.target.id
            vnfs = {vnf}
        decisions: list[Decision] = []
        for vnf_id in sorted(vnfs):

            async def abated(state: VnfLoop, now: float) -> Effects:
                return await self.loop.abated(state, violation, now)

            decisions.extend(await self.on_vnf(vnf_id, abated))
        return decisions

    async def handle_result(self, result: OpResult) -> list[Decision]:
        """Take the end of an operation through its VNF's (or NS's) loop."""
        ns = result.target.kind is TargetKind.NS
        vnf_id = ns_loop_id(result.target.id) if ns else result.vnf or result.target.vnf
        if not vnf_id:
            record = await self.audit.episode_of(result.decision_id)
            vnf_id = record.vnf if record is not None else ""
        if not vnf_id:
            return []

        async def ended(state: VnfLoop, now: float) -> Effects:
            return await self.loop.result(state, result, now)

        decisions = await self.on_vnf(vnf_id, ended)
        ended_at = result.finished_at or self._clock.now()
        for member, aspect in await scaled_members(self.facts, result):

            async def scaled(state: VnfLoop, now: float, aspect: str = aspect) -> Effects:
                return self.loop.scaled_by_ns(state, aspect, ended_at, now)

            decisions.extend(await self.on_vnf(member, scaled))
        return decisions

    async def tick(self) -> list[Decision]:
        """Follow up every VNF that is due now; returns the decisions published."""
        now = self._clock.now()
        decisions: list[Decision] = []
        for vnf_id in await self._store.due(now):
            until = now + self.claim_s
            if not await self._store.claim(vnf_id, now, until):
                continue  # another worker took it

            async def due(state: VnfLoop, at: float) -> Effects:
                return await self.loop.tick(state, at)

            decisions.extend(await self.on_vnf(vnf_id, due, claimed_until=until))
        return decisions

    # --- one VNF at a time --------------------------------------------------------------
    async def on_vnf(
        self, vnf_id: str, work: Work, *, claimed_until: float | None = None
    ) -> list[Decision]:
        """Run ``work`` on the VNF's record, save it, then publish and record what it made."""
        async with self._locks.hold(vnf_id):
            for _ in range(_RETRIES):
                with self.facts.turn():
                    self.facts.prefetch(vnf_id)
                    # Unclaimed, looked at again in a while even if this worker dies
                    # before it saves.
                    due_by = None if claimed_until is not None else self._clock.now() + self.claim_s
                    state, version = await self._store.load(vnf_id, due_by=due_by)
                    if state.outbox:
                        await self._flush(state, version)
                        state, version = await self._store.load(vnf_id)
                    now = self._clock.now()
                    fx = await work(state, now)
                state.prune(now)
                state.outbox = [encode(d) for d in fx.decisions]
                try:
                    version = await self._store.save(state, version)
                except Conflict:
                    continue
                await self._flush(state, version)
                await self.audit.record(vnf_id, fx.episodes.values(), self._by_name())
                await self._reschedule(state, claimed_until)
                self._log(fx.decisions)
                return fx.decisions
        raise Conflict(f"the loop record of VNF {vnf_id} kept changing; will retry")

    async def _flush(self, state: VnfLoop, version: int) -> None:
        """Publish the record's outbox, then save it empty."""
        if not state.outbox:
            return
        messages = [decode(raw) for raw in state.outbox]
        await self._publisher.publish_many(messages)
        state.outbox = []
        # Someone saved after us: they flushed (or will flush) it too.
        with contextlib.suppress(Conflict):
            await self._store.save(state, version)

    async def _reschedule(self, state: VnfLoop, claimed_until: float | None) -> None:
        at = state.next_at()
        if at is not None:
            await self._store.schedule(state.vnf, at)
        elif claimed_until is not None:
            await self._store.undue(state.vnf, claimed_until)

    # --- helpers ------------------------------------------------------------------
    async def _record_onset(self, violation: Violation, vnfs: Sequence[str]) -> None:
        """Count the ONSET (the blast-radius breaker), and remember the VNFs it went to."""
        now = self._clock.now()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._keys.policy_onsets(), {violation.id: now})
            pipe.zremrangebyscore(self._keys.policy_onsets(), "-inf", repr(now - _ONSET_WINDOW_S))
            if violation.target.kind is TargetKind.HOST:
                pipe.sadd(
                    self._keys.policy_failing_hosts(), f"{violation.target.id}|{violation.id}"
                )
            if vnfs:
                pipe.sadd(self._keys.violation_vnfs(violation.id), *vnfs)
                pipe.expire(self._keys.violation_vnfs(violation.id), _ROUTE_TTL_S)
            await pipe.execute()

    async def _unrouted(
        self, policy: KpiPolicy, violation: Violation, why: GuardResult
    ) -> list[Decision]:
        """One denied decision for a violation the loop does not act on, and its record."""
        episode, decision = unrouted(policy, violation, why, self._clock.now())
        await self._publisher.publish(decision)
        await self.audit.record(violation.target.vnf or "", [episode], self._by_name())
        self._log([decision])
        return [decision]

    def _by_name(self) -> dict[str, KpiPolicy]:
        return {p.name: p for p in self.loop.policies}

    @staticmethod
    def _log(decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            log.info(
                "decision %s: %s %s %s: %s [request %s]",
                decision.id,
                decision.verdict or ("approved" if decision.approved else "denied"),
                decision.action.value,
                decision.target.key(),
                decision.reason,
                decision.request_id,
            )


__all__ = ["PolicyEngine"]
