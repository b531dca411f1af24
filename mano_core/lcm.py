"""LCM operation occurrences and their state machine (after ETSI SOL003).

An occurrence is created STARTING and moves through::

    STARTING -> PROCESSING -> COMPLETED
                PROCESSING -> FAILED_TEMP -> PROCESSING (retry)
                              FAILED_TEMP -> ROLLING_BACK -> ROLLED_BACK
                              FAILED_TEMP -> FAILED        ROLLING_BACK -> FAILED_TEMP

Any other move raises :class:`~mano_core.errors.InvalidRequest`. Each
occurrence is a JSON record at ``keys.op(vnf, op)``, indexed by start time in
``keys.vnf_ops(vnf)`` and ``keys.op_index()``. A transition is a
compare-and-set on the stored state, so two workers cannot both move one
occurrence out of the same state. A finished occurrence (COMPLETED,
ROLLED_BACK, FAILED) is kept for ``retention_s`` and then expires, and the
indexes drop entries older than that, so the record stays bounded. Once a
VNF instance is gone (terminated, or its instantiation rolled back), its own
index gets no more entries, so it is set to expire after ``retention_s`` too
(:meth:`OpOccStore.retire`): its occurrences stay listable until then.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from redis.exceptions import WatchError

from bus.clock import Clock
from bus.contracts import OpState
from bus.keys import Keys
from bus.redis import reply_text
from mano_core.errors import InvalidRequest, NotFound
from mano_core.models import LcmOperation, LcmOpOcc, StateChange

TRANSITIONS: dict[OpState, frozenset[OpState]] = {
    OpState.STARTING: frozenset({OpState.PROCESSING}),
    OpState.PROCESSING: frozenset({OpState.COMPLETED, OpState.FAILED_TEMP}),
    OpState.FAILED_TEMP: frozenset({OpState.PROCESSING, OpState.ROLLING_BACK, OpState.FAILED}),
    OpState.ROLLING_BACK: frozenset({OpState.ROLLED_BACK, OpState.FAILED_TEMP}),
    OpState.COMPLETED: frozenset(),
    OpState.ROLLED_BACK: frozenset(),
    OpState.FAILED: frozenset(),
}
"""The legal moves of an occurrence, from each state."""

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(LcmOpOcc)


class OpOccStore:
    """LCM operation occurrences of every VNF instance."""

    def __init__(
        self, redis: Any, keys: Keys, clock: Clock, *, retention_s: float = 7 * 86_400.0
    ) -> None:
        if retention_s <= 0:
            raise ValueError(f"retention_s must be positive, got {retention_s}")
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.retention_s = retention_s
        """Clock seconds a finished occurrence is kept."""

    async def create(
        self,
        vnf_id: str,
        operation: LcmOperation,
        params: dict[str, Any],
        *,
        decision_id: str | None = None,
        op_id: str | None = None,
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
    ) -> LcmOpOcc:
        """Move ``op`` to ``state`` and store it; returns the updated occurrence.

        ``error`` replaces the recorded error when given (it is cleared on
        PROCESSING and COMPLETED); ``retry_after`` is kept only with
        FAILED_TEMP; ``result`` replaces the recorded result when given.
        Raises :class:`InvalidRequest` for an illegal move, or when the stored
        occurrence is no longer in ``op.state`` (someone else moved it).
        """
        if state not in TRANSITIONS[op.state]:
            raise InvalidRequest(
                f"operation {op.id} ({op.operation}) cannot go from {op.state} to {state}"
            )
        now = self._clock.now()
        keep_error = state not in (OpState.PROCESSING, OpState.COMPLETED)
        updated = msgspec.structs.replace(
            op,
            state=state,
            state_entered_at=now,
            error=error if error is not None else (op.error if keep_error else None),
            retry_after=retry_after if state is OpState.FAILED_TEMP else None,
            result=op.result if result is None else result,
            history=[*op.history, StateChange(state=state, at=now, detail=detail)],
        )
        key = self._keys.op(op.vnf_id, op.id)
        async with self._redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(key)
                raw = await pipe.get(key)
                if raw is None:
                    raise NotFound(f"operation {op.id} of VNF {op.vnf_id} does not exist")
                stored = _decoder.decode(raw)
                if stored.state is not op.state:
                    raise InvalidRequest(
                        f"operation {op.id} is {stored.state}, not {op.state}: "
                        "it was moved by someone else"
                    )
                pipe.multi()
                expiry_ms = self._retention_ms() if state.final else None
                pipe.set(key, _encoder.encode(updated), px=expiry_ms)
                await pipe.execute()
            except WatchError as exc:
                raise InvalidRequest(
                    f"operation {op.id} changed while moving it to {state}"
                ) from exc
        return updated

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
