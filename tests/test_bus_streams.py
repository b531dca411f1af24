"""Consumer groups on a real Redis: nothing is lost when a worker dies."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from bus.contracts import Message, Sample, SampleBatch
from bus.keys import Keys
from bus.streams import ConsumerSettings, StreamConsumer, StreamPublisher, read_all

FAST = ConsumerSettings(batch=10, block_ms=50, claim_idle_ms=100, max_deliveries=3)
ONE_AT_A_TIME = dataclasses.replace(FAST, batch=1, claim_idle_ms=200)


def batch(n: int) -> SampleBatch:
    return SampleBatch(
        source="test",
        collected_at=float(n),
        samples=[Sample(kpi="k", labels={"n": str(n)}, ts=float(n), value=float(n))],
    )


def number(message: Message) -> int:
    assert isinstance(message, SampleBatch)
    return int(message.collected_at)


async def test_entries_held_by_a_dead_worker_are_reclaimed_by_another(
    redis: Any, keys: Keys
) -> None:
    stream = keys.stream("samples")
    publisher = StreamPublisher(redis, stream)
    await publisher.publish_many([batch(i) for i in range(20)])

    # Worker A reads a batch of entries and dies before acknowledging them:
    # its handler never returns, as when the process is killed mid-way.
    crashed = asyncio.Event()

    async def dies(message: Message) -> None:
        crashed.set()
        await asyncio.Event().wait()

    worker_a = StreamConsumer(redis, stream, "g", "worker-a", dies, settings=FAST)
    await worker_a.ensure_group()
    task_a = asyncio.create_task(worker_a.run_once())
    await asyncio.wait_for(crashed.wait(), 5)
    task_a.cancel()
    pending = await redis.xpending(stream, "g")
    assert pending["pending"] == 10, "worker A held its batch unacknowledged"

    seen: list[int] = []

    async def handles(message: Message) -> None:
        seen.append(number(message))

    worker_b = StreamConsumer(redis, stream, "g", "worker-b", handles, settings=FAST)
    deadline = asyncio.get_running_loop().time() + 5
    while len(seen) < 20 and asyncio.get_running_loop().time() < deadline:
        await worker_b.run_once()
        await asyncio.sleep(0.02)

    assert sorted(seen) == list(range(20)), "every entry handled, the dead worker's too"
    assert (await redis.xpending(stream, "g"))["pending"] == 0


async def test_two_workers_share_the_work_without_handling_an_entry_twice(
    redis: Any, keys: Keys
) -> None:
    stream = keys.stream("samples")
    await StreamPublisher(redis, stream).publish_many([batch(i) for i in range(200)])
    handled: dict[str, list[int]] = {"a": [], "b": []}

    def handler(name: str) -> Any:
        async def handle(message: Message) -> None:
            handled[name].append(number(message))
            await asyncio.sleep(0)

        return handle

    workers = [
        StreamConsumer(redis, stream, "g", f"w-{n}", handler(n), settings=FAST) for n in "ab"
    ]
    await workers[0].ensure_group()
    for _ in range(30):
        await asyncio.gather(*(w.run_once() for w in workers))
        if len(handled["a"]) + len(handled["b"]) == 200:
            break
    everything = handled["a"] + handled["b"]
    assert sorted(everything) == list(range(200))
    assert handled["a"] and handled["b"], "both workers took a share"


async def test_a_failing_handler_is_retried_then_dead_lettered(redis: Any, keys: Keys) -> None:
    stream = keys.stream("decisions")
    await StreamPublisher(redis, stream).publish(batch(7))
    attempts = 0

    async def always_fails(message: Message) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("downstream unavailable")

    worker = StreamConsumer(redis, stream, "g", "w", always_fails, settings=FAST)
    await worker.ensure_group()
    for _ in range(40):
        await worker.run_once()
        await asyncio.sleep(0.03)
        if worker.dead_lettered:
            break
    assert attempts == FAST.max_deliveries
    assert worker.dead_lettered == 1
    dead = await redis.xrange(worker.dead_letter_key)
    assert len(dead) == 1
    assert b"failed 3 times" in dead[0][1][b"error"]
    assert (await redis.xpending(stream, "g"))["pending"] == 0


async def test_an_entry_whose_handler_runs_long_is_not_taken_over_by_another_worker(
    redis: Any, keys: Keys
) -> None:
    stream = keys.stream("decisions")
    await StreamPublisher(redis, stream).publish(batch(1))
    delivered_to: list[str] = []
    owner_when_done: list[tuple[bytes, int]] = []
    started = asyncio.Event()

    async def runs_long(message: Message) -> None:
        delivered_to.append("a")
        started.set()
        await asyncio.sleep(1.0)  # wall time: five times claim_idle_ms
        [entry] = await redis.xpending_range(stream, "g", min="-", max="+", count=1)
        owner_when_done.append((entry["consumer"], entry["times_delivered"]))

    async def takes_over(message: Message) -> None:
        delivered_to.append("b")

    worker_a = StreamConsumer(redis, stream, "g", "a", runs_long, settings=ONE_AT_A_TIME)
    worker_b = StreamConsumer(redis, stream, "g", "b", takes_over, settings=ONE_AT_A_TIME)
    await worker_a.ensure_group()
    stop = asyncio.Event()
    task_a = asyncio.create_task(worker_a.run(stop))
    await asyncio.wait_for(started.wait(), 5)
    stop.set()  # A finishes the entry it is handling, kept alive to the end, then stops.
    while not task_a.done():
        await worker_b.run_once()
        await asyncio.sleep(0.02)
    await task_a

    assert delivered_to == ["a"], "the entry was taken over while its handler ran"
    assert owner_when_done == [(b"a", 1)], "still A's, and re-claiming counted no delivery"
    assert (worker_a.handled, worker_b.handled) == (1, 0)
    assert (await redis.xpending(stream, "g"))["pending"] == 0


async def test_an_entry_whose_handler_failed_is_taken_over_though_its_worker_lives_on(
    redis: Any, keys: Keys
) -> None:
    stream = keys.stream("decisions")
    await StreamPublisher(redis, stream).publish(batch(1))
    seen: list[int] = []

    async def fails(message: Message) -> None:
        raise RuntimeError("downstream unavailable")

    async def handles(message: Message) -> None:
        seen.append(number(message))

    worker_a = StreamConsumer(redis, stream, "g", "a", fails, settings=ONE_AT_A_TIME)
    worker_b = StreamConsumer(redis, stream, "g", "b", handles, settings=ONE_AT_A_TIME)
    await worker_a.ensure_group()
    loop = asyncio.get_running_loop()
    async with worker_a.keepalive():
        await worker_a.run_once()
        assert worker_a.failed == 1
        failed_at = loop.time()
        while not seen and loop.time() < failed_at + 5:
            await worker_b.run_once()
            await asyncio.sleep(0.02)
        taken_after_s = loop.time() - failed_at

    assert seen == [1], "the failed entry was kept alive instead of retried"
    assert taken_after_s >= ONE_AT_A_TIME.claim_idle_ms / 1000 * 0.9
    assert worker_b.handled == 1
    assert (await redis.xpending(stream, "g"))["pending"] == 0


async def test_garbage_entries_go_to_dead_letters_and_do_not_block_the_group(
    redis: Any, keys: Keys
) -> None:
    stream = keys.stream("samples")
    await redis.xadd(stream, {b"m": b"\xc1 not msgpack"})
    await redis.xadd(stream, {b"other": b"field"})
    await StreamPublisher(redis, stream).publish(batch(1))
    seen: list[int] = []

    async def handle(message: Message) -> None:
        seen.append(number(message))

    worker = StreamConsumer(redis, stream, "g", "w", handle, settings=FAST)
    await worker.ensure_group()
    await worker.run_once()
    assert seen == [1]
    assert worker.dead_lettered == 2
    assert len(await read_all(redis, stream)) == 1


async def test_streams_are_trimmed_to_their_bound(redis: Any, keys: Keys) -> None:
    stream = keys.stream("samples")
    publisher = StreamPublisher(redis, stream, maxlen=100)
    for start in range(0, 2000, 100):
        await publisher.publish_many([batch(i) for i in range(start, start + 100)])
    length = await redis.xlen(stream)
    # Approximate trimming removes whole macro-nodes, so allow one node's slack.
    assert 100 <= length <= 300


async def test_a_worker_rides_out_a_redis_restart_that_loses_its_group(keys: Keys) -> None:
    from bus.redis import connect
    from tests.redis_server import RedisServer

    server = RedisServer()
    client = connect(server.url, retry_on_timeout=False)
    seen: list[int] = []

    async def handle(message: Message) -> None:
        seen.append(number(message))

    stream = keys.stream("violations")
    publisher = StreamPublisher(client, stream)
    worker = StreamConsumer(client, stream, "g", "w", handle, settings=FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await publisher.publish(batch(1))
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
        assert seen == [1]

        # Redis goes away, and comes back empty (no persistence): the stream
        # and the group are gone. The worker must neither die nor stop.
        port = server.port
        server.stop()
        await asyncio.sleep(0.5)
        assert not task.done(), "the worker survives Redis being unreachable"
        server = RedisServer(port=port)
        for _ in range(200):
            try:
                await publisher.publish(batch(2))
                break
            except Exception:
                await asyncio.sleep(0.05)
        for _ in range(200):
            if 2 in seen:
                break
            await asyncio.sleep(0.05)
        assert seen == [1, 2], "the group was created again and work goes on"
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.aclose()
        server.stop()


async def consumers(redis: Any, stream: str, group: str) -> dict[str, int]:
    """The group's consumers and how many entries each holds."""
    infos = await redis.xinfo_consumers(stream, group)
    return {info["name"].decode(): int(info["pending"]) for info in infos}


