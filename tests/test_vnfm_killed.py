"""A VNFM process killed with SIGKILL mid-operation: the restarted platform recovers it."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from bus.clock import WallClock
from bus.keys import Keys
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import LcmOpOcc
from mano_core.vnfm import Vnfm
from mano_core.vnfm.instantiate import vnf_id_for
from tests.vnfm_process import RUNNER_TTL_S, site
from tests.vnfm_support import eventually


async def kill_while(redis_url: str, keys: Keys, mode: str, ready: Any) -> None:
    """Start the VNFM process, wait until ``ready()`` holds, then SIGKILL it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.vnfm_process", redis_url, keys.prefix, mode,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await eventually(ready, timeout_s=30)
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL


async def test_killed_while_processing_it_becomes_failed_temp_and_a_retry_completes(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    ops = OpOccStore(redis, keys, WallClock(), runner_ttl_s=RUNNER_TTL_S)
    vnf_id = vnf_id_for("killed-op")
    vim = site(redis, keys)

    async def booting() -> bool:
        op = await ops.find(vnf_id, "killed-op")
        servers = await vim.servers()
        return op is not None and op.state == "PROCESSING" and len(servers) == 2

    await kill_while(redis_url, keys, "boot", booting)
    left = await ops.get(vnf_id, "killed-op")
    assert left.state == "PROCESSING", "SIGKILL leaves no chance to say anything"

    async def recovered() -> list[LcmOpOcc]:
        return await ops.recover()  # the restarted platform, once the dead runner's lease expired

    [op] = await eventually(recovered, timeout_s=10)
    assert op.state == "FAILED_TEMP"
    vnfm = Vnfm(vim, Inventory(redis, keys), Catalogue(redis, keys), ops, WallClock(), poll_s=0.1)
    done = await vnfm.retry("killed-op")
    assert done.state == "COMPLETED", done.error
    vnf = await vnfm.inventory.get(vnf_id)
    # The two servers the dead process created were found again, not made twice.
    assert {s.id for s in await vim.servers()} == {c.server_id for c in vnf.vnfcs}
    assert len(vnf.vnfcs) == 2
    await vnfm.aclose()


async def test_killed_while_starting_it_becomes_rolled_back(
    redis: Any, redis_url: str, keys: Keys
) -> None:
    ops = OpOccStore(redis, keys, WallClock(), runner_ttl_s=RUNNER_TTL_S)
    vnf_id = vnf_id_for("killed-op")

    async def waiting_for_its_grant() -> bool:
        op = await ops.find(vnf_id, "killed-op")
        return op is not None and op.state == "STARTING" and await ops.is_running(op)

    await kill_while(redis_url, keys, "grant", waiting_for_its_grant)

    async def recovered() -> list[LcmOpOcc]:
        return await ops.recover()

    [op] = await eventually(recovered, timeout_s=10)
    assert op.state == "ROLLED_BACK"
    assert await site(redis, keys).servers() == []
