"""The API's views of the event streams: open violations and event counts, kept in Redis.

The violations, decisions and operation-results streams say what happened
one event at a time; the API needs "which violations are open now" and
"how many of each" without reading 100 000 entries per request. The
:class:`ViewBuilder` consumes the three streams in the consumer group
``api`` (several API replicas share the work, and a restarted one resumes
where the group stopped, from the first entry for a new group) and keeps:

- ``keys.api_view("open")``: hash, violation id -> its ONSET (encoded),
  removed at its ABATED;
- ``keys.api_view("counts")``: hash of event counters: ``violations|<status>``,
  ``decisions|<action>|approved|denied``, ``guards|<guard>|passed|failed``,
  ``operations|<operation>|<state>``.

Delivery is at least once: a replica that dies mid-entry may count that
entry twice when another takes it over.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bus.contracts import Decision, Message, OpResult, Violation, ViolationStatus, decode, encode
from bus.keys import Keys
from bus.redis import reply_text
from bus.streams import ConsumerSettings, StreamConsumer, consumer_name

GROUP = "api"
STREAMS = ("violations", "decisions", "op_results")


class ViewBuilder:
    """Consumes the event streams into the API's views."""

    def __init__(self, redis: Any, keys: Keys, *, settings: ConsumerSettings | None = None) -> None:
        self._redis = redis
        self._keys = keys
        name = consumer_name("api")
        self.consumers = [
            StreamConsumer(
                redis,
                keys.stream(stream),
                GROUP,
                name,
                self.apply,
                settings=settings,
                dead_letter_key=keys.dead_letters(stream),
            )
            for stream in STREAMS
        ]

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            for consumer in self.consumers:
                tasks.create_task(consumer.run(stop))

    async def apply(self, message: Message) -> None:
        counts = self._keys.api_view("counts")
        async with self._redis.pipeline(transaction=False) as pipe:
            if isinstance(message, Violation):
                opened = self._keys.api_view("open")
                if message.status is ViolationStatus.ONSET:
                    pipe.hset(opened, message.id, encode(message))
                else:
                    pipe.hdel(opened, message.id)
                pipe.hincrby(counts, f"violations|{message.status.value}", 1)
            elif isinstance(message, Decision):
                verdict = "approved" if message.approved else "denied"
                pipe.hincrby(counts, f"decisions|{message.action.value}|{verdict}", 1)
                for guard in message.guards:
                    outcome = "passed" if guard.passed else "failed"
                    pipe.hincrby(counts, f"guards|{guard.guard}|{outcome}", 1)
            elif isinstance(message, OpResult):
                pipe.hincrby(counts, f"operations|{message.operation}|{message.state.value}", 1)
            else:
                return
            await pipe.execute()


async def open_violations(redis: Any, keys: Keys) -> list[Violation]:
    """The violations whose ONSET has no ABATED yet, oldest first."""
    stored = await redis.hgetall(keys.api_view("open"))
    found = [decode(raw) for raw in stored.values()]
    return sorted((v for v in found if isinstance(v, Violation)), key=lambda v: (v.at, v.id))


async def counts(redis: Any, keys: Keys) -> dict[tuple[str, ...], int]:
    """The event counters, keyed by their ``|``-separated parts."""
    stored = await redis.hgetall(keys.api_view("counts"))
    return {tuple(reply_text(k).split("|")): int(v) for k, v in stored.items()}
