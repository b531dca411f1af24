"""Publishing violations: each event on the violations stream, and its status recorded.

Besides the event, the status of each violation as published (``ONSET`` or
``ABATED``) is set at ``keys.violation_state(id)``. The policy stage reads it
to skip an ONSET whose episode already ABATED, as happens when it works
through a backlog: acting on it would scale or heal for a condition that
cleared long ago. Both writes go in one pipelined round trip, the status
first, so a reader of an event finds its status (or a newer one) recorded.

The record expires after a day of wall time (Redis TTLs are wall time,
whatever the clock's speed): far longer than any backlog lasts, so ended
episodes do not pile up. No record means "not known", which the policy
stage takes as still active.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bus.contracts import Violation, encode
from bus.keys import Keys
from bus.streams import FIELD

VIOLATION_STATE_TTL_S = 86_400
"""How long a violation's recorded status lives, in wall seconds (1 day)."""


class ViolationPublisher:
    """Appends violations to the violations stream (trimmed to about ``maxlen``)."""

    def __init__(self, redis: Any, keys: Keys, *, maxlen: int = 100_000) -> None:
        self._redis = redis
        self._keys = keys
        self.stream_key = keys.stream("violations")
        self._maxlen = maxlen

    async def publish(self, events: Sequence[Violation]) -> list[str]:
        """Record each event's status and append the events, in one round trip.

        Returns the stream entry ids. The stream entry is written as
        :class:`bus.streams.StreamPublisher` writes it, so any stream
        consumer reads it.
        """
        if not events:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.set(
                    self._keys.violation_state(event.id),
                    event.status.value,
                    ex=VIOLATION_STATE_TTL_S,
                )
                pipe.xadd(
                    self.stream_key,
                    {FIELD: encode(event)},
                    maxlen=self._maxlen,
                    approximate=True,
                )
            replies = await pipe.execute()
        ids = replies[1::2]
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
