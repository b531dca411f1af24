"""The actuator: runs approved decisions through the VNFM (the NFVO for NS scaling)
and publishes their results.

It consumes ``keys.stream("decisions")`` with a consumer group and publishes
one :class:`~bus.contracts.OpResult` per executed decision to
``keys.stream("op_results")``. Denied decisions are acknowledged and not run.

How work is handed off, and why no decision is lost
----------------------------------------------------
The :class:`~bus.streams.StreamConsumer` acknowledges an entry only after its
handler returns, and the handler returns only once the decision's operation
has ended and its result is published. So an entry is acknowledged only when
its work is done; if the process dies before that, the entry stays pending
and another worker takes it over. To keep a long operation on one VNF from
holding up the others, the actuator reads with ``concurrency`` concurrent
loops over one consumer (one entry per read): each loop handles one decision
at a time, so up to ``concurrency`` decisions are in flight, for many VNFs in
parallel. Decisions for the same VNF queue behind each other on a per-VNF
lock in this process and on the per-VNF Redis lease across processes, so one
VNF sees one operation at a time. (The price: if every loop waits on the same
VNF, others wait too; ``concurrency`` bounds that.) While a decision is in
flight, the consumer's keepalive (:meth:`~bus.streams.StreamConsumer.keepalive`,
one for all the loops) re-claims its entry every third of ``claim_idle_ms``,
so it never looks abandoned and other workers do not take it over
mid-operation; a decision whose handler failed is not kept alive, and is
retried as any failed entry is.

A decision taken over from a dead worker is safe to run again: its operation
id is derived from its id, so under the lease the actuator finds the same
operation occurrence and finishes it instead of starting another one — a
finished one is reported, a FAILED_TEMP one is retried, and one left
PROCESSING by the dead worker is marked FAILED_TEMP ("interrupted") and
retried, which the VNFM makes converge. The idempotency record keeps the
published result, so a redelivery returns it and publishes nothing new.

Stale decisions: after a backlog (the actuator down for a while) a decision
may answer a condition long over, e.g. a reboot of a VNFC that recovered.
So a decision decided more than ``max_decision_age_s`` ago (clock time) when
its operation is about to start is not run: it ends FAILED ("expired").
It is checked under the lease, as late as possible, because waiting for the
VNF's earlier operations ages it too. An operation already started for it
(taken over from a stopped worker) is finished whatever its age: leaving it
half done would be worse.

Redis trouble: the consumer loops ride it out (:meth:`StreamConsumer.serve`),
and so does a wait for a VNF's lease (:meth:`bus.lease.Lease.acquire`). A
decision whose handling a Redis error broke stays pending and is retried;
its operation id makes the retry resume, not repeat, its operation.

One decision, one operation: escalation (a heal climbing the recovery
ladder, another scale step) is the policy stage's, decided from how the
operation ended and whether the KPI recovered, and comes as a decision of
its own.

Network services: a ``scale_ns_out`` / ``scale_ns_in`` decision runs as
an NS scale of the NFVO (:mod:`actuator.ns_operations`), with the same
operation id, expiry and retry settings; the NFVO takes the NS's and the
members' leases itself.

Notifications: a ``notify`` decision is sent to the webhook its parameters
name (:mod:`actuator.notify`), retried on temporary failures; the result
says whether it was delivered.

Timeouts: a decision with ``timeout_s`` whose operation has not ended that
long (clock time) after it started is stopped where it stands and failed
("timed out"); what it created is found by its servers' metadata, as after
any interruption.

Retries: a FAILED_TEMP operation is retried after its ``retry_after`` or
an exponential back-off from ``retry_base_s`` (whichever is longer; clock
time, counted from when it failed, so a restart does not shorten it) while
it has failed fewer than ``max_attempts`` times; then it is failed
(FAILED). A permanent error fails it at once. The lease is held, and
renewed, for the whole time, waits included.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from actuator.idempotency import DecisionRecord, IdempotencyStore
from actuator.lease import VnfLease
from actuator.notify import Notifier
from actuator.ns_operations import NS_SCALING, NsScaleRun
from actuator.operations import result_of, result_without_op, start_operation, vnf_of
from bus.clock import Clock
from bus.contracts import Action, Decision, Message, OpResult, OpState
from bus.keys import Keys
from bus.locks import KeyedLocks
from bus.streams import ConsumerSettings, StreamConsumer, StreamPublisher, consumer_name
from bus.tasks import cancel_and_wait
from mano_core.errors import CorruptRecord, InvalidRequest, NotFound
from mano_core.models import LcmOpOcc
from mano_core.nfvo.lcm import NsLcm
from mano_core.vnfm import Vnfm

log = logging.getLogger(__name__)


class Actuator:
    """Executes approved decisions, one operation at a time per VNF.

    ``lease_ttl_s``, ``lease_poll_s`` and ``max_decision_age_s`` are clock
    seconds. Keep the lease TTL longer than the VNFM's ``timeout_s``: the
    lease is renewed every third of its TTL anyway, but a wide TTL rides out
    missed renewals (a Redis blip), and it is how long a VNF waits after its
    worker died. A decision older than ``max_decision_age_s`` when it is about
    to start is not run (``math.inf``: no limit). ``nslcm`` runs NS scaling
    decisions (None: they fail, naming the missing NFVO).
    """

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        vnfm: Vnfm,
        clock: Clock,
        *,
        group: str = "actuator",
        consumer: str | None = None,
        lease_ttl_s: float = 600.0,
        max_attempts: int = 3,
        concurrency: int = 16,
        lease_poll_s: float = 1.0,
        settings: ConsumerSettings | None = None,
        results_maxlen: int = 100_000,
        max_decision_age_s: float = 300.0,
        retry_base_s: float = 1.0,
        notifier: Notifier | None = None,
        nslcm: NsLcm | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if lease_ttl_s <= 0:
            raise ValueError(f"lease_ttl_s must be positive, got {lease_ttl_s}")
        if not max_decision_age_s > 0:
            raise ValueError(f"max_decision_age_s must be positive, got {max_decision_age_s}")
        self._redis = redis
        self._keys = keys
        self._vnfm = vnfm
        self._clock = clock
        self._ops = vnfm.ops
        self._records = IdempotencyStore(redis, keys, clock)
        self.lease_ttl_s = lease_ttl_s
        self.lease_poll_s = lease_poll_s
        self.max_attempts = max_attempts
        self.max_decision_age_s = max_decision_age_s
        self.concurrency = concurrency
        self.consumer_name = consumer or consumer_name("actuator")
        # One entry per read: an entry read but not yet handled would not be
        # kept alive, and could be taken over while it waits.
        settings = settings or ConsumerSettings(batch=1)
        self.consumer = StreamConsumer(
            redis,
            keys.stream("decisions"),
            group,
            self.consumer_name,
            self._handle,
            settings=settings,
            dead_letter_key=keys.dead_letters("decisions"),
        )
        self._results = StreamPublisher(redis, keys.stream("op_results"), maxlen=results_maxlen)
        self._vnf_locks = KeyedLocks()
        self._inflight: dict[str, asyncio.Task[OpResult]] = {}
        self.retry_base_s = retry_base_s
        # Owned: closed when run() ends.
        self._notifier = notifier or Notifier(clock)
        self._ns = NsScaleRun(
            nslcm, clock, max_attempts=max_attempts, retry_base_s=retry_base_s, poll_s=lease_poll_s
        )

    # --- the consumer loop -------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume decisions until ``stop`` is set; decisions in flight are finished first."""
        # No ensure_group() here: serve() creates the group, retrying while
        # Redis is unreachable, where a call here would end the role.
        # Kept alive until the loops have finished their last decisions, not just until stop.
        async with self.consumer.keepalive():
            loops = [asyncio.create_task(self._loop(stop)) for _ in range(self.concurrency)]
            try:
                await asyncio.gather(*loops)
            finally:
                await cancel_and_wait([*loops, *self._inflight.values()])
                await self.aclose()

    async def aclose(self) -> None:
        """Release what the actuator holds (its notifier's HTTP connections)."""
        await self._notifier.aclose()

    async def _loop(self, stop: asyncio.Event) -> None:
        await self.consumer.serve(stop)

    async def _handle(self, message: Message) -> None:
        if not isinstance(message, Decision):
            log.warning("ignoring a %s on the decisions stream", type(message).__name__)
            return
        await self.execute(message)

    # --- executing one decision ---------------------------------------------
    async def execute(self, decision: Decision) -> OpResult | None:
        """Run one decision to its end and publish its result; None when it was denied.

        Safe to call again for the same decision (here or in another
        process): the same operation is found, and its result returned.
        """
        if not decision.approved:
            log.info("decision %s was denied (%s); not run", decision.id, decision.reason)
            return None
        task = self._inflight.get(decision.id)
        if task is None:
            task = asyncio.create_task(self._execute(decision))
            self._inflight[decision.id] = task
            task.add_done_callback(lambda _: self._inflight.pop(decision.id, None))
        # Shielded: a second caller for the same decision, or a cancelled
        # caller, must not cancel the operation under the first one.
        return await asyncio.shield(task)

    async def _execute(self, decision: Decision) -> OpResult:
        vnf = vnf_of(decision.target) or ""
        record, _ = await self._records.take(decision.id, vnf, taken_by=self.consumer_name)
        if record.result is not None:
            return record.result
        if decision.action is Action.NOTIFY:
            error = self._expired(decision)
            detail: dict[str, Any] = {}
            if error is None:
                delivery = await self._notifier.send(decision)
                error = delivery.error
                detail = delivery.detail()
            notified = result_without_op(
                decision, vnf, record.op_id, self._now(), error=error, detail=detail
            )
            return await self._publish(record, notified)
        if decision.action in NS_SCALING:
            scaled = await self._ns.run(decision, record.op_id, lambda: self._expired(decision))
            return await self._publish(record, scaled)
        if not vnf:
            error = f"decision targets {decision.target.key()}, which names no VNF instance"
            refused = result_without_op(decision, vnf, record.op_id, self._now(), error=error)
            return await self._publish(record, refused)
        lease = VnfLease(
            self._redis,
            self._keys,
            self._clock,
            vnf,
            ttl_s=self.lease_ttl_s,
            holder=self.consumer_name,
            poll_s=self.lease_poll_s,
        )
        async with self._vnf_locks.hold(vnf):
            return await lease.run(lambda: self._execute_leased(decision, record))

    async def _execute_leased(self, decision: Decision, record: DecisionRecord) -> OpResult:
        # Read again under the lease: another worker may have finished this
        # decision while this one waited for the lease.
        done = await self._records.get(decision.id)
        if done is not None and done.result is not None:
            return done.result
        op = await self._ops.find(record.vnf, record.op_id)
        expired = None if op is not None else self._expired(decision)
        if expired is not None:
            result = result_without_op(
                decision, record.vnf, record.op_id, self._now(), error=expired
            )
        else:
            result = await self._run_bounded(decision, record.vnf, record.op_id, op)
        return await self._publish(record, result)

    def _expired(self, decision: Decision) -> str | None:
        """Why ``decision`` is too old to start now; None while it is not."""
        age_s = self._now() - decision.decided_at
        if age_s <= self.max_decision_age_s:
            return None
        log.warning(
            "decision %s was decided %.0f s ago; not run (a backlog?) [request %s]",
            decision.id,
            age_s,
            decision.request_id,
        )
        return (
            f"expired: decided {age_s:.0f} s ago, "
            f"older than the {self.max_decision_age_s:g} s limit"
        )

    async def _run_bounded(
        self, decision: Decision, vnf: str, op_id: str, op: LcmOpOcc | None
    ) -> OpResult:
        """Run the operation to its end, or fail it when it outlasts the decision's timeout."""
        if decision.timeout_s is None:
            return await self._run_to_end(decision, vnf, op_id, op)
        started = op.started_at if op is not None else self._now()
        left_s = started + decision.timeout_s - self._now()
        try:
            async with asyncio.timeout(max(0.0, self._clock.to_wall(left_s))):
                return await self._run_to_end(decision, vnf, op_id, op)
        except TimeoutError:
            return await self._timed_out(decision, vnf, op_id)

    async def _timed_out(self, decision: Decision, vnf: str, op_id: str) -> OpResult:
        """Fail an operation that outlasted its decision's timeout, where it stands."""
        error = f"timed out after {decision.timeout_s:g} s"
        log.warning("decision %s: %s [request %s]", decision.id, error, decision.request_id)
        op = await self._ops.find(vnf, op_id)
        if op is None:
            return result_without_op(decision, vnf, op_id, self._now(), error=error)
        if not op.state.final:
            if op.state is not OpState.FAILED_TEMP:
                op = await self._interrupted(op)
            op = await self._ops.transition(op, OpState.FAILED, detail=error, error=error)
        return result_of(decision, op)

    async def _run_to_end(
        self, decision: Decision, vnf: str, op_id: str, op: LcmOpOcc | None
    ) -> OpResult:
        """Start or resume the decision's operation ``op`` (None: not started yet) to its end."""
        while op is None or not op.state.final:
            if op is not None:
                if op.state is not OpState.FAILED_TEMP:
                    op = await self._interrupted(op)
                failures = sum(1 for change in op.history if change.state is OpState.FAILED_TEMP)
                if failures >= self.max_attempts:
                    op = await self._ops.transition(
                        op,
                        OpState.FAILED,
                        detail=f"failed {failures} times; giving up",
                        error=f"gave up after {failures} attempts: {op.error}",
                    )
                    break
                # Counted from when it failed, so a restarted worker waits no less.
                backoff = self.retry_base_s * 2 ** max(0, failures - 1)
                retry_at = op.state_entered_at + max(op.retry_after or 0.0, backoff)
                await self._clock.sleep(max(0.0, retry_at - self._now()))
            try:
                op = await start_operation(self._vnfm, decision, vnf, op_id)
            except (NotFound, InvalidRequest, CorruptRecord) as exc:
                return await self._fail(decision, vnf, op_id, op, exc)
            if not (op.state.final or op.state is OpState.FAILED_TEMP):
                raise RuntimeError(f"VNFM returned operation {op.id} still {op.state}")
        return result_of(decision, op)

    async def _interrupted(self, op: LcmOpOcc) -> LcmOpOcc:
        """Mark an operation left running by a worker that stopped as FAILED_TEMP.

        Only a holder of the VNF's lease runs operations of decisions, and we
        hold it now: so nobody is running this one. FAILED_TEMP is the state
        from which the VNFM resumes it (converging, not repeating); waiting
        for the VNFM's own "abandoned" timeout instead would stall the VNF.
        """
        log.warning("operation %s was left %s by a stopped worker; resuming it", op.id, op.state)
        if op.state is OpState.STARTING:  # the state machine leaves STARTING only this way
            op = await self._ops.transition(op, OpState.PROCESSING, detail="taken over")
        return await self._ops.transition(
            op,
            OpState.FAILED_TEMP,
            detail="interrupted: the worker running it stopped",
            error="interrupted: the worker running it stopped",
            retry_after=0.0,
        )

    async def _fail(
        self, decision: Decision, vnf: str, op_id: str, op: LcmOpOcc | None, exc: Exception
    ) -> OpResult:
        """End a decision the VNFM refused: its VNF or VNFC is gone, or it can never succeed."""
        error = f"{type(exc).__name__}: {exc}"
        log.warning("decision %s cannot run: %s", decision.id, error)
        if op is not None and op.state is OpState.FAILED_TEMP:
            op = await self._ops.transition(
                op, OpState.FAILED, detail="refused on retry", error=error
            )
            return result_of(decision, op)
        return result_without_op(decision, vnf, op_id, self._now(), error=error)

    async def _publish(self, record: DecisionRecord, result: OpResult) -> OpResult:
        # Publish first, then record: a crash in between publishes the result
        # twice on redelivery (at least once), never zero times.
        await self._results.publish(result)
        await self._records.finish(record, result)
        log.info(
            "decision %s: %s %s on %s -> %s%s",
            result.decision_id,
            result.action.value,
            result.operation,
            result.target.key(),
            result.state.value,
            f" ({result.error})" if result.error else "",
        )
        return result

    def _now(self) -> float:
        return self._clock.now()
