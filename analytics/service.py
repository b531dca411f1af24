"""The analytics stage: samples in, conditions evaluated as samples land, violations out.

:class:`Analytics` reads the samples stream (:mod:`analytics.intake`;
batches of either form, resolved by :class:`bus.sample_view.SeriesResolver`)
into the windows of an :class:`~analytics.engine.Engine`, and evaluates
every condition as soon as new samples landed (and at least every
``eval_interval_s`` of clock time, for what time alone changes: staleness,
absence). It publishes ONSET and ABATED events to the violations stream,
and keeps the open episodes in Redis so a restarted worker carries on
where the last one stopped. Each event's status is also recorded at
``keys.violation_state(id)`` (:mod:`analytics.publish`), so the policy
stage can skip an ONSET that already abated.

The topology follows the inventory's change notifications
(:mod:`analytics.follow`): one small read per evaluation, the whole
inventory only at start.

Anomaly models (``kind: anomaly``) are trained, stored and reloaded beside
the evaluation by a :class:`~analytics.models.ModelKeeper`, training in a
worker thread.

With ``shards``, several workers share the VNFs (and hosts) by shard
(:mod:`analytics.ownership`), each holding its shards through a lease
(:class:`bus.shards.ShardOwner`, group ``analytics``), rebalanced within
one ``shard_ttl_s`` when a worker joins or dies. A worker evaluates only
its shards' targets and keeps only the samples they need. A shard it
gives up is dropped at once, episodes included (the new owner resumes
them from Redis, sending nothing twice); a shard it takes over has its
windows rebuilt from the shard's sample history in Redis
(:mod:`analytics.archive`, which every owner writes as it keeps samples)
and the samples stream's entries after it, its open episodes loaded
from Redis, and its anomaly scorers resumed from the state their last
owner kept beside the history (:mod:`analytics.scoring_state`), before it
is evaluated. Unsharded, the one worker keeps the same history and
scorer state (as shard 0) and resumes from them when it starts. The
history is written once per ``eval_interval_s`` (the scorer state less
often), after an evaluation has published its events (not inside it).

Absence is judged against the collectors' scrape batches
(:mod:`analytics.feed`): a collector outage suspends absent conditions
instead of reporting every VNFC absent at once, and silence is known only
as far as every live collector has written its cycles.

Events are published before the state that records them, so a crash in
between re-sends them (at least once, same violation ids) rather than
losing them; events and states that could not be written (Redis full or
away) wait in an outbox and go first on the next evaluation. Open
episodes of conditions no longer configured are left untouched.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from analytics.archive import SampleArchive
from analytics.correlation import fault_field, faults_by_host
from analytics.engine import Engine, Pass
from analytics.feed import ScrapeWindow
from analytics.follow import InventoryReader, NsReader, TopologyFollower
from analytics.intake import SampleIntake
from analytics.models import ModelKeeper
from analytics.ownership import Ownership
from analytics.publish import ViolationPublisher
from analytics.scoring_state import ScoringStates
from analytics.state import DetectorState, StateKey, StateStore
from bus.clock import Clock
from bus.conditions import ConditionSpec
from bus.contracts import (
    Message,
    PackedBatch,
    SampleBatch,
    Samples,
    Target,
    TargetKind,
    Violation,
    ViolationStatus,
)
from bus.heap import freeze_heap
from bus.keys import Keys
from bus.redis import Backoff, is_transient, reply_text
from bus.sample_view import SeriesResolver
from bus.series import SeriesRegistry
from bus.shards import ShardOwner
from bus.tasks import cancel_and_wait, raise_if_cancelled, wait_for_stop

log = logging.getLogger(__name__)

_GROWN_SERIES = 10_000
"""Series new to the windows since the heap was last frozen that have it frozen again
(:mod:`bus.heap`)."""


class Analytics:
    """Evaluates KPI conditions and raises ONSET/ABATED violations."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        inventory: InventoryReader,
        clock: Clock,
        conditions: Sequence[ConditionSpec],
        *,
        eval_interval_s: float = 1.0,
        stale_after_s: float = 15.0,
        read_block_ms: int = 1000,
        maxlen: int = 100_000,
        max_samples: int = 512,
        shards: int | None = None,
        shard_ttl_s: float = 15.0,
        ns_inventory: NsReader | None = None,
    ) -> None:
        if eval_interval_s <= 0 or stale_after_s <= 0:
            raise ValueError("eval_interval_s and stale_after_s must be positive")
        self.engine = Engine(conditions, stale_after_s=stale_after_s, max_samples=max_samples)
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self.conditions = self.engine.conditions
        self.eval_interval_s = eval_interval_s
        self.stale_after_s = stale_after_s
        self.intake = SampleIntake(redis, keys.stream("samples"), block_ms=read_block_ms)
        self.owner: ShardOwner | None = None
        self.takeovers = 0
        """Shard takeovers completed (windows rebuilt, episodes resumed)."""
        self.ready: frozenset[int] = frozenset()
        """The owned shards whose takeover is complete (windows rebuilt, episodes
        resumed). Ownership changes first, so a shard can be owned and not ready yet."""
        self.ownership: Ownership | None = None
        if shards is not None:
            self.ownership = Ownership(shards)
            self.engine.own(self.ownership)
            self.owner = ShardOwner(
                redis, keys, clock, group="analytics", n_shards=shards, ttl_s=shard_ttl_s,
                on_change=self._shards_changed,
            )  # fmt: skip
        needs_ns = any(c.scope is TargetKind.NS for c in self.engine.conditions)
        self._follower = TopologyFollower(
            inventory, self.engine.topology, ns_inventory if needs_ns else None
        )
        self._publisher = ViolationPublisher(redis, keys, maxlen=maxlen)
        self._store = StateStore(redis, keys)
        # Sharded, a worker loads the episodes of each shard as it takes it over.
        self._loaded = shards is not None
        self._watching_since: float | None = None
        self._feed_live: bool | None = None
        self._feed_since: float | None = None
        self._outbox_events: list[Violation] = []
        self._outbox_changes: dict[StateKey, DetectorState | None] = {}
        self._pruned_at: float | None = None
        self._lock = asyncio.Lock()
        self._landed = asyncio.Event()
        self._evaluated = asyncio.Event()
        self._frozen_series = 0
        self.models = ModelKeeper(redis, keys, self.engine, clock, check_s=eval_interval_s * 5)
        self.archive = SampleArchive(
            redis, keys, clock, list(self.engine.tables.values()),
            horizon_s=self.engine.lookback_s, flush_s=eval_interval_s,
        )  # fmt: skip
        self.engine.archive = self.archive
        self.scoring = ScoringStates(redis, keys, self.engine.evaluators)
        self._resolver = SeriesResolver(SeriesRegistry(redis, keys))

    @property
    def topology_reloads(self) -> int:
        """Whole reads of the inventory so far (the first one included)."""
        return self._follower.reloads

    @property
    def samples_ingested(self) -> int:
        """Samples taken in (of a watched KPI)."""
        return self.engine.samples_ingested

    # --- ingestion -----------------------------------------------------------
    async def ingest(self, batch: Samples) -> int:
        """Take in a batch of samples (either form); returns how many were of a watched KPI."""
        view = await self._resolver.view(batch)
        self.engine.feed.note(view)
        kept = self.engine.ingest_view(view)
        if kept:
            self._landed.set()
        return kept

    async def _handle(self, message: Message) -> None:
        if isinstance(message, SampleBatch | PackedBatch):
            await self.ingest(message)
        else:
            log.warning("ignoring a %s on the samples stream", type(message).__name__)

    # --- shards --------------------------------------------------------------
    async def _shards_changed(self, owned: frozenset[int]) -> None:
        """The shard owner's news: stop on lost shards at once, take gained ones over."""
        assert self.ownership is not None
        async with self._lock:
            gained, lost = self.ownership.set(owned)
            self.ready -= lost
            if lost:
                self.archive.forget(lost)
                dropped = self.engine.forget_unowned()
                log.info("gave up %d shards (%d open episodes handed on)", len(lost), dropped)
            if gained:
                await self._take_over(gained)

    async def _take_over(self, gained: frozenset[int]) -> None:
        """Rebuild the windows of ``gained`` from Redis, then resume their episodes."""
        assert self.ownership is not None
        ownership = self.ownership
        rebuilt, read = await self._rebuild(gained)

        states = await self._store.load()
        self.engine.load(
            {k: s for k, s in states.items() if ownership.target_shard(s.target) in gained}
        )
        await self.scoring.restore(gained, lambda t: ownership.target_shard(t) in gained)
        self.takeovers += 1
        self.ready |= gained & ownership.owned
        log.info(
            "took over %d shards: %d samples from their history and %d stream entries, "
            "episodes resumed",
            len(gained),
            rebuilt,
            read,
        )

    async def _rebuild(self, shards: frozenset[int]) -> tuple[int, int]:
        """Rebuild the windows of ``shards`` from their history and the stream entries after it.

        Returns the samples taken in and the stream entries read.
        """
        if self.intake.last_id is None:
            await self.intake.start()
        until = self.intake.last_id
        sharded = self.ownership is not None
        resolver = SeriesResolver(None)  # each segment defines the series it holds
        rebuilt = 0
        throughs: list[str | None] = []
        for shard in sorted(shards):
            kept = await self.archive.read(shard)
            only = frozenset({shard}) if sharded else None
            for batch in kept.batches:
                view = await resolver.view(batch)
                rebuilt += self.engine.ingest_view(view, only, archive=False)
            throughs.append(kept.through)
        # What arrived after the history: from the stream, and into the history too.
        known = [t for t in throughs if t is not None]
        if until is None or until == "0-0":
            messages: list[Message] = []
        elif len(known) < len(throughs):
            since = self._clock.now() - self.engine.lookback_s
            messages = await self.intake.history(since, until, _collected_at)
        else:
            first = min(known, key=_entry_order)
            oldest = await self.intake.oldest_id()
            if oldest is not None and _entry_order(oldest) > _entry_order(first):
                log.warning(
                    "the samples stream no longer holds the entries after %s: the windows "
                    "taken over miss what arrived between %s and %s",
                    first,
                    first,
                    oldest,
                )
            messages = await self.intake.after(first, until)
        for message in messages:
            if isinstance(message, SampleBatch | PackedBatch):
                view = await self._resolver.view(message)
                self.engine.feed.note(view)
                rebuilt += self.engine.ingest_view(view, shards if sharded else None)
        return rebuilt, len(messages)

    # --- evaluation ----------------------------------------------------------
    async def evaluate(self, now: float | None = None) -> list[Violation]:
        """Evaluate every condition at ``now`` (default: the clock's time).

        Publishes the new ONSET/ABATED events to the violations stream and
        returns them (with any left over from an evaluation whose writes
        failed). Absence counts from this worker's first evaluation at the
        earliest, since it cannot know what arrived before it started, and
        from the resumption of the scrape feed after a gap; while the feed
        is down, absence is not evaluated.
        """
        async with self._lock:
            now = self._clock.now() if now is None else now
            if not self._loaded:
                await self._rebuild(frozenset({0}))
                self.engine.load(await self._store.load())
                await self.scoring.restore({0}, lambda _: True)
                self._loaded = True
            if self.ownership is not None:
                # Independent reads: one wait for Redis, not two.
                _, raw = await asyncio.gather(
                    self._follower.refresh(), self._redis.hgetall(self._keys.host_faults())
                )
                topology, ownership = self.engine.topology, self.ownership
                ownership.need_vnfs(
                    (ownership.ns_shard(ns.id), vnf_id)
                    for ns in topology.network_services
                    if ownership.owns_ns(ns.id)
                    for vnf_id in ns.vnf_ids()
                )
                self.engine.causes.elsewhere = faults_by_host(
                    {reply_text(k): reply_text(v) for k, v in raw.items()}
                )
            else:
                await self._follower.refresh()
            if self._watching_since is None:
                self._watching_since = now
            window = self._absence_window(now) if self.engine.has_silence else None
            result = self.engine.evaluate(now, window)
            self._queue(result)
            events = await self._flush()
            self._prune(now)
        for event in events:
            log.info(
                "%s %s %s on %s: %s%s",
                event.status.value,
                event.id,
                f"{event.policy}/{event.condition}",
                event.target.key(),
                event.evidence.description,
                f" (caused by {event.caused_by})" if event.caused_by else "",
            )
        return events

    async def keep_history(self, now: float | None = None) -> int:
        """Write the samples kept since the last write to the owned shards' history when due
        (once per ``eval_interval_s`` of clock time), and the anomaly scorers' changed states
        (:mod:`analytics.scoring_state`, less often); returns how many samples were written.

        The running stage does it after each evaluation has published its
        events, beside the evaluation rather than inside it. Raises the
        Redis error when the write fails (the samples wait for the next).
        """
        async with self._lock:
            now = self._clock.now() if now is None else now
            if not self._loaded or not self.archive.due(now):
                return 0  # before the first evaluation, the history is still to be read
            owned = self.ownership.owned if self.ownership is not None else frozenset({0})
            flush = self.archive.take(now, owned, self.intake.handled_id)
            scoring = None
            if self.scoring.due(now):
                scoring = self.scoring.take(now, self._shard_of, owned)
        # Written outside the lock: the next evaluation need not wait for it.
        written = await self.archive.write(flush)
        if scoring is not None:
            await self.scoring.write(scoring, self.archive.ttl_ms)
        return written

    def _shard_of(self, target: Target) -> int | None:
        return 0 if self.ownership is None else self.ownership.target_shard(target)

    def _queue(self, result: Pass) -> None:
        self._outbox_events.extend(result.events)
        self._outbox_changes.update(result.changes)

    async def _flush(self) -> list[Violation]:
        """Write the outbox: events first, then the states that record them."""
        events = list(self._outbox_events)
        if events:
            await self._publisher.publish(events)
            await self._share_host_faults(events)
            self._outbox_events = []
        if self._outbox_changes:
            await self._store.apply(self._outbox_changes)
            self._outbox_changes = {}
        return events

    async def _share_host_faults(self, events: list[Violation]) -> None:
        """Record host violations starting and ending, for the workers of their VNFCs."""
        if self.ownership is None:
            return
        hosts = [e for e in events if e.target.kind is TargetKind.HOST]
        if not hosts:
            return
        key = self._keys.host_faults()
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in hosts:
                if event.status is ViolationStatus.ONSET:
                    pipe.hset(key, fault_field(event), event.id)
                else:
                    pipe.hdel(key, fault_field(event))
            await pipe.execute()

    def _absence_window(self, now: float) -> ScrapeWindow | None:
        """Where absence is judged at ``now``; None: suspended (no recent scrape batch)."""
        assert self._watching_since is not None
        feed = self.engine.feed
        window = feed.window(now)
        live = window is not None
        if live != self._feed_live:  # logged on change, not on every evaluation
            if window is not None:
                log.info("scrape batches arrive: absence counts from %.3f", window.since)
            elif feed.last is None:
                log.info("no scrape batch yet: absent conditions wait for the first")
            else:
                log.warning(
                    "no scrape batch for %.0fs: absent conditions suspended until batches resume",
                    now - feed.last,
                )
            self._feed_live = live
        elif window is not None and window.since != self._feed_since:
            log.warning(
                "absence counts from %.3f (a collector stopped writing scrape cycles, "
                "or the feed resumed)",
                window.since,
            )
        if window is None:
            return None
        self._feed_since = window.since
        return ScrapeWindow(since=max(window.since, self._watching_since), until=window.until)

    def _prune(self, now: float) -> None:
        if self._pruned_at is not None and now - self._pruned_at < self.stale_after_s:
            return
        self._pruned_at = now
        self.engine.prune(now)

    # --- the service loop ----------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume samples and evaluate until ``stop`` is set."""
        await self._start_reading()
        async with asyncio.TaskGroup() as tasks:
            if self.owner is not None:
                tasks.create_task(self.owner.run(stop))
            tasks.create_task(self.intake.run(stop, self._handle))
            tasks.create_task(self._evaluate_on_landing(stop))
            tasks.create_task(self._keep_history_after_evaluations(stop))
            tasks.create_task(self.models.run(stop))

    async def _start_reading(self) -> None:
        """Note where the stream is, waiting out Redis trouble (reading starts after it)."""
        backoff = Backoff()
        while True:
            try:
                await self.intake.start()
                return
            except RedisError as exc:
                if not is_transient(exc):
                    raise
                await backoff.wait()

    async def _evaluate_on_landing(self, stop: asyncio.Event) -> None:
        failing = False
        while not stop.is_set():
            raise_if_cancelled()
            self._landed.clear()
            try:
                await self.evaluate()
            except RedisError as exc:
                # Redis unreachable, loading, full or failing over passes by
                # itself; what could not be written waits in the outbox and
                # goes first next time. Any other error is a bug and stops
                # the stage.
                if not is_transient(exc):
                    raise
                if not failing:  # once per outage, not once per tick
                    log.warning(
                        "evaluation failed (%s: %s); retrying every tick", type(exc).__name__, exc
                    )
                failing = True
            else:
                if failing:
                    log.warning("evaluation works again")
                failing = False
                self._evaluated.set()
                self._freeze_heap()
            await self._until_landed(stop, failing)

    def _freeze_heap(self) -> None:
        """Keep the windows' bookkeeping (series, routes, labels) out of full collections.

        At 200,000 series a full collection walking them stalls the loop for
        a few hundred milliseconds; frozen after the first evaluation, and
        again once many series are new (a takeover, a fleet grown), they are
        never walked again.
        """
        series = sum(len(table) for table in self.engine.tables.values())
        grown = series - self._frozen_series >= _GROWN_SERIES
        if grown:
            self._frozen_series = series
        freeze_heap(grown=grown)

    async def _keep_history_after_evaluations(self, stop: asyncio.Event) -> None:
        """Write the history after an evaluation published its events, when due."""
        failing = False
        while not stop.is_set():
            raise_if_cancelled()
            await _first_of(self._evaluated, stop)
            self._evaluated.clear()
            try:
                await self.keep_history()
            except RedisError as exc:
                if not is_transient(exc):
                    raise
                if not failing:  # once per outage; the samples wait for the next write
                    log.warning(
                        "writing the sample history failed (%s: %s)", type(exc).__name__, exc
                    )
                failing = True
            else:
                failing = False

    async def _until_landed(self, stop: asyncio.Event, failing: bool) -> None:
        """Wait for new samples (not while writes fail), the tick, or ``stop``."""
        wait = self._clock.to_wall(self.eval_interval_s)
        if failing or self._landed.is_set():
            await wait_for_stop(stop, wait if failing else 0)
            return
        await _first_of(self._landed, stop, within_s=wait)


async def _first_of(a: asyncio.Event, b: asyncio.Event, *, within_s: float | None = None) -> None:
    """Wait until either event is set (or ``within_s`` seconds passed)."""
    first = asyncio.ensure_future(a.wait())
    second = asyncio.ensure_future(b.wait())
    try:
        await asyncio.wait({first, second}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait([first, second])


def _entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _collected_at(message: Message) -> float:
    # Anything else on the stream is no sample: never the end of the history.
    return message.collected_at if isinstance(message, SampleBatch | PackedBatch) else math.inf
