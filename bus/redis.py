"""Redis connections: the client factory, and which Redis errors to wait out."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bus.tasks import wait_for_stop

Redis = aioredis.Redis


def connect(url: str, *, cluster: bool = False, **options: Any) -> Any:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``).

    With ``cluster=True`` the URL names any node of a Redis Cluster. The
    client returns ``bytes``; callers decode what they store as text.

    A burst of more concurrent commands than the pool has connections
    (``max_connections``, 100 by default) waits up to ``pool_timeout``
    seconds for a free one, rather than failing at once with "Too many
    connections" (as an HTTP server's burst of requests would).
    """
    options.setdefault("health_check_interval", 30)
    if cluster:
        return RedisCluster.from_url(url, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=options.pop("max_connections", 100),
        timeout=options.pop("pool_timeout", 20),
        **options,
    )
    return aioredis.Redis.from_pool(pool)


def reply_text(value: Any) -> str:
    """A Redis reply (an entry id, a name) as text, whichever way the client decodes;
    a missing value (nil) is the empty text."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


TRANSIENT_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    MasterDownError,
    TryAgainError,
    ClusterDownError,
)
"""Redis errors that pass by themselves (unreachable, loading, full, failing
over): retry, never give up the worker."""

_PASSING_REPLIES = ("OOM", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "LOADING")
"""The same conditions as reply codes, for a client that raises a plain ResponseError."""


def is_transient(exc: BaseException) -> bool:
    """Whether a Redis error is one to wait out rather than fail on."""
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    if not isinstance(exc, ResponseError):
        return False
    # redis-py moves the reply code from the message to status_code for the
    # classes it knows; look at both.
    code = str(getattr(exc, "status_code", "") or "")
    return code.startswith(_PASSING_REPLIES) or str(exc).startswith(_PASSING_REPLIES)


class Backoff:
    """Capped exponential back-off in wall seconds, cut short by an optional stop event."""

    def __init__(self, first_s: float = 0.1, cap_s: float = 5.0) -> None:
        self.first_s = first_s
        self.cap_s = cap_s
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        """The pause before the next try, doubling from ``first_s`` up to ``cap_s``; counts
        one more failure (for a caller that sleeps through a clock of its own)."""
        delay: float = min(self.cap_s, self.first_s * 2.0**self.failures)
        self.failures += 1
        return delay

    async def wait(self, stop: asyncio.Event | None = None) -> None:
        delay = self.next_delay()
        if stop is None:
            await asyncio.sleep(delay)
            return
        await wait_for_stop(stop, delay)
