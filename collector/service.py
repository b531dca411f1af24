"""The collector service: scheduled collection cycles, written to the bus in bounded batches.

Loops run on the event loop: the scrape cycle (every VNFC exporter the
inventory knows, concurrently), the VIM cycle (infrastructure telemetry)
and, when a Prometheus is configured, the PromQL cycle
(:mod:`collector.promql_source`, at the scrape interval), each on the
boundaries of its interval in clock time. Each
cycle reads a fresh inventory snapshot and writes its samples to the
samples stream as :class:`~bus.contracts.PackedBatch` entries of at most
``max_batch_samples`` samples each (many samples per entry, never one entry
per sample), each write one pipelined round trip (:mod:`collector.writer`).
The VIM and PromQL cycles write once, when they end; the scrape cycle
writes while its scrapes finish (:mod:`collector.cycle_writes`: full
batches at once, the rest within 2% of the interval), so a target scraped early in the
spread is not held back until the last one ends. The
bound is what makes the stream's ``maxlen`` (counted in entries) a bound on
Redis memory. Cycles of one source never overlap, and a late one runs once,
at the next boundary.

Collectors are sharded (:class:`bus.shards.ShardOwner`, group
``collector``): any number run at once, each scraping the targets (and the
VIM) whose shard it holds, none standing by. A target belongs to the shard
of its VNFC id; the VIM to the shard of ``vim:<name>``. Because cycles run
on the interval's boundaries, a target whose shard moves to another
collector is scraped once per interval, by its owner at that boundary; the
targets of a collector that died are scraped again within the shards' TTL.
A collector that loses a shard mid-cycle writes nothing more of it.
Every entry a collector writes carries its name (its shard member name,
:attr:`Collector.name`), so analytics waits for each live collector's
cycle before it takes a VNFC for silent (:mod:`analytics.feed`).

Redis being unreachable never fails a cycle: the writer buffers (bounded)
and retries. Per-target failures never fail a cycle either: they become
``up`` 0 and are logged when they start, change or stop, not on every cycle.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from bus.clock import Clock
from bus.contracts import PROMQL_SOURCE, SCRAPE_SOURCE, VIM_SOURCE
from bus.heap import freeze_heap
from bus.keys import Keys
from bus.redis import is_transient
from bus.series import SeriesRegistry
from bus.shards import ShardOwner
from bus.streams import consumer_name
from bus.tasks import cancel_and_wait, raise_if_cancelled, wait_for_stop
from collector.chunks import Chunk, SeriesBook
from collector.cycle_writes import LINGER_SHARE, CycleWrites
from collector.promql_source import PromQLQuery, PromQLSource
from collector.scrape import Scraper, ScrapeResult
from collector.targets import AccessReader, InventoryReader, ScrapeTarget, Topology, discover
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


SPREAD = 0.5
"""Scheduled scrapes start within this share of the interval, each at its target's offset."""


_GROWN_SERIES = 10_000
"""A scrape cycle defining this many new series has the heap frozen again (bus.heap)."""


@dataclass
class CycleStats:
    """Counts of what the cycles did, per source."""

    cycles: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    """Targets (or VIMs, or queries) that failed, summed over cycles."""
    seconds: collections.defaultdict[str, float] = field(
        default_factory=lambda: collections.defaultdict(float)
    )
    """Clock seconds the cycles took, summed."""


def target_key(target: ScrapeTarget) -> str:
    """What a target's shard is computed from: its VNFC id (else its URL)."""
    return target.labels.get("vnfc") or target.url


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
    defined: int = 0
    """Series this cycle defined for the first time (new to this collector)."""


