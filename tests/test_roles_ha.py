"""Analytics replicas share the work by shard: none stands by, a dead one's shards move on."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from bus.keys import Keys

SHARDS = 8


async def start(redis_url: str, keys: Keys, *roles: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "NFVA_REDIS_PREFIX": keys.prefix,
        "NFVA_ANALYTICS_SHARDS": str(SHARDS),
        "NFVA_ANALYTICS_SHARD_TTL": "1s",
    }
    args = [a for role in roles for a in ("--role", role)]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "run", *args,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def holders(redis: Any, keys: Keys) -> list[str | None]:
    """Who holds each analytics shard (None: nobody)."""
    out = []
    for shard in range(SHARDS):
        value = await redis.get(keys.shard_lease("analytics", shard))
        out.append(value.decode() if value else None)
    return out


async def eventually(check: Any, seconds: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_two_analytics_replicas_share_the_shards_and_one_takes_over_when_the_other_dies(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    first = await start(redis_url, keys, "analytics")
    second: asyncio.subprocess.Process | None = None
    try:
        await eventually(lambda: _all_held_by(redis, keys, {first.pid}))
        second = await start(redis_url, keys, "analytics")
        assert second is not None
        pids = {first.pid, second.pid}

        async def shared() -> bool:
            # Both work at once, half the shards each: nobody stands by.
            held = await holders(redis, keys)
            counts = [sum(f"-{pid}-" in (h or "") for h in held) for pid in pids]
            return all(h is not None for h in held) and counts == [SHARDS // 2] * 2

        await eventually(shared)

        first.kill()  # dies without releasing anything
        await first.wait()
        await eventually(lambda: _all_held_by(redis, keys, {second.pid}))
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 30)
    assert second is not None and second.returncode == 0


async def _all_held_by(redis: Any, keys: Keys, pids: set[int]) -> bool:
    held = await holders(redis, keys)
    return all(h is not None and any(f"-{pid}-" in h for pid in pids) for h in held)
