"""The analytics stage: samples in, conditions evaluated on the clock, violations out.

:class:`Analytics` consumes the samples stream (consumer group ``group``;
batches of either form, resolved by :class:`bus.series.SeriesResolver`),
keeps the latest value of each watched series in memory, and every
``eval_interval_s`` of clock time evaluates every condition against the
inventory's topology. It publishes ONSET and ABATED events to the
violations stream, and keeps the open episodes in Redis so a
restarted worker carries on where the last one stopped. Each event's status
is also recorded at ``keys.violation_state(id)`` (:mod:`analytics.publish`),
so the policy stage can skip an ONSET that already abated.

Absence is judged against the collector's scrape batches
(:mod:`analytics.feed`): a collector outage suspends absent conditions
instead of reporting every VNFC absent at once.

Every worker keeps its own series in memory, so the samples of one VNF must
all reach the same worker: run one analytics worker per consumer group.
Events are published before the state that records them, so a crash in
between re-sends them (at least once, same violation ids) rather than losing
them. Open episodes of conditions no longer configured are left untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from redis.exceptions import RedisError

from analytics.detectors import (
    DetectorState,
    Step,
    check_conditions,
    step_absent,
    step_threshold,
    step_unseen,
)
from analytics.events import evidence_of, violation
from analytics.feed import ScrapeFeed, ScrapeWindow
from analytics.publish import ViolationPublisher
from analytics.readings import Reading, ReadingBuilder, Silence
from analytics.state import StateKey, StateStore
from analytics.windows import LatestValues
from bus.clock import Clock
from bus.conditions import ConditionSpec
from bus.contracts import (
    Message,
    PackedBatch,
    SampleBatch,
    Samples,
    TargetKind,
    Violation,
    ViolationStatus,
)
from bus.keys import Keys
from bus.redis import is_transient
from bus.series import SeriesRegistry, SeriesResolver
from bus.streams import ConsumerSettings, StreamConsumer, consumer_name
from bus.tasks import raise_if_cancelled, wait_for_stop
from mano_core.models import VnfInstance

log = logging.getLogger(__name__)


class InventoryReader(Protocol):
    """The part of :class:`mano_core.inventory.Inventory` analytics reads."""

    async def list(self) -> list[VnfInstance]: ...


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
        group: str = "analytics",
        consumer: str | None = None,
        eval_interval_s: float = 1.0,
        stale_after_s: float = 15.0,
        consumer_settings: ConsumerSettings | None = None,
        maxlen: int = 100_000,
    ) -> None:
        check_conditions(conditions)
        if eval_interval_s <= 0 or stale_after_s <= 0:
            raise ValueError("eval_interval_s and stale_after_s must be positive")
        self._redis = redis
        self._keys = keys
        self._inventory = inventory
        self._clock = clock
        self.conditions = tuple(conditions)
        self.group = group
        self.consumer = consumer or consumer_name("analytics")
        self.eval_interval_s = eval_interval_s
        self.stale_after_s = stale_after_s
        self._consumer_settings = consumer_settings
        self._latest = LatestValues({cond.kpi for cond in self.conditions})
        self._publisher = ViolationPublisher(redis, keys, maxlen=maxlen)
        self._store = StateStore(redis, keys)
        self._open: dict[str, dict[str, DetectorState]] | None = None
        self._watching_since: float | None = None
        self._feed = ScrapeFeed(stale_after_s)
        self._has_absent = any(cond.kind == "absent" for cond in self.conditions)
        self._feed_live: bool | None = None
        self._needs_inventory = any(
            cond.kind == "absent" or cond.scope is not TargetKind.HOST for cond in self.conditions
        )
        absent_for = [cond.for_s for cond in self.conditions if cond.kind == "absent"]
        # Series older than this can change no outcome: stale for thresholds,
        # and silent longer than any absent condition's for_s.
        self._retention_s = 2 * max([stale_after_s, *absent_for])
        self._pruned_at: float | None = None
        self._lock = asyncio.Lock()
        self._resolver = SeriesResolver(SeriesRegistry(redis, keys))
        self.samples_ingested = 0
        """Samples kept (newest of their series, of a watched KPI)."""

    # --- ingestion -----------------------------------------------------------
    async def ingest(self, batch: Samples) -> int:
        """Take in a batch of samples (either form); returns how many were kept."""
        view = await self._resolver.view(batch)
        self._feed.note(view)
        kept = 0
        for sample in view:
            kept += self._latest.add(sample)
        self.samples_ingested += kept
        return kept

    async def _handle(self, message: Message) -> None:
        if isinstance(message, SampleBatch | PackedBatch):
            await self.ingest(message)
        else:
            # Retrying cannot turn it into samples: acknowledge and move on.
            log.warning("ignoring a %s on the samples stream", type(message).__name__)

    # --- evaluation ----------------------------------------------------------
    async def evaluate(self, now: float | None = None) -> list[Violation]:
        """Evaluate every condition at ``now`` (default: the clock's time).

        Publishes the new ONSET/ABATED events to the violations stream and
        returns them. Absence counts from this worker's first evaluation at
        the earliest, since it cannot know what arrived before it started,
        and from the resumption of the scrape feed after a gap; while the
        feed is down, absence is not evaluated.
        """
        async with self._lock:
            now = self._clock.now() if now is None else now
            if self._open is None:
                self._open = _by_condition(await self._store.load())
            if self._watching_since is None:
                self._watching_since = now
            vnfs = await self._inventory.list() if self._needs_inventory else []
            builder = ReadingBuilder(self._latest, vnfs, now, self.stale_after_s)
            pass_ = _Pass(now)
            window = self._absence_window(now) if self._has_absent else None
            for cond in self.conditions:
                self._evaluate(cond, builder, pass_, window)
            # Events first: a crash before the state is written re-sends the
            # same events under the same ids (duplicates are harmless
            # downstream); the other order could lose them.
            if pass_.events:
                await self._publisher.publish(pass_.events)
            await self._store.apply(pass_.changes)
            self._commit(pass_.changes)
            self._prune(now)
        for event in pass_.events:
            log.info(
                "%s %s %s on %s: %s",
                event.status.value,
                event.id,
                f"{event.policy}/{event.condition}",
                event.target.key(),
                event.evidence.description,
            )
        return pass_.events

    def _absence_window(self, now: float) -> ScrapeWindow | None:
        """Where absence is judged at ``now``; None: suspended (no recent scrape batch)."""
        assert self._watching_since is not None
        window = self._feed.window(now)
        live = window is not None
        if live != self._feed_live:  # logged on change, not on every evaluation
            if window is not None:
                log.info("scrape batches arrive: absence counts from %.3f", window.since)
            elif self._feed.last is None:
                log.info("no scrape batch yet: absent conditions wait for the first")
            else:
                log.warning(
                    "no scrape batch for %.0fs: absent conditions suspended until batches resume",
                    now - self._feed.last,
                )
            self._feed_live = live
        if window is None:
            return None
        return ScrapeWindow(since=max(window.since, self._watching_since), until=window.until)

    def _evaluate(
        self,
        cond: ConditionSpec,
        builder: ReadingBuilder,
        pass_: _Pass,
        window: ScrapeWindow | None,
    ) -> None:
        assert self._open is not None
        states = self._open.get(cond.key, {})
        now = pass_.now
        seen: set[str]
        if cond.kind == "threshold":
            readings = builder.readings(cond)
            for key, reading in readings.items():
                old = states.get(key)
                pass_.record(cond, key, old, step_threshold(cond, old, reading, now), reading)
            seen = set(readings)
        elif window is None:
            # Suspended: with no scrape batch, nobody's silence is known. Open
            # episodes stay as they are, but those of VNFCs that left end.
            seen = builder.vnfc_keys(cond)
        else:
            silences = builder.silences(cond, window.since, window.until)
            for key, silence in silences.items():
                old = states.get(key)
                pass_.record(cond, key, old, step_absent(cond, old, silence, now), silence)
            seen = set(silences)
        for key, old in states.items():
            if key not in seen:
                pass_.record(cond, key, old, step_unseen(old), None)

    def _commit(self, changes: dict[StateKey, DetectorState | None]) -> None:
        assert self._open is not None
        for (cond_key, target_key), state in changes.items():
            states = self._open.setdefault(cond_key, {})
            if state is None:
                states.pop(target_key, None)
            else:
                states[target_key] = state

    def _prune(self, now: float) -> None:
        if self._pruned_at is not None and now - self._pruned_at < self.stale_after_s:
            return
        self._pruned_at = now
        self._latest.prune(now - self._retention_s)

    # --- the service loop ----------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Consume samples and evaluate on the clock until ``stop`` is set."""
        consumer = StreamConsumer(
            self._redis,
            self._keys.stream("samples"),
            self.group,
            self.consumer,
            self._handle,
            settings=self._consumer_settings,
            dead_letter_key=self._keys.dead_letters("samples"),
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._consume(consumer, stop))
            tasks.create_task(self._evaluate_every(stop))

    async def _consume(self, consumer: StreamConsumer, stop: asyncio.Event) -> None:
        await consumer.run(stop)

    async def _evaluate_every(self, stop: asyncio.Event) -> None:
        failing = False
        while not stop.is_set():
            raise_if_cancelled()
            try:
                await self.evaluate()
            except RedisError as exc:
                # Redis unreachable, loading, full or failing over passes by
                # itself. Nothing was committed in memory: the next tick
                # recomputes the same transitions and sends their events then.
                # Any other error is a bug and stops the stage.
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
            await self._pause(stop, self.eval_interval_s)

    async def _pause(self, stop: asyncio.Event, seconds: float) -> None:
        await wait_for_stop(stop, self._clock.to_wall(seconds))


class _Pass:
    """The state changes and events of one evaluation, applied only once all succeeded."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.changes: dict[StateKey, DetectorState | None] = {}
        self.events: list[Violation] = []

    def record(
        self,
        cond: ConditionSpec,
        target_key: str,
        old: DetectorState | None,
        step: Step,
        observed: Reading | Silence | None,
    ) -> None:
        """Note the step of one target; ``observed`` is what it showed (None: unseen)."""
        if step.state != old:
            self.changes[(cond.key, target_key)] = step.state
        if step.event is None:
            return
        firing = step.state if step.event is ViolationStatus.ONSET else old
        assert firing is not None, "an event always belongs to a firing episode"
        evidence = evidence_of(cond, firing, step.event, observed, self.now)
        self.events.append(violation(cond, firing, step.event, evidence, self.now))


def _by_condition(
    states: dict[StateKey, DetectorState],
) -> dict[str, dict[str, DetectorState]]:
    out: dict[str, dict[str, DetectorState]] = {}
    for (cond_key, target_key), state in states.items():
        out.setdefault(cond_key, {})[target_key] = state
    return out
