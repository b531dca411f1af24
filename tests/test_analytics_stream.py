"""The analytics service end to end: samples stream in, ONSET comes out on the violations stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from analytics.service import Analytics
from bus.clock import ScaledClock
from bus.contracts import TargetKind, Violation, ViolationStatus
from bus.keys import Keys
from bus.streams import StreamPublisher, read_all
from mano_core.inventory import Inventory
from tests.analytics_support import CPU, cpu_high, vnf, vnfc, vnfc_batch


async def test_samples_on_the_stream_raise_an_onset_on_the_violations_stream(
    redis: Any, keys: Keys
) -> None:
    clock = ScaledClock(speed=100)
    inventory = Inventory(redis, keys)
    fw = vnf("fw-1", [vnfc("c1", created_at=clock.now()), vnfc("c2", created_at=clock.now())])
    await inventory.save(fw)
    samples = StreamPublisher(redis, keys.stream("samples"))
    stage = Analytics(
        redis,
        keys,
        inventory,
        clock,
        [cpu_high(for_s=5.0)],
        eval_interval_s=1.0,
        read_block_ms=20,
    )
    stop = asyncio.Event()

    async def collector() -> None:
        # A collector scraping every clock second, both VNFCs hot.
        while not stop.is_set():
            await samples.publish(vnfc_batch(fw, CPU, {"c1": 88.0, "c2": 92.0}, clock.now()))
            await clock.sleep(1.0)

    async def first_violation() -> Violation:
        while True:
            found = [m for _, m in await read_all(redis, keys.stream("violations"))]
            violations = [m for m in found if isinstance(m, Violation)]
            if violations:
                return violations[0]
            await asyncio.sleep(0.02)

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(stage.run(stop))
        tasks.create_task(collector())
        try:
            onset = await asyncio.wait_for(first_violation(), timeout=5.0)
            # Twenty more evaluations with the VNF still hot: nothing more is sent.
            await clock.sleep(20.0)
        finally:
            stop.set()

    assert onset.status is ViolationStatus.ONSET
    assert (onset.target.kind, onset.target.id) == (TargetKind.VNF, "fw-1")
    assert onset.evidence.value == 90.0
    assert onset.evidence.window_s >= 5.0
    assert stage.samples_ingested >= 2
    stream = await read_all(redis, keys.stream("violations"))
    assert [(m.id, m.status) for _, m in stream if isinstance(m, Violation)] == [
        (onset.id, ViolationStatus.ONSET)
    ]


async def eventually(check: Callable[[], Awaitable[object]], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


async def test_a_full_redis_delays_the_onset_but_never_stops_the_stage(
    redis: Any, keys: Keys
) -> None:
    clock = ScaledClock(speed=100)
    inventory = Inventory(redis, keys)
    fw = vnf("fw-1", [vnfc("c1", created_at=clock.now())])
    await inventory.save(fw)
    stage = Analytics(
        redis,
        keys,
        inventory,
        clock,
        [cpu_high(for_s=0.0)],
        stale_after_s=10_000.0,
        read_block_ms=20,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(stage.run(stop))

    async def violations() -> list[Violation]:
        found = [m for _, m in await read_all(redis, keys.stream("violations"))]
        return [m for m in found if isinstance(m, Violation)]

    async def stage_is_reading() -> bool:
        return stage.intake.last_id is not None

    try:
        await eventually(stage_is_reading)
        # Redis refuses every write ("OOM command not allowed"), as a full
        # Redis does, while the VNF runs hot: the ONSET cannot be sent.
        await redis.config_set("maxmemory", "1")
        await stage.ingest(vnfc_batch(fw, CPU, {"c1": 95.0}, clock.now()))
        await asyncio.sleep(0.3)  # some thirty evaluations
        assert not running.done(), "the stage stopped"
        assert await violations() == []
    finally:
        await redis.config_set("maxmemory", "0")
    try:
        await eventually(violations)
    finally:
        stop.set()
        await running

    (onset,) = await violations()
    assert (onset.status, onset.target.id) == (ViolationStatus.ONSET, "fw-1")
