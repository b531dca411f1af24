"""Reading the samples stream: every worker reads every entry, and recent history on demand.

Analytics workers share VNFs by shard, not entries: each needs every
sample of the series it owns, wherever in the stream they are. So each
worker reads the whole stream with plain XREAD from where it started (no
consumer group: nothing to acknowledge, no entry lost to another worker)
and keeps what its shards need.

A worker that takes a shard over rebuilds its windows from the shard's
history (:mod:`analytics.archive`) and reads back the stream entries the
history does not hold yet (:meth:`SampleIntake.after`: those after the
last owner's last flush). A shard without any history yet has its
windows rebuilt from the stream alone (:meth:`SampleIntake.history`,
newest first, until it has gone ``since`` back or reached the oldest
entry; the stream is trimmed to about ``redis.samples_maxlen`` entries).

Redis trouble (unreachable, loading, failing over) is waited out with a
capped back-off; the read resumes after the last entry read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from bus.contracts import ContractError, Message, decode
from bus.redis import Backoff, is_transient, reply_text
from bus.streams import FIELD
from bus.tasks import raise_if_cancelled

log = logging.getLogger(__name__)

Handler = Callable[[Message], Awaitable[None]]


class SampleIntake:
    """Reads one stream with XREAD, entry after entry, from where it started."""

    def __init__(
        self, redis: Any, stream_key: str, *, block_ms: int = 1000, count: int = 100
    ) -> None:
        self._redis = redis
        self.stream_key = stream_key
        self.block_ms = block_ms
        self.count = count
        self.last_id: str | None = None
        """The last entry read (None: start from the newest when first read)."""
        self.handled_id: str | None = None
        """The last entry handled: every entry up to it has been through the handler."""
        self.undecodable = 0

    async def start(self) -> str:
        """Note the stream's newest entry: reading starts after it."""
        newest = await self._redis.xrevrange(self.stream_key, count=1)
        self.last_id = reply_text(newest[0][0]) if newest else "0-0"
        if self.handled_id is None:
            self.handled_id = self.last_id
        return self.last_id

    async def read_once(self, handle: Handler) -> int:
        """Read and handle the entries after the last one read; returns how many."""
        if self.last_id is None:
            await self.start()
        assert self.last_id is not None
        reply = await self._redis.xread(
            {self.stream_key: self.last_id}, count=self.count, block=self.block_ms
        )
        handled = 0
        for _, entries in reply or []:
            for entry_id, fields in entries:
                self.last_id = reply_text(entry_id)
                message = self._decode(fields)
                if message is not None:
                    await handle(message)
                    handled += 1
                self.handled_id = self.last_id
        return handled

    def _decode(self, fields: dict[bytes, bytes]) -> Message | None:
        raw = fields.get(FIELD)
        try:
            return None if raw is None else decode(raw)
        except ContractError as exc:
            self.undecodable += 1
            log.warning("skipping an undecodable entry of %s: %s", self.stream_key, exc)
            return None

    async def run(self, stop: asyncio.Event, handle: Handler) -> None:
        """Read until ``stop`` is set, riding out Redis trouble."""
        backoff = Backoff()
        while not stop.is_set():
            raise_if_cancelled()
            try:
                await self.read_once(handle)
            except RedisError as exc:
                if not is_transient(exc):
                    raise
                if not backoff.failures:
                    log.warning("cannot read %s (%s); retrying", self.stream_key, exc)
                await backoff.wait(stop)
            else:
                backoff.reset()

    async def after(self, first_id: str, until_id: str) -> list[Message]:
        """The messages after entry ``first_id`` up to entry ``until_id``, oldest first."""
        out: list[Message] = []
        low = f"({first_id}"
        while True:
            page = await self._redis.xrange(self.stream_key, min=low, max=until_id, count=500)
            for _, fields in page:
                message = self._decode(fields)
                if message is not None:
                    out.append(message)
            if len(page) < 500:
                return out
            low = f"({reply_text(page[-1][0])}"

    async def oldest_id(self) -> str | None:
        """The oldest entry the stream still holds (None: empty)."""
        first = await self._redis.xrange(self.stream_key, count=1)
        return reply_text(first[0][0]) if first else None

    async def history(
        self, since: float, until_id: str | None, collected_at: Callable[[Message], float]
    ) -> list[Message]:
        """The messages from ``since`` (clock time) up to entry ``until_id``, oldest first."""
        out: list[Message] = []
        high = "+" if until_id is None or until_id == "0-0" else until_id
        if until_id == "0-0":
            return out
        while True:
            page = await self._redis.xrevrange(self.stream_key, max=high, count=500)
            if not page:
                break
            older = False
            for _, fields in page:
                message = self._decode(fields)
                if message is None:
                    continue
                if collected_at(message) < since:
                    older = True
                    break
                out.append(message)
            last = reply_text(page[-1][0])
            if older or len(page) < 500:
                break
            high = f"({last}"
        out.reverse()
        return out
