"""The Redis connection factory: one place builds clients from one URL."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

Redis = aioredis.Redis


def connect(url: str, *, cluster: bool = False, **options: Any) -> Any:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``).

    With ``cluster=True`` the URL names any node of a Redis Cluster. The
    client returns ``bytes``; callers decode what they store as text.
    """
    options.setdefault("health_check_interval", 30)
    if cluster:
        return RedisCluster.from_url(url, **options)
    return aioredis.Redis.from_url(url, **options)
