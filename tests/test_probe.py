"""``nfv-assure probe ROLE``: the liveness and readiness of the roles that serve no HTTP, from the
heartbeat each running role keeps in Redis."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from bus.keys import Keys
from tests.actuator_support import until
from tests.redis_server import free_port


async def probe(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "probe", *args,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_a_running_role_passes_its_probes_and_a_stopped_or_silent_one_fails(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "NFVA_REDIS_PREFIX": keys.prefix}
    code, said = await probe(env, "actuator")
    assert code == 1 and "actuator" in said and "not running" in said, said

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "run", "--role", "actuator",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    key = keys.heartbeat("actuator", socket.gethostname())
    try:
        await until(lambda: redis.exists(key), wall_s=60)
        code, said = await probe(env, "actuator")
        assert code == 0, said
        assert "actuator on" in said and "runs" in said
        assert (await probe(env, "actuator", "--ready"))[0] == 0
        code, said = await probe(env, "collector")
        assert code == 1, "only the actuator runs here"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert not await redis.exists(key), "a role that stops in order drops its heartbeat"
    assert (await probe(env, "actuator"))[0] == 1

    # A process whose loop got stuck leaves its last beat behind: too old is dead.
    await redis.set(key, repr(time.time() - 45))
    code, said = await probe(env, "actuator")
    assert code == 1 and re.search(r"last heartbeat was 4\d s ago", said), said


async def test_an_unreachable_redis_fails_readiness_but_not_liveness(keys: Keys) -> None:
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    code, said = await probe(env, "policy")
    assert code == 0 and "cannot tell" in said and "cannot reach Redis" in said, said
    code, said = await probe(env, "policy", "--ready")
    assert code == 1 and "not ready" in said and "cannot reach Redis" in said, said
