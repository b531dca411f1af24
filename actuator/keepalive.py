"""Keeps the stream entries this worker is still working on from looking abandoned.

A :class:`~bus.streams.StreamConsumer` acknowledges an entry only after its
handler returns, and any consumer takes over an entry that has been pending
longer than ``claim_idle_ms``. An operation may run far longer than that
(boot times, retries), so while a decision is being executed its entry is
re-claimed by its own consumer every third of ``claim_idle_ms`` with
``XCLAIM ... JUSTID``, which resets the entry's idle time without counting
a delivery. Entries whose handler failed are left alone: they must go idle
to be retried. If the worker dies, the touching stops and the entries are
taken over as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from bus.clock import Clock
from bus.contracts import ContractError, Message, decode
from bus.streams import FIELD

log = logging.getLogger(__name__)


class PendingKeepalive:
    """Resets the idle time of one consumer's pending entries that are in progress."""

    def __init__(
        self,
        redis: Any,
        stream_key: str,
        group: str,
        consumer: str,
        *,
        in_progress: Callable[[Message], bool],
        clock: Clock,
        claim_idle_ms: int,
    ) -> None:
        self._redis = redis
        self.stream_key = stream_key
        self.group = group
        self.consumer = consumer
        self._in_progress = in_progress
        self._clock = clock
        self.interval_wall_s = claim_idle_ms / 3000
        """How often entries are touched (wall seconds: Redis counts idle time in wall time)."""

    async def touch(self) -> int:
        """Touch every pending entry of the consumer that is in progress; returns how many."""
        pending = await self._redis.xpending_range(
            self.stream_key, self.group, min="-", max="+", count=1000, consumername=self.consumer
        )
        if not pending:
            return 0
        ids = [p["message_id"] for p in pending]
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xrange(self.stream_key, min=entry_id, max=entry_id)
            found = await pipe.execute()
        busy = [
            entry_id
            for entry_id, entries in zip(ids, found, strict=True)
            if entries and self._busy(entries[0][1])
        ]
        if busy:
            await self._redis.xclaim(
                self.stream_key, self.group, self.consumer, 0, busy, justid=True
            )
        return len(busy)

    def _busy(self, fields: dict[bytes, bytes]) -> bool:
        raw = fields.get(FIELD)
        if raw is None:
            return False
        try:
            return self._in_progress(decode(raw))
        except ContractError:
            return False

    async def run(self) -> None:
        """Touch on a timer until cancelled (after the last in-progress entry ended)."""
        while True:
            try:
                await self.touch()
            except RedisError as exc:
                # Retried on the next tick; two ticks fit in claim_idle_ms.
                log.warning("could not refresh in-progress entries of %s: %s", self.consumer, exc)
            await self._clock.sleep(self.interval_wall_s * self._clock.speed)
