"""LCM operation occurrences and their state machine (after ETSI SOL003).

An occurrence is created STARTING and moves through::

    STARTING -> PROCESSING -> COMPLETED
    STARTING -> ROLLED_BACK            (grant refused, or cancelled before it began)
    STARTING -> FAILED_TEMP            (the grant could not be asked for now)
                PROCESSING -> FAILED_TEMP -> PROCESSING (retry)
                              FAILED_TEMP -> ROLLING_BACK -> ROLLED_BACK
                              FAILED_TEMP -> FAILED        ROLLING_BACK -> FAILED_TEMP

Any other move raises :class:`~mano_core.errors.InvalidRequest`. Each
occurrence is a JSON record at ``keys.op(vnf, op)``, indexed by start time in
``keys.vnf_ops(vnf)`` and ``keys.op_index()``. A transition is a
compare-and-set on the stored state, so two workers cannot both move one
occurrence out of the same state. Every transition (creation included) is
published as an :class:`~bus.contracts.LcmNotification` on
``keys.stream("lcm_notifications")``, trimmed to about ``notifications_maxlen``
entries. A finished occurrence (COMPLETED, ROLLED_BACK, FAILED) is kept for
``retention_s`` and then expires, and the indexes drop entries older than
that, so the record stays bounded. Once a VNF instance is gone (terminated,
or its instantiation rolled back), its own index gets no more entries, so
it is set to expire after ``retention_s`` too (:meth:`OpOccStore.retire`).

Whoever runs an occurrence holds its runner lease (:meth:`OpOccStore.runner_lease`,
wall-clock TTL ``runner_ttl_s``, renewed while it runs). An occurrence in a
running state whose lease nobody holds was left by a worker that stopped:
:meth:`OpOccStore.recover` (run at start-up) turns one left STARTING into
ROLLED_BACK (nothing was done yet) and one left PROCESSING or ROLLING_BACK
into FAILED_TEMP, for an operator or the actuator to retry, roll back or fail.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec
from redis.exceptions import WatchError

from bus.clock import Clock, WallClock
from bus.contracts import LcmNotification, OpState
from bus.keys import Keys
from bus.lease import Lease
from bus.redis import reply_text
from bus.streams import StreamPublisher, consumer_name
from mano_core.errors import InvalidRequest, NotFound
from mano_core.models import LcmOperation, LcmOpOcc, StateChange

log = logging.getLogger(__name__)

TRANSITIONS: dict[OpState, frozenset[OpState]] = {
    OpState.STARTING: frozenset({OpState.PROCESSING, OpState.ROLLED_BACK, OpState.FAILED_TEMP}),
    OpState.PROCESSING: frozenset({OpState.COMPLETED, OpState.FAILED_TEMP}),
    OpState.FAILED_TEMP: frozenset({OpState.PROCESSING, OpState.ROLLING_BACK, OpState.FAILED}),
    OpState.ROLLING_BACK: frozenset({OpState.ROLLED_BACK, OpState.FAILED_TEMP}),
    OpState.COMPLETED: frozenset(),
    OpState.ROLLED_BACK: frozenset(),
    OpState.FAILED: frozenset(),
}
"""The legal moves of an occurrence, from each state."""

RUNNING = (OpState.STARTING, OpState.PROCESSING, OpState.ROLLING_BACK)
"""States in which a worker is (or was, until it stopped) running the occurrence."""

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(LcmOpOcc)


class OpOccStore:
    """LCM operation occurrences of every VNF instance."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        clock: Clock,
        *,
        retention_s: float = 7 * 86_400.0,
        notifications_maxlen: int = 100_000,
        runner_ttl_s: float = 15.0,
    ) -> None:
        if retention_s <= 0:
            raise ValueError(f"retention_s must be positive, got {retention_s}")
        if runner_ttl_s <= 0:
            raise ValueError(f"runner_ttl_s must be positive, got {runner_ttl_s}")
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.retention_s = retention_s
        """Clock seconds a finished occurrence is kept."""
        self.runner_ttl_s = runner_ttl_s
        """Wall seconds the runner lease of a worker that died outlives it."""
        self._notices = StreamPublisher(
            redis, keys.stream("lcm_notifications"), maxlen=notifications_maxlen
        )

    async def create(
        self,
        vnf_id: str,
        operation: LcmOperation,
        params: dict[str, Any],
        *,
        decision_id: str | None = None,
        op_id: str | None = None,
        is_automatic: bool = False,
    ) -> LcmOpOcc:
        """A new STARTING occurrence; with an ``op_id`` that exists, the existing one."""
        now = self._clock.now()
        op = LcmOpOcc(
            id=op_id or str(uuid.uuid4()),
            vnf_id=vnf_id,
            operation=operation,
            state=OpState.STARTING,
            operation_params=params,
            started_at=now,
            state_entered_at=now,
            decision_id=decision_id,
            history=[StateChange(state=OpState.STARTING, at=now)],
            is_automatic=is_automatic,
        )
        key = self._keys.op(vnf_id, op.id)
        # SET NX makes "create or return the existing" safe between workers.
        if not await self._redis.set(key, _encoder.encode(op), nx=True):
            return await self.get(vnf_id, op.id)
        horizon = now - self.retention_s
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._keys.vnf_ops(vnf_id), {op.id: now})
            pipe.zadd(self._keys.op_index(), {f"{vnf_id}/{op.id}": now})
            # Index entries older than the retention point at expired records.
            pipe.zremrangebyscore(self._keys.vnf_ops(vnf_id), "-inf", horizon)
            pipe.zremrangebyscore(self._keys.op_index(), "-inf", horizon)
            await pipe.execute()
        await self._notify(op, "")
        return op

    async def transition(
        self,
        op: LcmOpOcc,
        state: OpState,
        *,
        detail: str = "",
        error: str | None = None,
        retry_after: float | None = None,
        result: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        grant_id: str | None = None,
    ) -> LcmOpOcc:
        """Move ``op`` to ``state`` and store it; returns the updated occurrence.

        ``error`` replaces the recorded error when given (it is cleared on
        PROCESSING and COMPLETED); ``retry_after`` is kept only with
        FAILED_TEMP; ``result``, ``params`` (the operation parameters) and
        ``grant_id`` replace the recorded ones when given. A pending cancel
        is cleared by any move. Raises :class:`InvalidRequest` for an illegal
        move, or when the stored occurrence is no longer in ``op.state``
        (someone else moved it).
        """
        if state not in TRANSITIONS[op.state]:
            raise InvalidRequest(
                f"operation {op.id} ({op.operation}) cannot go from {op.state} to {state}"
            )
        now = self._clock.now()
        keep_error = state not in (OpState.PROCESSING, OpState.COMPLETED)

        def moved(stored: LcmOpOcc) -> LcmOpOcc:
            if stored.state is not op.state:
                raise InvalidRequest(
                    f"operation {op.id} is {stored.state}, not {op.state}: "
                    "it was moved by someone else"
                )
            return msgspec.structs.replace(
                stored,
                state=state,
                state_entered_at=now,
                error=error if error is not None else (stored.error if keep_error else None),
                retry_after=retry_after if state is OpState.FAILED_TEMP else None,
                result=stored.result if result is None else result,
                operation_params=stored.operation_params if params is None else params,
                grant_id=stored.grant_id if grant_id is None else grant_id,
                is_cancel_pending=False,
                history=[*stored.history, StateChange(state=state, at=now, detail=detail)],
            )

        updated = await self._update(op, moved, expire=state.final)
        await self._notify(updated, detail)
        return updated

    async def request_cancel(self, op: LcmOpOcc) -> LcmOpOcc:
        """Mark ``op`` (in a running state) to be cancelled by the worker running it."""
        if op.state not in RUNNING:
            raise InvalidRequest(
                f"operation {op.id} is {op.state}: only a running one is cancelled"
            )

        def flagged(stored: LcmOpOcc) -> LcmOpOcc:
            if stored.state not in RUNNING:
                raise InvalidRequest(f"operation {op.id} is {stored.state} now")
            return msgspec.structs.replace(stored, is_cancel_pending=True)

        return await self._update(op, flagged, expire=False)

    async def cancel_requested(self, op: LcmOpOcc) -> bool:
        """Whether an operator asked to cancel ``op`` since it last moved."""
        stored = await self.find(op.vnf_id, op.id)
        return stored is not None and stored.is_cancel_pending

    async def _update(self, op: LcmOpOcc, change: Any, *, expire: bool) -> LcmOpOcc:
        key = self._keys.op(op.vnf_id, op.id)
        async with self._redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                if raw is None:
                    raise NotFound(f"operation {op.id} of VNF {op.vnf_id} does not exist")
                updated: LcmOpOcc = change(_decoder.decode(raw))
                pipe.multi()
                pipe.set(key, _encoder.encode(updated), px=self._retention_ms() if expire else None)
                await pipe.execute()
            except WatchError as exc:
                raise InvalidRequest(f"operation {op.id} changed meanwhile") from exc
        return updated

    async def _notify(self, op: LcmOpOcc, detail: str) -> None:
        await self._notices.publish(
            LcmNotification(
                op_id=op.id,
                vnf=op.vnf_id,
                operation=op.operation.value,
                state=op.state,
                at=op.state_entered_at,
                is_automatic=op.is_automatic,
                error=op.error,
                detail=detail,
            )
        )

    # --- who runs what ---------------------------------------------------------
    def runner_lease(self, vnf_id: str, op_id: str) -> Lease:
        """The lease a worker holds while it runs occurrence ``op_id`` (TTL in wall time).

        Taken before the occurrence is created, so that no start-up recovery
        ever sees a new occurrence without its runner.
        """
        return Lease(
            self._redis,
            self._keys.op_runner(vnf_id, op_id),
            WallClock(),
            ttl_s=self.runner_ttl_s,
            holder=consumer_name("lcm"),
            name=f"operation {op_id}",
        )

    async def is_running(self, op: LcmOpOcc) -> bool:
        """Whether a live worker holds ``op``'s runner lease."""
        return bool(await self._redis.exists(self._keys.op_runner(op.vnf_id, op.id)))

    async def recover(self) -> list[LcmOpOcc]:
        """Settle the occurrences left running by workers that stopped; returns them.

        STARTING (nothing done yet) -> ROLLED_BACK; PROCESSING or
        ROLLING_BACK -> FAILED_TEMP. One a live worker runs is left alone.
        """
        recovered = []
        for op in await self.list(limit=100_000):
            if op.state not in RUNNING or await self.is_running(op):
                continue
            target = OpState.ROLLED_BACK if op.state is OpState.STARTING else OpState.FAILED_TEMP
            try:
                moved = await self.transition(
                    op, target, detail="found abandoned at start-up", error=op.error
                )
            except InvalidRequest:
                continue  # moved meanwhile by a worker that is alive after all
            log.warning(
                "operation %s (%s of VNF %s) was left %s by a worker that stopped: now %s",
                op.id,
                op.operation,
                op.vnf_id,
                op.state,
                target,
            )
            recovered.append(moved)
        return recovered

    # --- reading -----------------------------------------------------------------
    async def retire(self, vnf_id: str) -> None:
        """Let the index of VNF ``vnf_id``, which is gone, expire after the retention.

        Its finished occurrences expire the same way; until then they stay
        listable by VNF. No error when there is no index.
        """
        await self._redis.pexpire(self._keys.vnf_ops(vnf_id), self._retention_ms())

    async def find(self, vnf_id: str, op_id: str) -> LcmOpOcc | None:
        """The occurrence ``op_id`` of VNF ``vnf_id``, or None."""
        raw = await self._redis.get(self._keys.op(vnf_id, op_id))
        return None if raw is None else _decoder.decode(raw)

    async def get(self, vnf_id: str, op_id: str) -> LcmOpOcc:
        """The occurrence ``op_id`` of VNF ``vnf_id``; raises :class:`NotFound`."""
        op = await self.find(vnf_id, op_id)
        if op is None:
            raise NotFound(f"operation {op_id} of VNF {vnf_id} does not exist")
        return op

    async def locate(self, op_id: str) -> LcmOpOcc:
        """The occurrence ``op_id``, whatever its VNF; raises :class:`NotFound`."""
        async for member, _score in self._redis.zscan_iter(
            self._keys.op_index(), match=f"*/{op_id}"
        ):
            vnf_id, _, found = reply_text(member).partition("/")
            if found == op_id:
                return await self.get(vnf_id, op_id)
        raise NotFound(f"operation {op_id} does not exist")

    async def list(self, vnf_id: str | None = None, limit: int = 100) -> list[LcmOpOcc]:
        """Occurrences of one VNF (or of all), newest first, at most ``limit``."""
        if limit <= 0:
            return []
        if vnf_id is None:
            members = await self._redis.zrevrange(self._keys.op_index(), 0, limit - 1)
            refs = [reply_text(m).split("/", 1) for m in members]
        else:
            members = await self._redis.zrevrange(self._keys.vnf_ops(vnf_id), 0, limit - 1)
            refs = [[vnf_id, reply_text(m)] for m in members]
        if not refs:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for owner, op_id in refs:
                pipe.get(self._keys.op(owner, op_id))
            raws = await pipe.execute()
        return [_decoder.decode(raw) for raw in raws if raw is not None]

    def _retention_ms(self) -> int:
        # Redis expiry runs on wall time; the retention is clock time.
        return int(self._clock.to_wall(self.retention_s) * 1000) or 1
