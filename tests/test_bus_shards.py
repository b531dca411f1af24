"""Sharded workers split the shards fairly, one owner at a time, and take over the dead's."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from typing import Any

from bus.clock import ScaledClock, WallClock
from bus.keys import Keys
from bus.shards import ShardOwner, shard_of
from tests.actuator_support import restartable_redis

N = 12
TTL_S = 1.0
"""Clock seconds; the tests run on the wall clock unless they say otherwise."""


class Worker:
    """A ShardOwner running in a task, recording what it was told."""

    def __init__(self, redis: Any, keys: Keys, name: str, **options: Any) -> None:
        self.told: list[frozenset[int]] = []
        self.owner = ShardOwner(
            redis,
            keys,
            options.pop("clock", WallClock()),
            group="g",
            n_shards=N,
            ttl_s=options.pop("ttl_s", TTL_S),
            worker=name,
            on_change=options.pop("on_change", self._record),
        )
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _record(self, owned: frozenset[int]) -> None:
        self.told.append(owned)

    def start(self) -> Worker:
        self.task = asyncio.create_task(self.owner.run(self.stop))
        return self

    async def halt(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)


@contextlib.asynccontextmanager
async def workers(redis: Any, keys: Keys, *names: str) -> AsyncIterator[list[Worker]]:
    started = [Worker(redis, keys, name).start() for name in names]
    try:
        yield started
    finally:
        for worker in started:
            await worker.halt()


async def eventually(check: Callable[[], bool], wall_s: float) -> None:
    """Wait until ``check()`` holds; fail the test if it does not within ``wall_s``."""
    deadline = asyncio.get_running_loop().time() + wall_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def balanced(owners: list[ShardOwner]) -> bool:
    sets = [o.owned for o in owners]
    together = frozenset().union(*sets)
    fair = -(-N // len(owners))
    disjoint = sum(len(s) for s in sets) == len(together)
    return disjoint and together == frozenset(range(N)) and all(len(s) <= fair for s in sets)


async def holders(redis: Any, keys: Keys) -> list[str | None]:
    raw = await redis.mget([keys.shard_lease("g", i) for i in range(N)])
    return [None if v is None else v.decode() for v in raw]


async def test_workers_split_every_shard_between_them_and_tell_each_its_own(
    redis: Any, keys: Keys
) -> None:
    async with workers(redis, keys, "a", "b", "c") as (a, b, c):
        await eventually(lambda: balanced([a.owner, b.owner, c.owner]), 5)
        for worker in (a, b, c):
            assert worker.told[-1] == worker.owner.owned  # on_change said what it owns
        stored = await holders(redis, keys)
        for i, holder in enumerate(stored):
            owner = next(w for w in (a, b, c) if i in w.owner.owned)
            assert holder == owner.owner.worker
        assert sorted(await a.owner.members()) == ["a", "b", "c"]


async def test_a_joining_worker_gets_its_share_and_no_shard_ever_has_two_owners(
    redis: Any, keys: Keys
) -> None:
    async with workers(redis, keys, "a", "b") as (a, b):
        await eventually(lambda: balanced([a.owner, b.owner]), 5)
        c = Worker(redis, keys, "c").start()
        try:
            deadline = asyncio.get_running_loop().time() + 5
            while not balanced([a.owner, b.owner, c.owner]):
                sets = [a.owner.owned, b.owner.owned, c.owner.owned]
                assert sum(map(len, sets)) == len(frozenset().union(*sets)), sets
                assert asyncio.get_running_loop().time() < deadline, "not rebalanced in time"
                await asyncio.sleep(0.005)
        finally:
            await c.halt()
        # c left cleanly: a and b share everything again.
        await eventually(lambda: balanced([a.owner, b.owner]), 5)


async def test_a_shard_given_up_stays_locked_until_its_worker_stopped_acting_on_it(
    redis: Any, keys: Keys
) -> None:
    giving_up = asyncio.Event()
    may_finish = asyncio.Event()

    async def slow_to_stop(owned: frozenset[int]) -> None:
        if len(owned) < N and a_owner.owned:  # a reduction, after a first full share
            giving_up.set()
            await may_finish.wait()

    a = Worker(redis, keys, "a", on_change=slow_to_stop)
    a_owner = a.owner
    a.start()
    try:
        await eventually(lambda: len(a.owner.owned) == N, 5)
        async with workers(redis, keys, "b") as (b,):
            await asyncio.wait_for(giving_up.wait(), 5)
            # a is still stopping: every lease is still a's, b has none.
            assert set(await holders(redis, keys)) == {"a"}
            assert not b.owner.owned
            may_finish.set()
            await eventually(lambda: balanced([a.owner, b.owner]), 5)
    finally:
        await a.halt()


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from bus.clock import WallClock
    from bus.keys import Keys
    from bus.redis import connect
    from bus.shards import ShardOwner

    async def main():
        redis = connect(sys.argv[1])
        async def said(owned):
            print(len(owned), flush=True)
        owner = ShardOwner(redis, Keys(prefix=sys.argv[2]), WallClock(), group="g",
                           n_shards=int(sys.argv[3]), ttl_s=float(sys.argv[4]),
                           worker="child", on_change=said)
        await owner.run(asyncio.Event())

    asyncio.run(main())
    """
)


async def test_the_shards_of_a_killed_worker_are_taken_over_within_the_ttl(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        redis_url,
        keys.prefix,
        str(N),
        str(TTL_S),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        first = await asyncio.wait_for(child.stdout.readline(), 10)
        assert first.strip() == str(N).encode()  # it holds all of them
        async with workers(redis, keys, "a") as (a,):
            await eventually(lambda: len(a.owner.owned) == N // 2, 5)
            child.send_signal(signal.SIGKILL)
            await asyncio.wait_for(child.wait(), 5)
            # Within the TTL the module promises, with room for a loaded machine.
            await eventually(lambda: len(a.owner.owned) == N, TTL_S * 3)
            assert set(await holders(redis, keys)) == {"a"}
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def test_a_worker_cut_off_from_redis_stops_acting_then_gets_its_shards_back(
    keys: Keys,
) -> None:
    clock = ScaledClock(speed=1.0)
    async with restartable_redis() as server:
        worker = Worker(server.client, keys, "a", clock=clock).start()
        try:
            await eventually(lambda: len(worker.owner.owned) == N, 5)
            server.stop()
            await eventually(lambda: worker.told[-1] == frozenset(), 5)
            assert not worker.owner.owned
            server.start()  # empty: nobody holds anything any more
            await eventually(lambda: len(worker.owner.owned) == N, 10)
        finally:
            await worker.halt()


def test_a_key_maps_to_the_same_shard_in_every_process() -> None:
    assert shard_of("vnf-1234", 64) == 2_312_063_115 % 64  # crc32, not Python's hash()
    assert {shard_of(f"t{i}", 8) for i in range(200)} == set(range(8))
