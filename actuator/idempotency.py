"""Idempotency of decisions: at most one operation per decision id.

The operation id is derived from the decision id (:func:`op_id_for`), so a
decision delivered again names the same LCM operation occurrence and resumes
or returns it instead of starting a second one. The record at
``keys.idempotency(decision.id)`` is claimed with ``SET NX`` when the actuator
first takes a decision; once the decision's :class:`~bus.contracts.OpResult`
is published the record keeps it, so a redelivery returns that result
without publishing it again. Records expire after ``retention_s`` (clock
seconds), which bounds memory; a decision redelivered later than that is
still safe, because its operation id is the same and is found finished.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from bus.clock import Clock
from bus.contracts import OpResult
from bus.keys import Keys

_OP_NAMESPACE = uuid.UUID("5d0e3f0a-6b7c-4d2e-9a41-6e66762d6163")
"""Fixed namespace of operation ids derived from decision ids (never change it)."""


def op_id_for(decision_id: str) -> str:
    """The LCM operation occurrence id a decision runs as (a UUID, stable per decision)."""
    return str(uuid.uuid5(_OP_NAMESPACE, decision_id))


class DecisionRecord(msgspec.Struct, frozen=True):
    """What the actuator knows about one decision it took."""

    decision_id: str
    op_id: str
    vnf: str
    """The VNF instance the operation runs on ("" for a notify without one)."""
    taken_at: float
    taken_by: str
    """The consumer that first took the decision."""
    result: OpResult | None = None
    """Set once the result is published: then the decision is done."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DecisionRecord)


class IdempotencyStore:
    """Decision records in Redis, one key per decision."""

    def __init__(
        self, redis: Any, keys: Keys, clock: Clock, *, retention_s: float = 7 * 86_400.0
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.retention_s = retention_s

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self._clock.to_wall(self.retention_s) * 1000))

    async def take(
        self, decision_id: str, vnf: str, *, taken_by: str
    ) -> tuple[DecisionRecord, bool]:
        """Claim a decision; returns its record and whether this call created it."""
        record = DecisionRecord(
            decision_id=decision_id,
            op_id=op_id_for(decision_id),
            vnf=vnf,
            taken_at=self._clock.now(),
            taken_by=taken_by,
        )
        key = self._keys.idempotency(decision_id)
        if await self._redis.set(key, _encoder.encode(record), nx=True, px=self._ttl_ms):
            return record, True
        existing = await self.get(decision_id)
        if existing is None:  # expired between the two calls: claim it again
            return await self.take(decision_id, vnf, taken_by=taken_by)
        return existing, False

    async def get(self, decision_id: str) -> DecisionRecord | None:
        """The record of a decision, if it was taken (and has not expired)."""
        raw = await self._redis.get(self._keys.idempotency(decision_id))
        return None if raw is None else _decoder.decode(raw)

    async def finish(self, record: DecisionRecord, result: OpResult) -> DecisionRecord:
        """Keep the published result, so a redelivered decision only returns it."""
        done = msgspec.structs.replace(record, result=result)
        await self._redis.set(
            self._keys.idempotency(record.decision_id), _encoder.encode(done), px=self._ttl_ms
        )
        return done
