"""Role heartbeats: a key per role and host, refreshed while the role runs, read by probes.

A process refreshes ``keys.heartbeat(role, host)`` for each role it runs,
every :data:`BEAT_S` wall seconds while that role's task has not ended;
the key expires by itself :data:`STALE_S` after the last beat, as arq's
health key does. A role that crashed, or a process whose event loop is
stuck (a blocking call on it), stops beating; a process that stops in
order drops its keys. ``nfv-assure probe ROLE``
reads the key of this host (a Kubernetes exec probe runs in the role's
own container, whose host name is the pod's): the liveness probe of the
roles that serve no HTTP. Wall time, not the platform's clock: probes
run in wall time even when the platform runs accelerated.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Mapping
from typing import Any

from bus.keys import Keys
from bus.redis import is_transient, reply_text
from bus.tasks import wait_for_stop

log = logging.getLogger(__name__)

BEAT_S = 5.0
"""Wall seconds between two beats of a role."""
STALE_S = 30.0
"""Wall seconds after the last beat when the role counts as dead (the key's TTL)."""


def host_name() -> str:
    return socket.gethostname()


async def beat(
    redis: Any,
    keys: Keys,
    roles: Mapping[str, asyncio.Task[Any]],
    stop: asyncio.Event,
    *,
    host: str | None = None,
) -> None:
    """Refresh each running role's heartbeat until ``stop``, then drop them (the roles are
    stopping); a Redis outage skips beats."""
    host = host or host_name()
    while not stop.is_set():
        alive = [name for name, task in roles.items() if not task.done()]
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for name in alive:
                    pipe.set(keys.heartbeat(name, host), repr(time.time()), ex=int(STALE_S))
                await pipe.execute()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("cannot refresh the role heartbeats (%s); retrying", exc)
        await wait_for_stop(stop, BEAT_S)
    try:
        await redis.delete(*(keys.heartbeat(name, host) for name in roles))
    except Exception as exc:
        if not is_transient(exc):
            raise


async def last_beat(redis: Any, keys: Keys, role: str, host: str | None = None) -> float | None:
    """Wall seconds since ``role`` on ``host`` (default: this one) last beat; None: no beat."""
    raw = await redis.get(keys.heartbeat(role, host or host_name()))
    if raw is None:
        return None
    return max(0.0, time.time() - float(reply_text(raw)))
