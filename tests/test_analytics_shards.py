"""Sharded analytics workers: each VNF judged by one worker, taken over with its history.

Two workers share eight VNFs by shard over a real Redis. Every episode is
raised once (ONSET) and ended once (ABATED) whichever worker holds its VNF
when it happens, and a worker that takes a shard over rebuilds the VNFs'
windows from the samples stream instead of starting them empty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from analytics.service import Analytics
from bus.clock import ScaledClock
from bus.contracts import Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import StreamPublisher, read_all
from mano_core.inventory import Inventory
from tests.analytics_support import CPU, cpu_high, vnf, vnfc, vnfc_batch

SHARDS = 8
FLEET = [f"fw-{i}" for i in range(8)]


async def eventually(check: Callable[[], Awaitable[object]], seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


async def test_two_workers_raise_each_episode_once_and_a_takeover_keeps_history(
    redis: Any, keys: Keys
) -> None:
    clock = ScaledClock(speed=10)
    inventory = Inventory(redis, keys)
    fleet = [vnf(v, [vnfc(f"{v}-a", created_at=clock.now())]) for v in FLEET]
    for member in fleet:
        await inventory.save(member)
    busy = cpu_high(function="avg_over_time", range_s=30.0, for_s=0.0)
    samples = StreamPublisher(redis, keys.stream("samples"))

    def worker() -> Analytics:
        return Analytics(
            redis, keys, inventory, clock, [busy], eval_interval_s=1.0, stale_after_s=10.0,
            read_block_ms=20, shards=SHARDS, shard_ttl_s=10.0,
        )  # fmt: skip

    hot: set[str] = set()
    stop_feed = asyncio.Event()

    async def collector() -> None:
        while not stop_feed.is_set():
            now = clock.now()
            for member in fleet:
                value = 90.0 if member.id in hot else 50.0
                await samples.publish(vnfc_batch(member, CPU, {f"{member.id}-a": value}, now))
            await clock.sleep(1.0)

    async def events() -> list[Violation]:
        found = [m for _, m in await read_all(redis, keys.stream("violations"))]
        return [m for m in found if isinstance(m, Violation)]

    def by_status(found: list[Violation], status: ViolationStatus) -> list[str]:
        return sorted(v.target.id for v in found if v.status is status)

    a, b = worker(), worker()
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    feeding = asyncio.create_task(collector())
    running_a = asyncio.create_task(a.run(stop_a))
    running_b: asyncio.Task[None] | None = None
    try:
        assert a.ownership is not None and b.ownership is not None
        await eventually(lambda: _true(len(a.ready) == SHARDS))
        hot.update(FLEET[:4])
        await eventually(lambda: _onsets(events, 4))

        running_b = asyncio.create_task(b.run(stop_b))
        await eventually(lambda: _true(len(b.ready) == SHARDS // 2))
        taken_by_b = {v for v in FLEET if b.ownership.owns_vnf(v)}
        hot.update(FLEET[4:])
        await eventually(lambda: _onsets(events, 8))

        stop_a.set()  # the first worker leaves: the second takes all its shards
        await running_a
        table = b.engine.tables[CPU]

        def oldest() -> dict[str, float]:
            """Each VNF's oldest sample in the second worker's windows."""
            return {
                table.labels(int(r))["vnf"]: float(
                    table.ts[int(r)][table.ts[int(r)] > -1e300].min()
                )
                for r in table.live_rows()
            }

        # Taken over: all shards owned, and their windows rebuilt. (Waiting for
        # a count of takeovers to move raced with one still under way.)
        await eventually(lambda: _true(len(b.ready) == SHARDS))
        moved = set(FLEET) - taken_by_b
        # The windows of the VNFs taken over go back before the takeover.
        first_onset = min(v.at for v in await events())
        assert all(oldest()[v] <= first_onset for v in moved)

        hot.clear()
        await eventually(lambda: _abated(events, 8))
        await clock.sleep(5.0)  # more evaluations on both sides: nothing more is sent
    finally:
        stop_feed.set()
        stop_a.set()
        stop_b.set()
        await feeding
        await running_a
        if running_b is not None:
            await running_b

    found = await events()
    assert by_status(found, ViolationStatus.ONSET) == sorted(f"{v}" for v in FLEET)
    assert by_status(found, ViolationStatus.ABATED) == sorted(f"{v}" for v in FLEET)
    onset_ids = {v.target.id: v.id for v in found if v.status is ViolationStatus.ONSET}
    assert all(v.id == onset_ids[v.target.id] for v in found if v.status is ViolationStatus.ABATED)


async def _true(value: bool) -> bool:
    return value


async def _onsets(events: Callable[[], Awaitable[list[Violation]]], n: int) -> bool:
    return sum(v.status is ViolationStatus.ONSET for v in await events()) >= n


async def _abated(events: Callable[[], Awaitable[list[Violation]]], n: int) -> bool:
    return sum(v.status is ViolationStatus.ABATED for v in await events()) >= n