class Collector:
    """Collects VNFC exporters and VIM telemetry into the samples stream.

    Intervals are clock seconds (the scheduler waits ``clock.to_wall`` of
    them); ``scrape_timeout_s`` is wall seconds, because an HTTP round trip
    does not get faster with a scaled clock. A cycle's samples are written as
    entries of at most ``max_batch_samples`` samples each. ``access`` gives
    the exporters that need TLS settings or credentials their scrape options
    (:mod:`collector.exporter_access`); without it every exporter is scraped
    plainly.
    """

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        inventory: InventoryReader,
        vims: Sequence[VimDriver],
        clock: Clock,
        *,
        scrape_interval_s: float = 5.0,
        vim_interval_s: float = 5.0,
        scrape_timeout_s: float = 2.0,
        maxlen: int = DEFAULT_MAXLEN,
        concurrency: int = 64,
        max_batch_samples: int = DEFAULT_MAX_BATCH_SAMPLES,
        owner: ShardOwner | None = None,
        max_body_bytes: int = 8 * 1024 * 1024,
        max_buffered_samples: int = 2_000_000,
        promql: PromQLSource | None = None,
        promql_queries: Callable[[], Awaitable[list[PromQLQuery]]] | None = None,
        access: AccessReader | None = None,
    ) -> None:
        self._inventory = inventory
        self._access = access
        self._clock = clock
        self.scrape_interval_s = scrape_interval_s
        self.vim_interval_s = vim_interval_s
        self.scrape_timeout_s = scrape_timeout_s
        self.max_batch_samples = max_batch_samples
        self.name = owner.worker if owner is not None else consumer_name("collector")
        """This collector's name: its shard member name when sharded; written in its entries."""
        self.writer = SampleWriter(
            redis,
            keys,
            SeriesRegistry(redis, keys),
            maxlen=maxlen,
            max_batch_samples=max_batch_samples,
            max_buffered_samples=max_buffered_samples,
            collector=self.name,
        )
        self._vim_book = SeriesBook(self.writer)
        self._scraper = Scraper(
            clock,
            self.writer,
            timeout_s=scrape_timeout_s,
            concurrency=concurrency,
            max_body_bytes=max_body_bytes,
        )
        self._vims = [VimSource(vim, clock) for vim in vims]
        self._owner = owner
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self._promql = promql
        self._promql_queries = promql_queries
        self._promql_book = SeriesBook(self.writer)
        self._failing: dict[str, dict[str, str]] = {
            SCRAPE_SOURCE: {},
            VIM_SOURCE: {},
            PROMQL_SOURCE: {},
        }
        self.stats = CycleStats()
        """Cycles, target failures and time spent, per source (for the self-metrics)."""
        self.last: dict[str, CycleReport] = {}
        """The latest report of each source."""

    # --- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Start both cycles (and the shard owner); each runs on its interval's boundaries."""
        if self._tasks:
            return
        self._stop = asyncio.Event()
        loops: list[tuple[str, Callable[[], Awaitable[CycleReport]], float]] = [
            (SCRAPE_SOURCE, lambda: self.scrape_cycle(spread=True), self.scrape_interval_s),
            (VIM_SOURCE, self.vim_cycle, self.vim_interval_s),
        ]
        if self._promql is not None:
            loops.append((PROMQL_SOURCE, self.promql_cycle, self.scrape_interval_s))
        if self._owner is not None:
            self._tasks.append(asyncio.create_task(self._owner.run(self._stop), name="shards"))
        for name, cycle, interval_s in loops:
            task = asyncio.create_task(self._every(name, interval_s, cycle), name=f"{name} cycles")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Stop the cycles, let a running one finish (up to the scrape timeout), close HTTP."""
        tasks, self._tasks = self._tasks, []
        self._stop.set()
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=self.scrape_timeout_s + 2.0)
            await cancel_and_wait(late)
        await self._scraper.aclose()
        if self._promql is not None:
            await self._promql.aclose()
        await self.writer.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until ``stop`` is set."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Collector:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _every(
        self, cycle_name: str, interval_s: float, cycle: Callable[[], Awaitable[CycleReport]]
    ) -> None:
        """Run ``cycle`` at every multiple of ``interval_s`` of clock time.

        On the boundaries, never in between: whichever collector owns a
        target at a boundary scrapes it, so a target whose shard moves is
        scraped once per interval, not once by each owner. A cycle that
        outlasts its interval makes the next run at the following boundary
        (late boundaries are skipped, not caught up).
        """
        stop = self._stop
        while not stop.is_set():
            raise_if_cancelled()
            now = self._clock.now()
            boundary = (math.floor(now / interval_s) + 1) * interval_s
            if await wait_for_stop(stop, self._clock.to_wall(boundary - now)):
                return
            try:
                report = await cycle()
                if cycle_name == SCRAPE_SOURCE:
                    # Many series new to this collector: their caches are built now.
                    freeze_heap(grown=report.defined >= _GROWN_SERIES)
            except RedisError as exc:
                # The writer buffers through outages; what reaches here is
                # an inventory read failing. The next boundary is the retry.
                if not is_transient(exc):
                    raise
                log.warning("collection cycle failed (%s); retrying next interval", exc)

    def owns(self, key: str) -> bool:
        """Whether this collector collects ``key`` now (always, when not sharded)."""
        return self._owner is None or self._owner.owns_key(key)

    # --- cycles ------------------------------------------------------------
    async def collect_once(self) -> tuple[CycleReport, CycleReport]:
        """One cycle of both sources on one inventory snapshot: ``(scrape, vim)``."""
        topology = await discover(self._inventory, self._access)
        scrape, vim = await asyncio.gather(self.scrape_cycle(topology), self.vim_cycle(topology))
        return scrape, vim

    async def scrape_cycle(
        self, topology: Topology | None = None, *, spread: bool = False
    ) -> CycleReport:
        """Scrape every VNFC exporter the inventory knows now; write its batches.

        ``spread``: targets start at their own offsets within the first half
        of the interval (as the scheduled cycles do), not all at once.
        """
        if topology is None:
            topology = await discover(self._inventory, self._access)
        collected_at = self._clock.now()
        targets = [t for t in topology.targets if self.owns(target_key(t))]
        self._scraper.forget_except(targets)
        interval_s = self._clock.to_wall(self.scrape_interval_s)
        spread_s = interval_s * SPREAD if spread else 0.0
        writes = CycleWrites(
            self.writer, SCRAPE_SOURCE, collected_at, linger_s=interval_s * LINGER_SHARE
        )
        results: list[ScrapeResult] = []

        def finished(result: ScrapeResult) -> None:
            # A shard lost while scraping is no longer ours to write.
            if self.owns(target_key(result.target)):
                results.append(result)
                writes.add((result.chunk, result.meta))

        try:
            await self._scraper.scrape_all(
                targets,
                spread_s=spread_s,
                still_ours=lambda t: self.owns(target_key(t)),
                on_result=finished,
            )
            entry_ids = await writes.close()
        except BaseException:
            await writes.cancel()
            raise
        errors = {r.target.name: r.error for r in results if r.error is not None}
        for r in results:
            for problem in r.problems:
                errors.setdefault(r.target.name, f"{r.target.name}: {problem}")
        chunks = [c for r in results for c in (r.chunk, r.meta)]
        return self._report(SCRAPE_SOURCE, collected_at, chunks, errors, entry_ids)

    async def vim_cycle(self, topology: Topology | None = None) -> CycleReport:
        """Read VIM telemetry, label it through the inventory; write its batches."""
        if topology is None:
            topology = await discover(self._inventory, self._access)
        collected_at = self._clock.now()
        # Each VIM is owned by one shard, like a scrape target.
        owned = [v for v in self._vims if self.owns(f"vim:{v.name}")]
        if not owned:
            return CycleReport(VIM_SOURCE, collected_at, 0)
        collections = await asyncio.gather(*(v.collect(topology) for v in owned))
        samples = [s for c in collections for s in c.samples]
        errors = {c.vim: c.error for c in collections if c.error}
        chunk = self._vim_book.chunk(samples, lambda _kpi: "gauge")
        return await self._finish(VIM_SOURCE, collected_at, [chunk], errors)

    async def promql_cycle(self) -> CycleReport:
        """Evaluate the ``promql`` KPIs of the VNFDs in use against the Prometheus; write them."""
        collected_at = self._clock.now()
        source = self._promql
        if source is None or not self.owns(f"promql:{source.url}"):
            return CycleReport(PROMQL_SOURCE, collected_at, 0)
        queries = await self._promql_queries() if self._promql_queries else []
        collection = await source.collect(queries)
        chunk = self._promql_book.chunk(collection.samples)
        return await self._finish(PROMQL_SOURCE, collected_at, [chunk], collection.errors)

    async def _finish(
        self, source: str, collected_at: float, chunks: list[Chunk], errors: dict[str, str]
    ) -> CycleReport:
        entry_ids = tuple(await self.writer.write(source, collected_at, chunks))
        return self._report(source, collected_at, chunks, errors, entry_ids)

    def _report(
        self,
        source: str,
        collected_at: float,
        chunks: list[Chunk],
        errors: dict[str, str],
        entry_ids: tuple[str, ...],
    ) -> CycleReport:
        self._log_changes(source, errors)
        self.stats.cycles[source] += 1
        self.stats.failures[source] += len(errors)
        self.stats.seconds[source] += self._clock.now() - collected_at
        report = CycleReport(
            source,
            collected_at,
            sum(len(c) for c in chunks),
            errors,
            entry_ids[-1] if entry_ids else None,
            entry_ids,
            sum(len(c.new) for c in chunks),
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
