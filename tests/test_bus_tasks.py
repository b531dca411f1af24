"""Workers stop when told to, even when a library swallowed the cancellation.

Python 3.11's ``asyncio.wait_for`` (which redis-py uses for every socket
write) drops a cancellation that arrives in the step its inner call ends.
``loses_one_cancellation`` below does exactly what it does then: it catches
the CancelledError and returns normally, leaving the task's cancel request
counted but unhandled.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bus.clock import ScaledClock
from bus.contracts import Message, Sample, SampleBatch
from bus.keys import Keys
from bus.lease import Lease
from bus.streams import ConsumerSettings, StreamConsumer, StreamPublisher
from bus.tasks import cancel_and_wait, raise_if_cancelled, wait_for_stop


async def loses_one_cancellation(started: asyncio.Event | None = None) -> None:
    """Wait; when cancelled, return as if the wait had ended (the 3.11 race)."""
    if started is not None:
        started.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        return


async def test_a_loop_ends_one_round_after_its_cancellation_was_swallowed() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            raise_if_cancelled()
            rounds += 1
            await loses_one_cancellation()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.cancelled(), "the loop ran on after it was cancelled"
    assert rounds == 1


async def test_cancel_and_wait_cancels_again_a_task_that_swallowed_the_first() -> None:
    async def stubborn() -> None:
        await loses_one_cancellation()
        await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(cancel_and_wait([task], recancel_s=0.05), 2)
    assert task.cancelled()


async def test_wait_for_stop_returns_at_the_event_or_the_timeout() -> None:
    stop = asyncio.Event()
    assert await wait_for_stop(stop, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, stop.set)
    assert await wait_for_stop(stop, 5) is True


async def test_a_consumer_stops_though_its_handler_swallowed_the_cancellation(
    redis: Any, keys: Keys
) -> None:
    stream = keys.stream("samples")
    sample = Sample(kpi="k", labels={}, ts=0.0, value=1.0)
    await StreamPublisher(redis, stream).publish(
        SampleBatch(source="t", collected_at=0.0, samples=[sample])
    )
    handling = asyncio.Event()

    async def handler(message: Message) -> None:
        await loses_one_cancellation(handling)

    settings = ConsumerSettings(batch=1, block_ms=20, claim_idle_ms=3000)
    consumer = StreamConsumer(redis, stream, "g", "c", handler, settings=settings)
    worker = asyncio.create_task(consumer.run(asyncio.Event()))
    await asyncio.wait_for(handling.wait(), 5)
    worker.cancel()
    await asyncio.wait([worker], timeout=5)
    assert worker.done(), "the consumer kept serving after it was cancelled"


async def test_a_lease_is_released_though_its_renewer_swallowed_a_cancellation(
    redis: Any, keys: Keys
) -> None:
    clock = ScaledClock(speed=100)

    class SwallowingRenewals(Lease):
        async def renew(self) -> bool:
            await loses_one_cancellation()
            return True

    lease = SwallowingRenewals(redis, keys.vnf_lease("v"), clock, ttl_s=30.0, holder="w")
    await lease.acquire()
    # The work ends while the renewer sits in a renewal that loses its cancellation.

    async def work() -> str:
        await clock.sleep(20.0)
        return "done"

    assert await asyncio.wait_for(lease.hold(work), 5) == "done"
    assert await lease.holder() is None, "the lease was not released"
