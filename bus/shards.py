"""Sharded ownership: the live workers of a group split N shards between them.

Sharded stages (collectors owning targets, analytics workers owning VNFs)
run as many workers as they like; none stands by. The work is cut into
``n_shards`` shards (:func:`shard_of` maps a key such as a VNF id to one),
and each shard is held by at most one worker at a time through a lease in
Redis. Every worker of a group runs a :class:`ShardOwner`, which, every
quarter of ``ttl_s``:

* refreshes the worker's membership (a sorted set scored by expiry) and
  drops members whose membership expired;
* renews the leases it holds, and reads which shards are free;
* gives up shards beyond its fair share (``ceil(n_shards / live workers)``),
  telling the worker *first* (``on_change``) so it stops acting on them
  before anyone else can take them;
* takes free shards up to its fair share, then tells the worker.

A worker that joins gets its share within half of ``ttl_s`` (the others give
up their extras on their next round, it takes them on its next one). The
shards of a worker that died are taken over within ``ttl_s``: its leases
live three quarters of ``ttl_s`` after their last renewal, and every other
worker looks for free shards every quarter. A worker that stops cleanly
(:meth:`ShardOwner.leave`) releases everything at once.

One worker at a time: a lease lasts ``0.75 * ttl_s`` in Redis from the moment
its renewal was *sent*, and the worker counts a shard as its own only until
90% of that has passed since then (by its monotonic clock) unless a later
renewal succeeded. So a worker cut off from Redis stops acting on its shards
(``on_change`` with what is left) before their leases can expire and pass to
another; a worker checks :meth:`ShardOwner.owns` (local, cheap) before each
act. All of a group's keys share one hash tag, so the scripts also run
on Redis Cluster; the scripts take their time from Redis (``TIME``), so the
workers' clocks need not agree.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from bus.clock import Clock
from bus.keys import Keys
from bus.redis import is_transient
from bus.streams import consumer_name
from bus.tasks import raise_if_cancelled, wait_for_stop

log = logging.getLogger(__name__)

OnChange = Callable[[frozenset[int]], Awaitable[None]]

LEASE_SHARE = 0.75
"""A lease lives this share of ``ttl_s`` after its last renewal."""
VALID_SHARE = 0.9
"""A worker trusts a lease for this share of the lease's life after sending its renewal."""

