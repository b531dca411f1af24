"""The per-VNF lease on a real Redis: exclusive, self-expiring, renewed, released by its holder."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actuator.lease import LeaseLost, VnfLease
from bus.clock import ScaledClock
from bus.keys import Keys
from tests.actuator_support import restartable_redis

TTL_S = 60.0
"""Clock seconds: 0.3 s of wall time at speed 200."""


def lease(redis: Any, keys: Keys, clock: ScaledClock, holder: str) -> VnfLease:
    return VnfLease(redis, keys, clock, "vnf-1", ttl_s=TTL_S, holder=holder, poll_s=1.0)


async def test_only_one_worker_holds_a_vnf_lease_and_only_it_can_release_it(
    redis: Any, keys: Keys
) -> None:
    clock = ScaledClock(speed=200)
    a, b = lease(redis, keys, clock, "a"), lease(redis, keys, clock, "b")

    assert await a.try_acquire()
    assert not await b.try_acquire()
    assert not await b.release(), "b released a's lease"
    assert await a.holder() == a.token
    assert await a.release()
    assert await b.try_acquire()


async def test_a_lease_is_kept_while_its_work_outlasts_the_ttl(redis: Any, keys: Keys) -> None:
    clock = ScaledClock(speed=200)
    holder, rival = lease(redis, keys, clock, "holder"), lease(redis, keys, clock, "rival")
    rival_got_it = False

    async def long_work() -> str:
        nonlocal rival_got_it
        for _ in range(8):  # 4 TTLs in all
            await clock.sleep(TTL_S / 2)
            rival_got_it = rival_got_it or await rival.try_acquire()
        return "done"

    assert await holder.run(long_work) == "done"
    assert not rival_got_it, "the lease expired under running work"
    assert await holder.holder() is None, "not released after the work"


async def test_losing_the_lease_stops_the_work_under_it(redis: Any, keys: Keys) -> None:
    clock = ScaledClock(speed=200)
    holder = lease(redis, keys, clock, "holder")
    finished = False

    async def long_work() -> None:
        nonlocal finished
        await redis.delete(keys.vnf_lease("vnf-1"))  # as if it expired during a Redis stall
        await clock.sleep(TTL_S * 3)
        finished = True

    with pytest.raises(LeaseLost):
        await holder.run(long_work)
    assert not finished


async def test_a_waiting_worker_takes_the_lease_once_the_holder_releases_it(
    redis: Any, keys: Keys
) -> None:
    clock = ScaledClock(speed=200)
    a, b = lease(redis, keys, clock, "a"), lease(redis, keys, clock, "b")
    assert await a.try_acquire()
    waiting = asyncio.create_task(b.acquire())
    await clock.sleep(5.0)
    assert not waiting.done()

    await a.release()

    await asyncio.wait_for(waiting, 2)
    assert await b.holder() == b.token


async def test_a_worker_waiting_for_a_lease_waits_through_a_redis_restart(keys: Keys) -> None:
    async with restartable_redis() as redis:
        clock = ScaledClock(speed=200)
        # A long TTL (3 s of wall time): only the restart frees the lease in this test.
        a, b = (
            VnfLease(redis.client, keys, clock, "vnf-1", ttl_s=600.0, holder=name)
            for name in ("a", "b")
        )
        assert await a.try_acquire()
        waiting = asyncio.create_task(b.acquire())
        try:
            await clock.sleep(5.0)
            redis.stop()
            await asyncio.sleep(0.5)
            assert not waiting.done(), "the wait for the lease ended while Redis was down"

            redis.start()  # back, and empty: the lease is free
            await asyncio.wait_for(waiting, 5)
            assert await b.holder() == b.token
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
