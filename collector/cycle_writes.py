"""One scrape cycle written while it runs: full batches at once, the rest within a linger.

A scheduled scrape cycle spreads its targets over half the interval
(:data:`collector.service.SPREAD`). Writing the cycle only when its last
scrape finished would hold every sample back until then, up to half an
interval late. Instead each finished scrape's chunks are added to a
:class:`CycleWrites`, which writes them from a task of its own: whenever
what is pending fills a batch (``max_batch_samples``) it writes the full
batches at once, and whatever is left once its oldest part has waited
``linger_s`` (the collector makes that :data:`LINGER_SHARE` of its scrape
interval). A sample therefore reaches the stream at most ``linger_s`` (wall
seconds) after its scrape ended, plus the write itself, and a cycle makes
at most one write per ``linger_s`` of its spread beyond its full batches.

Every entry of the cycle carries the cycle's ``collected_at``; entries are
written in the order their samples were added, and only the last is
``complete`` (:attr:`bus.contracts.PackedBatch.complete`): when what is
still pending at the close is nothing, the close writes an empty entry to
say so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from bus.tasks import cancel_and_wait
from collector.chunks import Chunk
from collector.writer import SampleWriter

LINGER_SHARE = 0.02
"""How long a finished scrape's samples wait for others to share a write with, as a share of
the scrape interval: at most 50 writes per cycle, each 20 ms late at a 1 s interval. Each
write costs a round trip to Redis (some 400 us of CPU on a small VM), so writing each scrape
as it ends would cost more than the scrapes of small targets."""


class CycleWrites:
    """The chunks of one cycle, written as they come (see the module docstring).

    Made inside a running event loop; :meth:`close` writes what is still
    pending and returns every entry id written, :meth:`cancel` stops
    without writing it.
    """

    def __init__(
        self,
        writer: SampleWriter,
        source: str,
        collected_at: float,
        *,
        linger_s: float,
    ) -> None:
        self._writer = writer
        self._source = source
        self._collected_at = collected_at
        self.linger_s = linger_s
        self._loop = asyncio.get_running_loop()
        self._pending: list[Chunk] = []
        self._pending_samples = 0
        self._oldest: float | None = None
        """Loop time the oldest pending sample was added."""
        self._closing = False
        self._wake = asyncio.Event()
        self._ids: list[str] = []
        self._written = 0
        """Writes made (each one or more entries)."""
        self._completed = False
        """Whether the latest write completed the cycle."""
        self._task = asyncio.create_task(self._run(), name=f"{source} cycle writes")

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Take the chunks of one finished scrape (written by the task, not now)."""
        if self._closing:
            raise RuntimeError("the cycle's writes are closed")
        first = self._oldest is None  # nothing pending: the linger starts now
        if first:
            self._oldest = self._loop.time()
        self._pending.extend(chunks)
        self._pending_samples += sum(len(c) for c in chunks)
        if first or self._pending_samples >= self._writer.max_batch_samples:
            self._wake.set()

    async def close(self) -> tuple[str, ...]:
        """Write what is pending; every entry id this cycle wrote, in order.

        Raises what a write raised (a non-transient Redis error).
        """
        self._closing = True
        self._wake.set()
        await self._task
        return tuple(self._ids)

    async def cancel(self) -> None:
        """Stop writing; what is pending is not written."""
        self._closing = True
        await cancel_and_wait([self._task])

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    if self._written and not self._completed:
                        # Everything went out in full batches: an empty entry ends the cycle.
                        await self._send([Chunk()], complete=True)
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            full = self._pending_samples >= self._writer.max_batch_samples
            assert self._oldest is not None
            left = self._oldest + self.linger_s - self._loop.time()
            if not (full or self._closing or left <= 0):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await self._wake.wait()
                self._wake.clear()
                continue
            await self._write(everything=self._closing or left <= 0)

    async def _write(self, *, everything: bool) -> None:
        batches = self._writer.batches(self._pending)
        self._pending, self._pending_samples = [], 0
        if batches and not everything and len(batches[-1]) < self._writer.max_batch_samples:
            # The partial last batch waits for more (its linger still runs from its oldest part).
            rest = batches.pop()
            self._pending, self._pending_samples = [rest], len(rest)
        else:
            self._oldest = None
        if batches:
            # Only a write at the close, with nothing left to come, completes the cycle
            # (else the close ends it with an empty entry: see _run).
            await self._send(batches, complete=self._closing and not self._pending)

    async def _send(self, batches: list[Chunk], *, complete: bool) -> None:
        self._written += 1
        self._completed = complete
        ids = await self._writer.write_batches(
            self._source, self._collected_at, batches, complete=complete
        )
        self._ids.extend(ids)