# KEYS[1]: members; KEYS[2..]: the lease of shard 0, 1, ...
# ARGV: worker, membership ms, lease ms.
# Returns {live workers, shards held by this worker, free shards}.
_TICK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl)
local live = redis.call('ZCARD', KEYS[1])
local mine = {}
local free = {}
for i = 2, #KEYS do
    local owner = redis.call('GET', KEYS[i])
    if owner == ARGV[1] then
        redis.call('PEXPIRE', KEYS[i], ARGV[3])
        mine[#mine + 1] = i - 2
    elseif not owner then
        free[#free + 1] = i - 2
    end
end
return {live, mine, free}
"""

# KEYS: leases to try, in order; ARGV: worker, lease ms, how many at most.
# Returns the 1-based positions in KEYS of the leases taken.
_TAKE = """
local taken = {}
local want = tonumber(ARGV[3])
for i = 1, #KEYS do
    if #taken >= want then break end
    if redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
        taken[#taken + 1] = i
    end
end
return taken
"""

# KEYS: leases to give up (only those still held by ARGV[1]); KEYS[#KEYS]: members
# when ARGV[2] is '1' (the worker leaves the group too).
_RELEASE = """
local last = #KEYS
if ARGV[2] == '1' then
    redis.call('ZREM', KEYS[last], ARGV[1])
    last = last - 1
end
for i = 1, last do
    if redis.call('GET', KEYS[i]) == ARGV[1] then
        redis.call('DEL', KEYS[i])
    end
end
return 0
"""


def shard_of(key: str, n_shards: int) -> int:
    """The shard of ``key`` (e.g. a VNF id or a target URL): stable across processes."""
    return zlib.crc32(key.encode()) % n_shards


async def _nothing(_owned: frozenset[int]) -> None:
    return None


class ShardOwner:
    """This worker's share of the ``n_shards`` shards of ``group``.

    ``ttl_s`` is in clock seconds (its wall equivalent is what Redis sees).
    ``on_change`` is awaited with the new set of owned shards whenever it
    changes; when shards are given up it is awaited before their leases are
    released, so the worker must have stopped acting on them when it returns.
    """

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        clock: Clock,
        *,
        group: str,
        n_shards: int,
        ttl_s: float,
        worker: str | None = None,
        on_change: OnChange | None = None,
    ) -> None:
        if n_shards <= 0:
            raise ValueError(f"n_shards must be positive, got {n_shards}")
        if ttl_s <= 0:
            raise ValueError(f"the shard TTL must be positive, got {ttl_s}")
        self._redis = redis
        self._clock = clock
        self.group = group
        self.n_shards = n_shards
        self.ttl_s = ttl_s
        self.worker = worker or consumer_name(group)
        """This worker's name in the group (also the value of the leases it holds)."""
        self._on_change = on_change or _nothing
        self._members = keys.shard_members(group)
        self._leases = [keys.shard_lease(group, i) for i in range(n_shards)]
        self._tick = redis.register_script(_TICK)
        self._take = redis.register_script(_TAKE)
        self._release = redis.register_script(_RELEASE)
        self._held: frozenset[int] = frozenset()
        self._valid_until = 0.0
        """Monotonic wall time until which the held leases are surely ours."""
        self._told: frozenset[int] = frozenset()
        """What ``on_change`` was last told."""

    # --- what the worker asks ---------------------------------------------
    @property
    def owned(self) -> frozenset[int]:
        """The shards this worker may act on now."""
        return self._held if time.monotonic() < self._valid_until else frozenset()

    def owns(self, shard: int) -> bool:
        return shard in self.owned

    def owns_key(self, key: str) -> bool:
        """Whether the shard of ``key`` is this worker's now."""
        return self.owns(shard_of(key, self.n_shards))

    # --- running ----------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Keep this worker's fair share until ``stop`` is set; then leave the group."""
        failures = 0
        try:
            while not stop.is_set():
                raise_if_cancelled()
                try:
                    await self.rebalance()
                except RedisError as exc:
                    if not is_transient(exc):
                        raise
                    if not failures:
                        log.warning("cannot reach Redis for the %s shards (%s)", self.group, exc)
                    failures += 1
                    # Leases we cannot renew lapse: say so the moment they do,
                    # before Redis lets another worker take them.
                    await self._tell(self.owned)
                    left = self._valid_until - time.monotonic()
                    wait = self._round_wall_s() if left <= 0 else min(self._round_wall_s(), left)
                    await wait_for_stop(stop, wait)
                    continue
                if failures:
                    log.warning("reached Redis again for the %s shards", self.group)
                    failures = 0
                await wait_for_stop(stop, self._round_wall_s())
        finally:
            await self.leave()

    async def rebalance(self) -> None:
        """One round: renew, give up extras, take free shards up to the fair share."""
        sent = time.monotonic()
        live, mine, free = await self._tick(
            keys=[self._members, *self._leases],
            args=[self.worker, self._ms(self.ttl_s), self._ms(self.ttl_s * LEASE_SHARE)],
        )
        self._renewed(frozenset(int(i) for i in mine), sent)
        fair = math.ceil(self.n_shards / max(1, int(live)))
        held = sorted(self._held)
        if len(held) > fair:
            extra = random.sample(held, len(held) - fair)
            await self._give_up(frozenset(extra))
        elif len(held) < fair and free:
            candidates = [int(i) for i in free]
            random.shuffle(candidates)
            sent = time.monotonic()
            taken = await self._take(
                keys=[self._leases[i] for i in candidates],
                args=[self.worker, self._ms(self.ttl_s * LEASE_SHARE), fair - len(held)],
            )
            if taken:
                new = frozenset(candidates[int(p) - 1] for p in taken)
                # The new leases were set after ``sent``; the old ones renewed earlier.
                self._held |= new
        await self._tell(self.owned)

    async def leave(self) -> None:
        """Stop acting on every shard, release them and leave the group (best effort)."""
        held = self._held
        self._held = frozenset()
        await self._tell(frozenset())
        try:
            await self._release(
                keys=[*(self._leases[i] for i in sorted(held)), self._members],
                args=[self.worker, "1"],
            )
        except RedisError as exc:
            log.warning("could not release the %s shards (they will expire): %s", self.group, exc)

    async def members(self) -> list[str]:
        """The workers of the group whose membership has not expired."""
        raw = await self._redis.zrangebyscore(self._members, await self._redis_ms(), "+inf")
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    # --- inside -----------------------------------------------------------
    def _renewed(self, held: frozenset[int], sent: float) -> None:
        self._held = held
        self._valid_until = sent + self._clock.to_wall(self.ttl_s * LEASE_SHARE) * VALID_SHARE

    async def _give_up(self, shards: frozenset[int]) -> None:
        self._held -= shards
        await self._tell(self.owned)  # the worker stops acting on them first
        await self._release(keys=[self._leases[i] for i in sorted(shards)], args=[self.worker, "0"])

    async def _tell(self, owned: frozenset[int]) -> None:
        if owned != self._told:
            self._told = owned
            await self._on_change(owned)

    def _round_wall_s(self) -> float:
        return self._clock.to_wall(self.ttl_s / 4)

    def _ms(self, clock_s: float) -> int:
        return max(1, round(self._clock.to_wall(clock_s) * 1000))

    async def _redis_ms(self) -> int:
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000