async def test_a_worker_that_stops_cleanly_leaves_its_group(redis: Any, keys: Keys) -> None:
    stream = keys.stream("samples")
    await StreamPublisher(redis, stream).publish(batch(1))
    handled = asyncio.Event()

    async def handles(message: Message) -> None:
        handled.set()

    worker = StreamConsumer(redis, stream, "g", "leaves", handles, settings=FAST)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(handled.wait(), 5)
    await asyncio.sleep(0.1)
    assert "leaves" in await consumers(redis, stream, "g")
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await consumers(redis, stream, "g") == {}


async def test_killed_workers_are_forgotten_once_silent_unless_they_hold_entries(
    redis: Any, keys: Keys
) -> None:
    stream = keys.stream("samples")
    await StreamPublisher(redis, stream).publish_many([batch(1), batch(2)])
    await redis.xgroup_create(stream, "g", id="0")
    # Two workers that were killed: one had acknowledged its entry, the other not.
    [[_, [(done_id, _)]]] = await redis.xreadgroup("g", "ghost-done", {stream: ">"}, count=1)
    await redis.xack(stream, "g", done_id)
    await redis.xreadgroup("g", "ghost-holding", {stream: ">"}, count=1)

    async def handles(message: Message) -> None:
        pass

    # Slow to take entries over (so the holding ghost keeps its entry here),
    # quick to forget the silent.
    settings = dataclasses.replace(FAST, claim_idle_ms=60_000, forget_idle_ms=300)
    live = StreamConsumer(redis, stream, "g", "live", handles, settings=settings)
    assert await live.forget_departed() == [], "forgot consumers that were not yet silent"
    await asyncio.sleep(0.35)
    assert await live.forget_departed() == ["ghost-done"]
    assert await consumers(redis, stream, "g") == {"ghost-holding": 1}


