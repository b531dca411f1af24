"""The closed loop's own metrics, read at scrape time from where they are true.

- :class:`LoopCollector` (refreshed from Redis before each scrape):
  ``nfva_violations_open`` (the API's view), ``nfva_violation_events_total{status}``,
  ``nfva_decisions_total{action, verdict}``, ``nfva_guard_verdicts_total{guard, verdict}``,
  ``nfva_operations_total{operation, outcome}`` (the view's counters, see
  :mod:`assure.api.views`), and per consumer group of each event stream
  ``nfva_stream_lag_entries`` (entries not yet read) and
  ``nfva_stream_pending_entries`` (read, not yet acknowledged), and
  ``nfva_stream_length_entries``.
- :class:`LoopLatency`: ``nfva_loop_latency_seconds{stage}`` histograms of
  each stage of the loop, in clock seconds: ``sample_to_violation`` (an
  ONSET's time after the newest sample behind it, when its evidence says),
  ``violation_to_decision`` and ``decision_to_done`` (a decision to its
  operation's end). It follows the streams from the moment it starts (each
  API replica sees every event), matching each event with the one before it.
- :class:`CallbackCounter`: a counter whose value a function reads, for a
  stage in this process (``nfva_samples_ingested_total``).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from redis.exceptions import RedisError, ResponseError

from assure.api.views import counts
from bus.contracts import ContractError, Decision, OpResult, Violation, ViolationStatus, decode
from bus.keys import Keys
from bus.redis import Backoff, is_transient, reply_text
from bus.streams import FIELD
from bus.tasks import raise_if_cancelled

EVENT_STREAMS = ("samples", "violations", "decisions", "op_results")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class LoopCollector:
    """Loop counters and stream lag, read from Redis before each scrape."""

    def __init__(self, redis: Any, keys: Keys, streams: Sequence[str] = EVENT_STREAMS) -> None:
        self._redis = redis
        self._keys = keys
        self._streams = streams
        self._counts: dict[tuple[str, ...], int] = {}
        self._open = 0
        self._groups: list[tuple[str, str, float | None, float]] = []
        self._lengths: dict[str, int] = {}

    async def refresh(self) -> None:
        self._counts = await counts(self._redis, self._keys)
        self._open = int(await self._redis.hlen(self._keys.api_view("open")))
        groups: list[tuple[str, str, float | None, float]] = []
        lengths: dict[str, int] = {}
        for stream in self._streams:
            key = self._keys.stream(stream)
            try:
                infos = await self._redis.xinfo_groups(key)
            except ResponseError:  # the stream does not exist yet
                continue
            lengths[stream] = int(await self._redis.xlen(key))
            for info in infos:
                lag = info.get("lag")
                if lag is None and reply_text(info.get("last-delivered-id")) == "0-0":
                    # Redis gives no lag for a group that has read nothing
                    # since it was created at an id: it is the whole stream.
                    lag = lengths[stream]
                groups.append(
                    (
                        stream,
                        reply_text(info["name"]),
                        None if lag is None else float(lag),
                        float(info["pending"]),
                    )
                )
        self._groups = groups
        self._lengths = lengths

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("nfva_violations_open", "Violations ONSET and not yet ABATED.",
                                value=self._open)  # fmt: skip
        families = {
            "violations": CounterMetricFamily(
                "nfva_violation_events", "Violation events by status.", labels=["status"]
            ),
            "decisions": CounterMetricFamily(
                "nfva_decisions", "Decisions by action and verdict.", labels=["action", "verdict"]
            ),
            "guards": CounterMetricFamily(
                "nfva_guard_verdicts", "Guard checks by guard and verdict.",
                labels=["guard", "verdict"],
            ),
            "operations": CounterMetricFamily(
                "nfva_operations", "Operations run for decisions, by operation and outcome.",
                labels=["operation", "outcome"],
            ),
        }  # fmt: skip
        for (kind, *labels), value in sorted(self._counts.items()):
            family = families.get(kind)
            if family is not None and len(labels) == len(family._labelnames):
                family.add_metric(labels, value)
        yield from families.values()
        lag = GaugeMetricFamily(
            "nfva_stream_lag_entries", "Entries a consumer group has not read yet.",
            labels=["stream", "group"],
        )  # fmt: skip
        pending = GaugeMetricFamily(
            "nfva_stream_pending_entries", "Entries read by a group and not yet acknowledged.",
            labels=["stream", "group"],
        )  # fmt: skip
        for stream, group, lag_value, pending_value in self._groups:
            if lag_value is not None:
                lag.add_metric([stream, group], lag_value)
            pending.add_metric([stream, group], pending_value)
        length = GaugeMetricFamily("nfva_stream_length_entries", "Entries in each event stream.",
                                   labels=["stream"])  # fmt: skip
        for stream, value in self._lengths.items():
            length.add_metric([stream], value)
        yield from (lag, pending, length)


class CallbackCounter:
    """A counter whose value ``read()`` gives at scrape time (a stage's own count)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name = name
        self._documentation = documentation
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


class _Recent:
    """A bounded map of recent event times by id."""

    def __init__(self, size: int = 10_000) -> None:
        self._times: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._size = size

    def put(self, key: str, at: float) -> None:
        self._times[key] = at
        self._times.move_to_end(key)
        while len(self._times) > self._size:
            self._times.popitem(last=False)

    def pop(self, key: str) -> float | None:
        return self._times.pop(key, None)

    def get(self, key: str) -> float | None:
        return self._times.get(key)


class LoopLatency:
    """Histograms of the loop's stages, from the events as they pass."""

    def __init__(self, redis: Any, keys: Keys, registry: CollectorRegistry) -> None:
        self._redis = redis
        self._keys = keys
        self.histogram = Histogram(
            "nfva_loop_latency_seconds",
            "Latency of each stage of the closed loop (clock seconds).",
            ["stage"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._violations = _Recent()
        self._decisions = _Recent()
        self.following = asyncio.Event()
        """Set once it knows where the streams end, and follows them from there."""

    def observe(self, message: Any) -> None:
        if isinstance(message, Violation) and message.status is ViolationStatus.ONSET:
            self._violations.put(message.id, message.at)
            sampled = message.evidence.observed_at
            if sampled is not None:
                self.histogram.labels("sample_to_violation").observe(max(0.0, message.at - sampled))
        elif isinstance(message, Decision):
            self._decisions.put(message.id, message.decided_at)
            onset = self._violations.get(message.violation_id)
            if onset is not None:
                self.histogram.labels("violation_to_decision").observe(
                    max(0.0, message.decided_at - onset)
                )
        elif isinstance(message, OpResult) and message.finished_at is not None:
            decided = self._decisions.pop(message.decision_id)
            if decided is not None:
                self.histogram.labels("decision_to_done").observe(
                    max(0.0, message.finished_at - decided)
                )

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the streams from now on until ``stop`` is set, riding out Redis trouble."""
        names = [self._keys.stream(s) for s in ("violations", "decisions", "op_results")]
        backoff = Backoff()
        last: dict[str, str] | None = None
        while not stop.is_set():
            raise_if_cancelled()
            try:
                if last is None:
                    last = {name: await self._last_id(name) for name in names}
                    self.following.set()
                reply = await self._redis.xread(dict(last), count=500, block=500)
            except RedisError as exc:
                if not is_transient(exc):
                    raise
                await backoff.wait(stop)
                continue
            backoff.reset()
            for stream, entries in reply or []:
                for entry_id, fields in entries:
                    last[reply_text(stream)] = reply_text(entry_id)
                    try:
                        self.observe(decode(fields[FIELD]))
                    except (ContractError, KeyError):
                        continue

    async def _last_id(self, stream: str) -> str:
        newest = await self._redis.xrevrange(stream, count=1)
        return reply_text(newest[0][0]) if newest else "0-0"
