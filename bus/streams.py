"""Redis Streams: publishing, and consumer-group workers that never lose an entry.

A :class:`StreamConsumer` reads its group's new entries with XREADGROUP and
acknowledges each one (XACK) only after its handler returned. An entry whose
handler raised stays pending; once it has been idle for ``claim_idle_ms``
any consumer of the group takes it over (XAUTOCLAIM) and tries again, so
entries held by a crashed worker are handled by the others. After
``max_deliveries`` attempts, or when it cannot be decoded at all, an entry
is moved to the stream's dead-letter stream and acknowledged, so one bad
entry cannot block the group. Streams are trimmed on every write.

A handler may run far longer than ``claim_idle_ms``. So that its entry is
not taken over meanwhile, the consumer's keepalive re-claims the entries
whose handler is running to the consumer itself every third of
``claim_idle_ms`` (``XCLAIM ... JUSTID``), which resets their idle time
without counting a delivery. An entry whose handler failed is no longer in
flight: it goes idle and is retried as above. If the worker dies, the
keepalive dies with it and its entries are taken over as usual. Entries
read in a batch are kept alive only once their handler starts, so a batch's
handling should fit in ``claim_idle_ms`` (or read one entry at a time).

Consumers come and go with worker processes. One that stops cleanly with
nothing pending deletes itself from the group; one that was killed is
deleted by a live consumer of the group once it has been silent for
``forget_idle_ms`` with nothing pending (what it held is taken over first).

A worker outlives Redis trouble: :meth:`StreamConsumer.serve` retries, with
a capped back-off, when Redis is unreachable, loading, out of memory or
read-only (a failover), and re-creates its group when Redis lost it (a
restart without persistence). What was read and not acknowledged before
the trouble stays pending and is handled again: delivery is at least once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from redis.exceptions import RedisError, ResponseError

from bus.contracts import ContractError, Message, decode, encode
from bus.redis import Backoff, is_transient, reply_text
from bus.tasks import raise_if_cancelled

log = logging.getLogger(__name__)

FIELD = b"m"
"""The one field of an entry: the encoded message."""


def consumer_name(role: str) -> str:
    """A consumer name unique to this process: ``<role>-<host>-<pid>-<rand>``."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class StreamPublisher:
    """Appends messages to one stream, trimming it to about ``maxlen`` entries."""

    def __init__(self, redis: Any, stream_key: str, *, maxlen: int = 100_000) -> None:
        self._redis = redis
        self.stream_key = stream_key
        self._maxlen = maxlen

    async def publish(self, message: Message) -> str:
        """Append one message; returns its entry id."""
        entry_id = await self._redis.xadd(
            self.stream_key, {FIELD: encode(message)}, maxlen=self._maxlen, approximate=True
        )
        return reply_text(entry_id)

    async def publish_many(self, messages: Sequence[Message]) -> list[str]:
        """Append several messages in one round trip."""
        if not messages:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.xadd(
                    self.stream_key,
                    {FIELD: encode(message)},
                    maxlen=self._maxlen,
                    approximate=True,
                )
            ids = await pipe.execute()
        return [reply_text(i) for i in ids]


Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSettings:
    """How a consumer-group worker reads, retries and gives up."""

    batch: int = 100
    """Entries read per XREADGROUP / XAUTOCLAIM call."""
    block_ms: int = 500
    """How long one read waits for new entries (milliseconds)."""
    claim_idle_ms: int = 15_000
    """An entry pending this long (milliseconds) is taken over by any consumer.

    Entries whose handler is running are re-claimed every third of this
    (wall time), so they never reach it.
    """
    max_deliveries: int = 5
    """After this many failed attempts an entry goes to the dead-letter stream."""
    dead_letter_maxlen: int = 10_000
    """The dead-letter stream is trimmed to about this many entries."""
    forget_idle_ms: int = 3_600_000
    """A consumer of the group silent this long, with nothing pending, is deleted.

    Every worker process is a consumer with a name of its own; one that was
    killed never deletes itself, and the group would list it for ever.
    A live consumer polls every ``block_ms``, so it is never that idle.
    0: never delete others.
    """


