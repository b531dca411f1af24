"""``nfv-assure run``: the stages as a long-running service, stopped by a signal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

from bus.keys import Keys


async def test_run_starts_every_stage_on_redis_and_stops_cleanly_on_sigterm(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "NFVA_REDIS_PREFIX": keys.prefix}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "run",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        groups: dict[str, set[str]] = {}
        analysing = 0
        # Generous: starting every stage imports the whole platform, slow on a busy machine.
        deadline = asyncio.get_running_loop().time() + 60
        while asyncio.get_running_loop().time() < deadline:
            for stream in ("violations", "decisions"):
                if await redis.exists(keys.stream(stream)):
                    info = await redis.xinfo_groups(keys.stream(stream))
                    groups[stream] = {g["name"].decode() for g in info}
            analysing = await redis.zcard(keys.shard_members("analytics"))
            if len(groups) == 2 and analysing:
                break
            await asyncio.sleep(0.05)
        assert groups == {
            "violations": {"policy"},
            "decisions": {"actuator"},
        }, "each stage joined its consumer group"
        assert analysing == 1, "the analytics worker joined the shard group"
        assert await redis.hexists(keys.catalogue("vnfd"), "vfw@1.0"), (
            "the shipped VNFD was onboarded"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]


async def test_the_api_role_runs_on_its_own_and_serves_its_probes(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    import aiohttp

    from tests.redis_server import free_port

    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "NFVA_REDIS_PREFIX": keys.prefix,
        "NFVA_API_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "run", "--role", "api",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        ready = None
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        ready = (response.status, await response.json())
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
        # The simulated VIMs live in Redis: a lone API process checks them too.
        checks = {"redis": "ok", "vim:site-a": "ok", "vim:site-b": "ok"}
        assert ready == (200, {"status": "ready", "checks": checks})
        assert await redis.hlen(keys.api_tokens()) == 1, "the first admin token was made"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert "admin token" in stderr.decode()
