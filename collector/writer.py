"""The samples writer: chunks into packed batches on the samples stream, through Redis outages.

Each :meth:`SampleWriter.write` turns the chunks of one source's cycle
into :class:`~bus.contracts.PackedBatch` entries of at most
``max_batch_samples`` samples each and sends them in one pipelined round
trip, after the registration of the series definitions they need (see
:mod:`bus.series`): definitions reach the registry before the first entry
that uses them. Every entry names the collector that wrote it
(``collector``), so that a reader can tell the cycles of sharded
collectors apart.

When Redis cannot be reached (or does not answer within ``timeout_s``),
the batches stay queued in memory, at most ``max_buffered_samples``
samples: beyond that the oldest batches are dropped and counted in
:attr:`SampleWriter.dropped` (their definitions are kept, to be registered
with the next batches that reach Redis). A background task retries with a
capped back-off until Redis answers; meanwhile writes only queue, so a
collection cycle never waits for Redis. When Redis comes back empty (a
restart without persistence), the writer notices that the registry
generation it had written to is gone and changes its :attr:`token`, so
sources define every series again.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from bus.contracts import SeriesDef, encode
from bus.keys import Keys
from bus.packing import pack
from bus.redis import Backoff, is_transient, reply_text
from bus.series import SeriesRegistry
from bus.streams import FIELD
from bus.tasks import cancel_and_wait
from collector.chunks import Chunk

log = logging.getLogger(__name__)

_BATCHES_PER_STEP = 4


@dataclass
class _Queued:
    payload: bytes
    samples: int
    source: str = ""
    defs: list[SeriesDef] = field(default_factory=list)
    mine: bool = False


class SampleWriter:
    """Writes chunks to the samples stream as packed batches (see the module docstring)."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        registry: SeriesRegistry,
        *,
        maxlen: int,
        max_batch_samples: int,
        max_buffered_samples: int = 2_000_000,
        timeout_s: float = 5.0,
        collector: str = "",
    ) -> None:
        if max_batch_samples < 1:
            raise ValueError(f"max_batch_samples must be at least 1, got {max_batch_samples}")
        self._redis = redis
        self.stream_key = keys.stream("samples")
        self.registry = registry
        self.maxlen = maxlen
        self.max_batch_samples = max_batch_samples
        self.max_buffered_samples = max_buffered_samples
        self.timeout_s = timeout_s
        self.collector = collector
        """Written in every entry's ``collector`` (:attr:`bus.contracts.PackedBatch.collector`)."""
        self.token = 0
        """Changes when every series must be defined again (the registry was lost)."""
        self.written = 0
        """Samples written to the stream so far."""
        self.written_by_source: collections.Counter[str] = collections.Counter()
        """The same, per source."""
        self.dropped = 0
        """Samples dropped because Redis stayed unreachable with the buffer full."""
        self._queue: collections.deque[_Queued] = collections.deque()
        self._queued_samples = 0
        self._homeless: list[SeriesDef] = []
        self._registered_in: int | None = None
        self._lock = asyncio.Lock()
        self._retrying: asyncio.Task[None] | None = None

    @property
    def buffered(self) -> int:
        """Samples waiting for Redis."""
        return self._queued_samples

    def reregister_after_s(self) -> float:
        """How long (wall seconds) a source may wait before defining a series again.

        Jittered below the registry's generation length, so that the series
        of many targets are not all defined again in the same cycle.
        """
        return self.registry.generation_s * random.uniform(0.5, 0.9)

    async def write(self, source: str, collected_at: float, chunks: Sequence[Chunk]) -> list[str]:
        """Queue one cycle's chunks and send what is queued; returns the entry ids written.

        The last entry is marked as completing the cycle. Returns ``[]``
        when Redis is unreachable: the batches stay queued (within the
        bound) and are sent when it answers again.
        """
        return await self.write_batches(source, collected_at, self.batches(chunks))

    async def write_batches(
        self, source: str, collected_at: float, batches: Sequence[Chunk], *, complete: bool = True
    ) -> list[str]:
        """:meth:`write` for chunks already regrouped by :meth:`batches` (one entry each).

        ``complete``: the last entry completes the cycle (else the cycle writes more).
        """
        if any(len(b) > self.max_batch_samples for b in batches):
            raise ValueError(f"a batch holds more than {self.max_batch_samples} samples")
        mine = await self._enqueue(source, collected_at, batches, complete)
        if not mine or self._retrying is not None:
            return []
        try:
            return await self._send()
        except RedisError as exc:
            if not is_transient(exc):
                raise
            self._outage(exc)
        except TimeoutError:
            self._outage(TimeoutError(f"no answer within {self.timeout_s:g}s"))
        return []

    async def aclose(self) -> None:
        """Stop retrying (what is still queued is lost, and counted as dropped)."""
        task, self._retrying = self._retrying, None
        if task is not None:
            await cancel_and_wait([task])
        self.dropped += self._queued_samples
        self._queue.clear()
        self._queued_samples = 0

    # --- batches -----------------------------------------------------------
    async def _enqueue(
        self, source: str, collected_at: float, batches: Sequence[Chunk], complete: bool
    ) -> int:
        queued = 0
        last = len(batches) - 1
        for n, batch in enumerate(batches):
            if n and n % _BATCHES_PER_STEP == 0:
                await asyncio.sleep(0)  # a large cycle's packing must not stall the loop
            defs = batch.new + batch.again
            packed = pack(
                source,
                collected_at,
                series=batch.new,
                ids=batch.ids,
                values=batch.values,
                ts_counts=batch.ts_counts,
                ts_values=batch.ts_values,
                complete=complete and n == last,
                collector=self.collector,
            )
            self._queue.append(_Queued(encode(packed), len(batch), source, defs, mine=True))
            self._queued_samples += len(batch)
            queued += 1
        self._trim()
        return queued

    def batches(self, chunks: Sequence[Chunk]) -> list[Chunk]:
        """The chunks' samples regrouped into batches of at most ``max_batch_samples``.

        Every batch but the last holds exactly ``max_batch_samples``; writing
        the batches again regroups them into themselves.
        """
        limit = self.max_batch_samples
        out: list[Chunk] = []
        current = Chunk()
        for chunk in chunks:
            if len(current) + len(chunk) <= limit:
                current.extend(chunk)
                continue
            for part in _split(chunk, limit - len(current), limit):
                if len(current) + len(part) > limit:
                    out.append(current)
                    current = Chunk()
                current.extend(part)
        if len(current) or current.new or current.again:
            out.append(current)
        return out

    def _trim(self) -> None:
        while self._queued_samples > self.max_buffered_samples and len(self._queue) > 1:
            oldest = self._queue.popleft()
            self._queued_samples -= oldest.samples
            self.dropped += oldest.samples
            self._homeless.extend(oldest.defs)

    # --- sending -----------------------------------------------------------
    async def _send(self) -> list[str]:
        async with self._lock:
            if not self._queue:
                return []
            queued = list(self._queue)
            generation = self.registry.generation()
            defs = self._homeless + [d for q in queued for d in q.defs]
            async with asyncio.timeout(self.timeout_s):
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.exists(self.registry.key(generation))
                    self.registry.add_to(pipe, defs, generation)
                    for q in queued:
                        pipe.xadd(
                            self.stream_key,
                            {FIELD: q.payload},
                            maxlen=self.maxlen,
                            approximate=True,
                        )
                    replies = await pipe.execute()
            if not replies[0] and self._registered_in == generation:
                log.warning("the series registry was lost (Redis restarted?): defining again")
                self.token += 1
            if defs or replies[0]:
                self._registered_in = generation
            self._homeless = []
            for _ in queued:
                self._queue.popleft()
            self._queued_samples -= sum(q.samples for q in queued)
            self.written += sum(q.samples for q in queued)
            for q in queued:
                self.written_by_source[q.source] += q.samples
            ids = replies[len(replies) - len(queued) :]
            return [reply_text(i) for q, i in zip(queued, ids, strict=True) if q.mine]

    def _outage(self, exc: BaseException) -> None:
        log.warning(
            "cannot write samples to Redis (%s); buffering up to %d samples and retrying",
            exc,
            self.max_buffered_samples,
        )
        self._retrying = asyncio.create_task(self._retry(), name="samples writer retry")

    async def _retry(self) -> None:
        backoff = Backoff()
        while True:
            await backoff.wait()
            try:
                await self._send()
            except (RedisError, TimeoutError) as exc:
                if isinstance(exc, RedisError) and not is_transient(exc):
                    log.error("samples writer gives up retrying: %s", exc)
                    raise
                continue
            log.warning("samples reach Redis again (%d dropped so far)", self.dropped)
            self._retrying = None
            return


def _split(chunk: Chunk, first: int, size: int) -> list[Chunk]:
    """``chunk`` in parts of ``first`` samples, then ``size`` each (definitions in the first)."""
    parts: list[Chunk] = []
    times = [
        ts for count, ts in zip(chunk.ts_counts, chunk.ts_values, strict=True) for _ in range(count)
    ]
    start, take = 0, max(0, first)
    while start < len(chunk) or not parts:
        end = min(len(chunk), start + take)
        part = Chunk(chunk.ids[start:end], chunk.values[start:end])
        for ts in times[start:end]:
            part.stamp(ts, 1)
        if not parts:
            part.new, part.again = chunk.new, chunk.again
        parts.append(part)
        start, take = end, size
    return parts