class StreamConsumer:
    """One consumer of a consumer group on one stream."""

    def __init__(
        self,
        redis: Any,
        stream_key: str,
        group: str,
        consumer: str,
        handler: Handler,
        *,
        settings: ConsumerSettings | None = None,
        dead_letter_key: str | None = None,
    ) -> None:
        self._redis = redis
        self.stream_key = stream_key
        self.group = group
        self.consumer = consumer
        self._handler = handler
        self.settings = settings or ConsumerSettings()
        self.dead_letter_key = dead_letter_key or f"{stream_key}:dead"
        self._claim_cursor = "0-0"
        self.handled = 0
        """Entries handled and acknowledged by this consumer."""
        self.failed = 0
        """Handler failures (the entry stays pending and is retried)."""
        self.dead_lettered = 0
        # Entry id -> how many of this consumer's loops are running its handler.
        self._in_flight: collections.Counter[bytes] = collections.Counter()

    async def ensure_group(self) -> None:
        """Create the group (and the stream) if missing; start from the beginning."""
        try:
            await self._redis.xgroup_create(self.stream_key, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self, stop: asyncio.Event) -> None:
        """Read, handle and acknowledge until ``stop`` is set, through Redis trouble."""
        async with self.keepalive():
            await self.serve(stop)

    async def serve(self, stop: asyncio.Event) -> None:
        """Call :meth:`run_once` until ``stop`` is set, riding out Redis trouble.

        Redis unreachable, loading, full or failing over: wait (capped
        back-off) and retry. The group gone (Redis restarted empty): create
        it again. Anything else propagates. Several loops may serve one
        consumer at once (inside one :meth:`keepalive`). Cancelling the task
        stops it, at the latest one round later if a Redis call swallowed the
        cancellation (see :mod:`bus.tasks`).
        """
        backoff = Backoff()
        ready = False
        while not stop.is_set():
            raise_if_cancelled()
            try:
                if not ready:
                    await self.ensure_group()
                    ready = True
                await self.run_once()
            except RedisError as exc:
                if str(exc).startswith("NOGROUP"):
                    log.warning(
                        "group %s of %s is gone; creating it again", self.group, self.stream_key
                    )
                    ready = False
                elif is_transient(exc):
                    if backoff.failures == 0:  # once per outage, not once per retry
                        log.warning(
                            "%s cannot read %s (%s); retrying", self.consumer, self.stream_key, exc
                        )
                    await backoff.wait(stop)
                else:
                    raise
            else:
                if backoff.failures:
                    log.warning("%s reads %s again", self.consumer, self.stream_key)
                backoff.reset()

    @contextlib.asynccontextmanager
    async def keepalive(self) -> AsyncIterator[None]:
        """Keep this consumer's in-flight entries from going idle for the body's duration.

        :meth:`run` does this itself; a caller that drives :meth:`run_once`
        from its own loops (several at once, even) wraps them in one of these,
        and leaves it only after the loops ended, so their last entries stay
        kept alive until handled. Redis being unreachable is retried on the
        next tick; any other error stops the body and propagates (in an
        :class:`ExceptionGroup`, as does an error of the body).
        """
        async with asyncio.TaskGroup() as tasks:
            keeper = tasks.create_task(self._keep_alive(), name=f"keepalive {self.consumer}")
            try:
                yield
            finally:
                keeper.cancel()
        await self._leave_quietly()

    async def _keep_alive(self) -> NoReturn:
        # Wall time, as Redis counts idle time; a missed tick leaves one more
        # before claim_idle_ms is reached.
        interval_s = self.settings.claim_idle_ms / 3000
        forget_every_s = min(60.0, self.settings.forget_idle_ms / 1000)
        forgot_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            raise_if_cancelled()
            await asyncio.sleep(interval_s)
            if self.settings.forget_idle_ms and loop.time() - forgot_at >= forget_every_s:
                forgot_at = loop.time()
                await self._forget_departed_quietly()
            try:
                await self._touch_in_flight()
            except RedisError as exc:
                if not is_transient(exc):
                    raise
                log.warning(
                    "could not keep %s entries of %s alive; retrying: %s",
                    self.stream_key,
                    self.consumer,
                    exc,
                )

    async def _touch_in_flight(self) -> None:
        """Re-claim the in-flight entries still pending for this consumer (resets idle time)."""
        in_flight = list(self._in_flight)
        if not in_flight:
            return
        # Only those still ours: one another consumer took over (after missed
        # ticks) is its to keep now, and one acknowledged is not pending.
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in in_flight:
                pipe.xpending_range(
                    self.stream_key,
                    self.group,
                    min=entry_id,
                    max=entry_id,
                    count=1,
                    consumername=self.consumer,
                )
            pending = await pipe.execute()
        ours = [entry_id for entry_id, found in zip(in_flight, pending, strict=True) if found]
        if ours:
            await self._redis.xclaim(
                self.stream_key, self.group, self.consumer, 0, ours, justid=True
            )

    async def forget_departed(self) -> list[str]:
        """Delete the group's consumers silent for ``forget_idle_ms`` with nothing pending.

        Returns their names. Deleting a consumer drops its pending entries,
        so one that still holds any is left until they are taken over.
        """
        try:
            consumers = await self._redis.xinfo_consumers(self.stream_key, self.group)
        except ResponseError as exc:
            # The stream or its group is gone (Redis restarted empty): nobody to forget.
            if str(exc).startswith("NOGROUP") or "no such key" in str(exc):
                return []
            raise
        gone = []
        for info in consumers:
            name = reply_text(info["name"])
            if name == self.consumer or int(info["pending"]) > 0:
                continue
            if int(info["idle"]) >= self.settings.forget_idle_ms:
                await self._redis.xgroup_delconsumer(self.stream_key, self.group, name)
                gone.append(name)
        if gone:
            log.info("forgot departed consumers of %s: %s", self.stream_key, ", ".join(gone))
        return gone

    async def _forget_departed_quietly(self) -> None:
        # Housekeeping: never worth stopping the worker for; the next round tries again.
        try:
            await self.forget_departed()
        except RedisError as exc:
            log.info("could not forget departed consumers of %s: %s", self.stream_key, exc)

    async def _leave_quietly(self) -> None:
        """On a clean stop, delete this consumer from the group if it holds nothing."""
        try:
            # Not worth holding a shutdown for: a live consumer forgets it later.
            async with asyncio.timeout(2.0):
                mine = await self._redis.xpending_range(
                    self.stream_key,
                    self.group,
                    min="-",
                    max="+",
                    count=1,
                    consumername=self.consumer,
                )
                if not mine:
                    await self._redis.xgroup_delconsumer(self.stream_key, self.group, self.consumer)
        except (RedisError, TimeoutError) as exc:
            log.info("%s did not leave the group of %s: %r", self.consumer, self.stream_key, exc)

    async def run_once(self) -> int:
        """One round: take over stale pending entries, then read new ones.

        Returns how many entries were processed (handled or dead-lettered).
        """
        processed = await self.reclaim()
        response = await self._redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream_key: ">"},
            count=self.settings.batch,
            block=self.settings.block_ms,
        )
        for _stream, entries in response or []:
            for entry_id, fields in entries:
                processed += await self._process(entry_id, fields, deliveries=1)
        return processed

    async def reclaim(self) -> int:
        """Take over entries idle longer than ``claim_idle_ms`` and process them."""
        result = await self._redis.xautoclaim(
            self.stream_key,
            self.group,
            self.consumer,
            min_idle_time=self.settings.claim_idle_ms,
            start_id=self._claim_cursor,
            count=self.settings.batch,
        )
        next_cursor, entries = result[0], result[1]
        self._claim_cursor = reply_text(next_cursor)
        processed = 0
        for entry_id, fields in entries:
            if fields is None:  # deleted by trimming while pending
                await self._redis.xack(self.stream_key, self.group, entry_id)
                continue
            deliveries = await self._deliveries(entry_id)
            processed += await self._process(entry_id, fields, deliveries=deliveries)
        return processed

    async def _deliveries(self, entry_id: bytes) -> int:
        pending = await self._redis.xpending_range(
            self.stream_key, self.group, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    async def _process(self, entry_id: bytes, fields: dict[bytes, bytes], deliveries: int) -> int:
        raw = fields.get(FIELD)
        try:
            if raw is None:
                raise ContractError(f"entry has no {FIELD!r} field")
            message = decode(raw)
        except ContractError as exc:
            await self._dead_letter(entry_id, fields, f"undecodable: {exc}")
            return 1
        if deliveries > self.settings.max_deliveries:
            await self._dead_letter(entry_id, fields, f"failed {deliveries - 1} times")
            return 1
        self._in_flight[entry_id] += 1
        try:
            await self._handler(message)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Left pending on purpose: after claim_idle_ms a consumer takes it
            # over and retries; after max_deliveries it is dead-lettered.
            self.failed += 1
            log.exception(
                "handler failed on %s entry %r (attempt %d of %d); it stays pending",
                self.stream_key,
                entry_id,
                deliveries,
                self.settings.max_deliveries,
            )
            return 0
        finally:
            # Out of flight either way: a failed entry must go idle to be retried.
            self._in_flight[entry_id] -= 1
            if self._in_flight[entry_id] <= 0:
                del self._in_flight[entry_id]
        await self._redis.xack(self.stream_key, self.group, entry_id)
        self.handled += 1
        return 1

    async def _dead_letter(self, entry_id: bytes, fields: dict[bytes, bytes], why: str) -> None:
        log.error("dead-lettering %s entry %r: %s", self.stream_key, entry_id, why)
        payload = dict(fields)
        payload[b"error"] = why.encode()
        payload[b"origin_id"] = entry_id
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(
                self.dead_letter_key,
                payload,
                maxlen=self.settings.dead_letter_maxlen,
                approximate=True,
            )
            pipe.xack(self.stream_key, self.group, entry_id)
            await pipe.execute()
        self.dead_lettered += 1


async def read_all(redis: Any, stream_key: str, start: str = "0-0") -> list[tuple[str, Message]]:
    """Every decodable entry of a stream after ``start`` (for tools and tests)."""
    out: list[tuple[str, Message]] = []
    low = "-" if start == "0-0" else f"({start}"
    for entry_id, fields in await redis.xrange(stream_key, min=low):
        raw = fields.get(FIELD)
        if raw is None:
            continue
        try:
            out.append((entry_id.decode(), decode(raw)))
        except ContractError:
            continue
    return out
