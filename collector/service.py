"""The collector service: scheduled collection cycles, written to the bus in bounded batches.

Two apscheduler interval jobs run on the event loop: the scrape cycle
(every VNFC exporter the inventory knows, concurrently) and the VIM cycle
(infrastructure telemetry). Each cycle reads a fresh inventory snapshot and
writes its samples to the samples stream as :class:`~bus.contracts.PackedBatch`
entries of at most ``max_batch_samples`` samples each (many samples per
entry, never one entry per sample), all in one pipelined round trip
(:mod:`collector.writer`). The bound is what makes the stream's ``maxlen``
(counted in entries) a bound on Redis memory. Jobs never overlap
(``max_instances=1``) and a late one runs once, not once per missed
interval (``coalesce``).

Redis being unreachable never fails a cycle: the writer buffers (bounded)
and retries. Per-target failures never fail a cycle either: they become
``up`` 0 and are logged when they start, change or stop, not on every cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bus.clock import Clock
from bus.contracts import SCRAPE_SOURCE, VIM_SOURCE
from bus.keys import Keys
from bus.series import SeriesRegistry
from bus.tasks import cancel_and_wait
from collector.chunks import Chunk, SeriesBook
from collector.scrape import Scraper
from collector.targets import InventoryReader, Topology, discover
from collector.vim_source import VimSource
from collector.writer import SampleWriter
from mano_core.vim.base import VimDriver

log = logging.getLogger(__name__)


DEFAULT_MAXLEN = 2_000
"""Samples-stream length bound, in entries (not samples). Each entry holds at
most ``max_batch_samples`` samples, so the stream holds at most about
``maxlen * max_batch_samples`` samples (about 16 B each when packed): with the
defaults about 4 million samples, some 70 MB. A small deployment (one entry
per source per cycle) keeps well over an hour of 5 s cycles; a large one
keeps fewer cycles, still far more than a consumer lags."""

DEFAULT_MAX_BATCH_SAMPLES = 2_000
"""Samples per stream entry at most (about 32 KiB packed, plus new definitions)."""


@dataclass(frozen=True)
class CycleReport:
    """What one cycle of one source did."""

    source: str
    collected_at: float
    samples: int
    errors: dict[str, str] = field(default_factory=dict)
    """Failed target (VNFC id or URL, or the VIM name) -> why."""
    entry_id: str | None = None
    """The last stream entry written; None when nothing was written now (nothing
    to write, or Redis unreachable: then the samples wait in the writer's buffer)."""
    entry_ids: tuple[str, ...] = ()
    """Every stream entry written, in order (at most ``max_batch_samples`` samples each)."""


class Collector:
    """Collects VNFC exporters and VIM telemetry into the samples stream.

    Intervals are clock seconds (the scheduler waits ``clock.to_wall`` of
    them); ``scrape_timeout_s`` is wall seconds, because an HTTP round trip
    does not get faster with a scaled clock. A cycle's samples are written as
    entries of at most ``max_batch_samples`` samples each.
    """

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        inventory: InventoryReader,
        vim: VimDriver,
        clock: Clock,
        *,
        scrape_interval_s: float = 5.0,
        vim_interval_s: float = 5.0,
        scrape_timeout_s: float = 2.0,
        maxlen: int = DEFAULT_MAXLEN,
        concurrency: int = 64,
        session: aiohttp.ClientSession | None = None,
        max_batch_samples: int = DEFAULT_MAX_BATCH_SAMPLES,
    ) -> None:
        self._inventory = inventory
        self._clock = clock
        self.scrape_interval_s = scrape_interval_s
        self.vim_interval_s = vim_interval_s
        self.scrape_timeout_s = scrape_timeout_s
        self.max_batch_samples = max_batch_samples
        self.writer = SampleWriter(
            redis,
            keys,
            SeriesRegistry(redis, keys),
            maxlen=maxlen,
            max_batch_samples=max_batch_samples,
        )
        self._vim_book = SeriesBook(self.writer)
        self._scraper = Scraper(
            clock,
            self.writer,
            timeout_s=scrape_timeout_s,
            concurrency=concurrency,
            session=session,
        )
        self._vim = VimSource(vim, clock)
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._failing: dict[str, dict[str, str]] = {SCRAPE_SOURCE: {}, VIM_SOURCE: {}}
        self.last: dict[str, CycleReport] = {}
        """The latest report of each source."""

    # --- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Schedule both cycles; the first of each runs at once."""
        if self._scheduler is not None:
            return
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        now = datetime.now(UTC)
        jobs: list[tuple[str, Callable[[], Awaitable[CycleReport]], float]] = [
            (SCRAPE_SOURCE, self.scrape_cycle, self.scrape_interval_s),
            (VIM_SOURCE, self.vim_cycle, self.vim_interval_s),
        ]
        for job_id, cycle, interval_s in jobs:
            scheduler.add_job(
                self._run,
                "interval",
                args=[cycle],
                id=job_id,
                seconds=self._clock.to_wall(interval_s),
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                # Late is better than skipped: with coalescing it runs once.
                misfire_grace_time=None,
            )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        """Stop scheduling, let a running cycle finish (up to the scrape timeout), close HTTP."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.pause()
            running = set(self._running)
            if running:
                _done, late = await asyncio.wait(running, timeout=self.scrape_timeout_s)
                await cancel_and_wait(late)
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # the shutdown itself runs as a loop callback
        await self._scraper.aclose()
        await self.writer.aclose()

    async def __aenter__(self) -> Collector:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _run(self, cycle: Callable[[], Awaitable[CycleReport]]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await cycle()
        finally:
            if task is not None:
                self._running.discard(task)

    # --- cycles ------------------------------------------------------------
    async def collect_once(self) -> tuple[CycleReport, CycleReport]:
        """One cycle of both sources on one inventory snapshot: ``(scrape, vim)``."""
        topology = await discover(self._inventory)
        scrape, vim = await asyncio.gather(self.scrape_cycle(topology), self.vim_cycle(topology))
        return scrape, vim

    async def scrape_cycle(self, topology: Topology | None = None) -> CycleReport:
        """Scrape every VNFC exporter the inventory knows now; write its batches."""
        if topology is None:
            topology = await discover(self._inventory)
        collected_at = self._clock.now()
        targets = topology.targets
        self._scraper.forget_except(targets)
        results = await self._scraper.scrape_all(targets)
        errors = {r.target.name: r.error for r in results if r.error is not None}
        for r in results:
            for problem in r.problems:
                errors.setdefault(r.target.name, f"{r.target.name}: {problem}")
        chunks = [r.chunk for r in results]
        return await self._finish(SCRAPE_SOURCE, collected_at, chunks, errors)

    async def vim_cycle(self, topology: Topology | None = None) -> CycleReport:
        """Read VIM telemetry, label it through the inventory; write its batches."""
        if topology is None:
            topology = await discover(self._inventory)
        collected_at = self._clock.now()
        collection = await self._vim.collect(topology)
        errors = {VIM_SOURCE: collection.error} if collection.error else {}
        chunk = self._vim_book.chunk(collection.samples, lambda _kpi: "gauge")
        return await self._finish(VIM_SOURCE, collected_at, [chunk], errors)

    async def _finish(
        self, source: str, collected_at: float, chunks: list[Chunk], errors: dict[str, str]
    ) -> CycleReport:
        entry_ids = tuple(await self.writer.write(source, collected_at, chunks))
        self._log_changes(source, errors)
        report = CycleReport(
            source,
            collected_at,
            sum(len(c) for c in chunks),
            errors,
            entry_ids[-1] if entry_ids else None,
            entry_ids,
        )
        self.last[source] = report
        return report

    def _log_changes(self, source: str, errors: dict[str, str]) -> None:
        # Log when a failure starts, changes or ends, not on every cycle:
        # a VNFC that is down for an hour must not write 720 warnings.
        before = self._failing[source]
        for name, error in errors.items():
            if before.get(name) != error:
                log.warning("%s collection failing: %s", source, error)
        for name in before.keys() - errors.keys():
            log.info("%s collection of %s no longer failing", source, name)
        self._failing[source] = errors
