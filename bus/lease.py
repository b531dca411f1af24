"""Leases: one holder at a time for a named thing, across processes, expiring on their own.

A lease is one Redis key set with ``SET NX PX`` to a random token. The
holder extends its TTL every third of it while work runs under it, so the
lease of a worker that died expires by itself and another worker proceeds.
Release and renewal compare the token first (small Lua scripts), so a
worker can never delete or extend a lease that has meanwhile passed to
someone else.

If renewal finds the lease gone or taken, :meth:`Lease.hold` cancels the
work running under it and raises :class:`LeaseLost`: someone else may now
hold it, and continuing would break "one at a time".

Redis trouble does not end a wait for a lease: :meth:`Lease.acquire` waits
out transient errors (:func:`bus.redis.is_transient`) and keeps waiting
through a Redis restart or failover. Renewal skips a failed try (the TTL
leaves two more), and a failed release leaves the lease to expire.

:class:`VnfLease` is the per-VNF lease: one lifecycle operation at a time
per VNF instance, whoever starts it (the actuator, the API, the CLI, the
NFVO running an NS operation). Its TTL is longer than an operation's
timeout, so the lease of a worker that died expires by itself.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from redis.exceptions import RedisError

from bus.clock import Clock
from bus.keys import Keys
from bus.redis import Backoff, is_transient
from bus.tasks import cancel_and_wait, cancel_requested, raise_if_cancelled

log = logging.getLogger(__name__)

T = TypeVar("T")

# Compare-and-delete: only the holder of the token may release.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""

# Compare-and-extend: only the holder of the token may renew.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class LeaseLost(RuntimeError):
    """The lease expired or passed to another worker while work ran under it."""


class Lease:
    """One lease key, held by one worker with one random token.

    ``ttl_s`` and ``poll_s`` are clock seconds; the TTL stored in Redis is
    their wall-clock equivalent (Redis expires keys in wall time).
    """

    def __init__(
        self,
        redis: Any,
        key: str,
        clock: Clock,
        *,
        ttl_s: float,
        holder: str,
        poll_s: float = 1.0,
        name: str | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"lease TTL must be positive, got {ttl_s}")
        self._redis = redis
        self._clock = clock
        self.key = key
        self.name = name or key
        """What the lease is on, for humans (e.g. ``VNF 1234``)."""
        self.ttl_s = ttl_s
        self.poll_s = poll_s
        self.token = f"{holder}/{secrets.token_hex(16)}"
        """What the key holds while this lease is held (holder name for humans, then random)."""
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self._clock.to_wall(self.ttl_s) * 1000))

    async def try_acquire(self) -> bool:
        """Take the lease if it is free; True when this worker now holds it."""
        return bool(await self._redis.set(self.key, self.token, nx=True, px=self._ttl_ms))

    async def acquire(self) -> None:
        """Wait until the lease is free (held by nobody, or expired), then take it.

        Transient Redis errors are waited out (a capped back-off in wall
        time) and the wait goes on; any other error propagates.
        """
        backoff = Backoff()
        while True:
            raise_if_cancelled()
            try:
                if await self._take(unsure=backoff.failures > 0):
                    if backoff.failures:
                        log.warning("took the lease on %s after Redis trouble", self.name)
                    return
            except RedisError as exc:
                if not is_transient(exc):
                    raise
                if backoff.failures == 0:  # once per outage, not once per try
                    log.warning(
                        "cannot reach Redis for the lease on %s (%s); retrying", self.name, exc
                    )
                await backoff.wait()
                continue
            backoff.reset()
            await self._clock.sleep(self.poll_s)

    async def _take(self, *, unsure: bool) -> bool:
        if await self.try_acquire():
            return True
        # After an error the lost reply may have been our own SET succeeding:
        # then the key holds our token, and waiting for it to expire would
        # hold the lease up for a whole TTL.
        return unsure and await self.holder() == self.token

    async def renew(self) -> bool:
        """Extend the TTL; False when the lease is no longer this worker's."""
        return bool(await self._renew(keys=[self.key], args=[self.token, self._ttl_ms]))

    async def release(self) -> bool:
        """Give the lease up; False when it was no longer this worker's."""
        return bool(await self._release(keys=[self.key], args=[self.token]))

    async def holder(self) -> str | None:
        """The token of whoever holds the lease now, if anyone."""
        value = await self._redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    async def run(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Acquire, run ``work`` with the lease kept renewed, release, return its result."""
        await self.acquire()
        return await self.hold(work)

    async def hold(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``work`` under the lease already acquired, kept renewed; release after.

        ``work`` runs in a task of its own so that losing the lease cancels
        exactly that work (and raises :class:`LeaseLost`), nothing else.
        """
        lost = asyncio.Event()
        task = asyncio.create_task(work())
        renewer = asyncio.create_task(self._keep_renewed(task, lost))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if lost.is_set() and not cancel_requested():
                raise LeaseLost(f"lost the lease on {self.name}") from None
            # Our caller was cancelled: stop the work too; a later holder of
            # the lease resumes whatever it left half done.
            await cancel_and_wait([task])
            raise
        finally:
            # Never a bare cancel-and-await: a renewer that lost its
            # cancellation in a Redis call would keep the lease forever.
            # If this very task is cancelled while it waits, the release is
            # skipped and the lease expires by its TTL.
            await cancel_and_wait([renewer])
            if not lost.is_set():
                await self._release_quietly()

    async def _keep_renewed(self, work: asyncio.Task[Any], lost: asyncio.Event) -> None:
        while True:
            raise_if_cancelled()
            await self._clock.sleep(self.ttl_s / 3)
            try:
                still_ours = await self.renew()
            except RedisError as exc:
                # Two more tries remain before the TTL runs out; a brief Redis
                # outage should not abort an operation that is going well.
                log.warning("could not renew the lease on %s: %s", self.name, exc)
                continue
            if not still_ours:
                log.error("lease on %s lost; stopping the work under it", self.name)
                lost.set()
                work.cancel()
                return

    async def _release_quietly(self) -> None:
        try:
            if not await self.release():
                log.warning("lease on %s had already passed on at release", self.name)
        except RedisError as exc:
            # Nothing to retry: the TTL frees the lease by itself.
            log.warning("could not release the lease on %s (it will expire): %s", self.name, exc)


class VnfLease(Lease):
    """The lease on one VNF instance (``keys.vnf_lease(vnf_id)``)."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        clock: Clock,
        vnf_id: str,
        *,
        ttl_s: float,
        holder: str,
        poll_s: float = 1.0,
    ) -> None:
        super().__init__(
            redis,
            keys.vnf_lease(vnf_id),
            clock,
            ttl_s=ttl_s,
            holder=holder,
            poll_s=poll_s,
            name=f"VNF {vnf_id}",
        )
        self.vnf_id = vnf_id
