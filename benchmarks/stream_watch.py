"""What the latency benchmarks read: the decisions and violations streams, from where they end.

One reader for ``alert_latency.py`` and ``push_latency.py``: it starts at
the streams' newest entries and hands over each decision or violation
appended since, with the time it was read.
"""

from __future__ import annotations

import time
from typing import Any

from bus.contracts import Decision, Violation, ViolationStatus, decode
from bus.streams import FIELD


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def is_kind(message: Any, kind: str) -> bool:
    """Whether ``message`` is a decision (``kind`` "decision") or an ABATED ("abated")."""
    if kind == "decision":
        return isinstance(message, Decision)
    return isinstance(message, Violation) and message.status is ViolationStatus.ABATED


class Watch:
    """Reads the decisions and violations streams from where they end now."""

    def __init__(self, redis: Any, keys: Any) -> None:
        self.redis = redis
        self.keys = {keys.stream("decisions"): "$", keys.stream("violations"): "$"}

    async def start(self) -> None:
        for key in self.keys:
            newest = await self.redis.xrevrange(key, count=1)
            self.keys[key] = newest[0][0].decode() if newest else "0-0"

    async def read(self, block_ms: int) -> tuple[list[Decision | Violation], float]:
        """The decisions and violations appended since the last read (waiting up to
        ``block_ms`` for one), and the ``perf_counter`` time they were read."""
        reply = await self.redis.xread(self.keys, block=block_ms, count=100)
        read_at = time.perf_counter()
        messages: list[Decision | Violation] = []
        for key, entries in reply or []:
            for entry_id, fields in entries:
                self.keys[key.decode()] = entry_id.decode()
                message = decode(fields[FIELD])
                if isinstance(message, Decision | Violation):
                    messages.append(message)
        return messages, read_at