async def test_forgetting_on_a_stream_or_group_that_is_gone_finds_nobody(
    redis: Any, keys: Keys
) -> None:
    # As after Redis restarted empty: no stream at all, then a stream without the group.
    async def handles(message: Message) -> None:
        pass

    stream = keys.stream("samples")
    worker = StreamConsumer(redis, stream, "g", "w", handles, settings=FAST)
    assert await worker.forget_departed() == []
    await StreamPublisher(redis, stream).publish(batch(1))
    assert await worker.forget_departed() == []


async def test_a_live_worker_forgets_the_departed_on_its_own(redis: Any, keys: Keys) -> None:
    stream = keys.stream("samples")
    await StreamPublisher(redis, stream).publish(batch(1))
    await redis.xgroup_create(stream, "g", id="0")
    [[_, [(entry_id, _)]]] = await redis.xreadgroup("g", "ghost", {stream: ">"}, count=1)
    await redis.xack(stream, "g", entry_id)

    async def handles(message: Message) -> None:
        pass

    settings = dataclasses.replace(FAST, claim_idle_ms=300, forget_idle_ms=200)
    live = StreamConsumer(redis, stream, "g", "live", handles, settings=settings)
    stop = asyncio.Event()
    task = asyncio.create_task(live.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while "ghost" in await consumers(redis, stream, "g"):
            assert asyncio.get_running_loop().time() < deadline, "the ghost was never forgotten"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def test_passing_redis_conditions_are_told_from_real_errors() -> None:
    from redis.exceptions import (
        ConnectionError as RedisConnectionError,
    )
    from redis.exceptions import (
        OutOfMemoryError,
        ReadOnlyError,
        ResponseError,
    )

    from bus.redis import is_transient

    assert is_transient(RedisConnectionError("Connection refused"))
    assert is_transient(OutOfMemoryError("command not allowed when used memory > 'maxmemory'"))
    assert is_transient(ReadOnlyError("You can't write against a read only replica."))
    assert is_transient(ResponseError("LOADING Redis is loading the dataset in memory"))
    assert not is_transient(ResponseError("WRONGTYPE Operation against a key"))
    assert not is_transient(ValueError("not redis at all"))
