"""Sharded collectors: targets split among live processes, taken over after a SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bus.keys import Keys
from mano_core.inventory import Inventory
from tests.test_collector import vnf, vnfc
from tests.test_scrape import http_server

INTERVAL_S = 1.0
TTL_S = 2.0
TARGETS = 8


@contextlib.asynccontextmanager
async def collector_process(
    redis_url: str, keys: Keys
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.collector_process",
        redis_url, keys.prefix, str(INTERVAL_S), str(TTL_S),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), 30)
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


async def test_collectors_split_targets_and_take_over_a_killed_ones(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    scrapes: dict[str, list[float]] = defaultdict(list)

    def recorder(name: str) -> Any:
        async def handle(_request: web.Request) -> web.Response:
            scrapes[name].append(time.time())
            return web.Response(text="vnf_cpu_utilisation 1\n")

        return handle

    async with contextlib.AsyncExitStack() as stack:
        records = []
        for i in range(TARGETS):
            url = await stack.enter_async_context(
                http_server(f"127.77.8.{i + 1}", recorder(f"vnfc-{i}"))
            )
            records.append(vnfc(f"vnfc-{i}", f"s{i}", "host-a", url))
        await Inventory(redis, keys).save(vnf("vnf-1", records))
        first = await stack.enter_async_context(collector_process(redis_url, keys))
        second = await stack.enter_async_context(collector_process(redis_url, keys))

        async def everyone_scraped_since(since: float, times: int) -> None:
            deadline = time.time() + 30
            while time.time() < deadline:
                if all(
                    sum(t > since for t in scrapes[f"vnfc-{i}"]) >= times for i in range(TARGETS)
                ):
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"not every target scraped {times} times since {since}")

        await everyone_scraped_since(time.time() + TTL_S, 2)  # both own their share by then
        holders = {await redis.get(keys.shard_lease("collector", i)) for i in range(16)}
        assert len(holders - {None}) == 2, "both collectors hold shards: none stands by"
        first.send_signal(signal.SIGKILL)
        await first.wait()
        killed_at = time.time()
        # Within one TTL every target is scraped again (and then at every interval).
        await everyone_scraped_since(killed_at + TTL_S + INTERVAL_S, 2)
        assert second.returncode is None

    for name, times in scrapes.items():
        slots = [math.floor(t / INTERVAL_S) for t in times]
        assert len(slots) == len(set(slots)), f"{name} scraped twice in one interval: {times}"
        # Taken over within one TTL of the kill, then scraped on the next boundary
        # (half a second allowed for a loaded machine's scheduling).
        first_after = min(t for t in times if t > killed_at)
        assert first_after - killed_at <= TTL_S + INTERVAL_S + 0.5, f"{name}: {times}"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) <= TTL_S + 2 * INTERVAL_S + 0.5, f"{name} missed: {gaps}"
