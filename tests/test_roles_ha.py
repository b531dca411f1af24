"""Active/standby roles: two replicas never both collect or analyse; a standby takes over."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from bus.contracts import Sample, SampleBatch
from bus.keys import Keys
from bus.streams import StreamPublisher


async def start(redis_url: str, keys: Keys, *roles: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "NFVA_REDIS_PREFIX": keys.prefix,
        "NFVA_HA_LEADER_TTL": "1s",
    }
    args = [a for role in roles for a in ("--role", role)]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "run", *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def leader(redis: Any, keys: Keys, role: str) -> str | None:
    token = await redis.get(keys.role_leader(role))
    return token.decode() if token else None


async def readers(redis: Any, keys: Keys) -> set[str]:
    """Names of the consumers that have read the samples stream for analytics."""
    if not await redis.exists(keys.stream("samples")):
        return set()
    groups = {g["name"].decode() for g in await redis.xinfo_groups(keys.stream("samples"))}
    if "analytics" not in groups:
        return set()
    consumers = await redis.xinfo_consumers(keys.stream("samples"), "analytics")
    return {c["name"].decode() for c in consumers}


async def eventually(check: Any, seconds: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def feed(redis: Any, keys: Keys) -> None:
    """Samples keep arriving, as from a collector (a consumer shows once it has read)."""
    publisher = StreamPublisher(redis, keys.stream("samples"))
    n = 0
    while True:
        n += 1
        sample = Sample("vnf_cpu_utilisation", {"vnf": "v", "vnfc": "c"}, float(n), 50.0)
        await publisher.publish(SampleBatch("scrape", float(n), [sample]))
        await asyncio.sleep(0.05)


async def test_one_replica_analyses_and_a_standby_takes_over_when_it_dies(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    first = await start(redis_url, keys, "analytics")
    second: asyncio.subprocess.Process | None = None
    feeder = asyncio.create_task(feed(redis, keys))
    try:
        token = await eventually(lambda: leader(redis, keys, "analytics"))
        assert f"-{first.pid}-" in token
        await eventually(lambda: readers(redis, keys))

        second = await start(redis_url, keys, "analytics")
        await asyncio.sleep(2.0)  # two TTLs: time enough to (wrongly) start
        assert all(f"-{second.pid}-" not in name for name in await readers(redis, keys)), (
            "the standby must not read samples while the active worker lives"
        )
        assert f"-{first.pid}-" in (await leader(redis, keys, "analytics") or "")

        first.kill()  # dies without releasing anything
        await first.wait()

        async def taken_over() -> bool:
            token = await leader(redis, keys, "analytics")
            names = await readers(redis, keys)
            return bool(token and f"-{second.pid}-" in token) and any(
                f"-{second.pid}-" in name for name in names
            )

        await eventually(taken_over, seconds=10)
    finally:
        feeder.cancel()
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 30)
    assert second is not None and second.returncode == 0
