"""``nfv-assure run`` with its roles in separate processes heals a server crashed by hand.

Three real processes (collector+analytics, policy, actuator) share nothing
but Redis, the simulated cloud included. These tests play the VNF's users
and its exporters (the workload), instantiate the firewall on the shared
cloud (on its own, or as a member of a network service created and
instantiated with ``nfv-assure ns`` commands, each a process of its own),
crash one of its servers with ``nfv-assure sim fault crash-server`` (another
process), and wait for the actuator's process to heal it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from assure.platform import Platform
from assure.settings import DEFAULTS_DIR, Settings
from assure.simulation.workload import Workload
from bus.clock import WallClock
from bus.contracts import Action, OpResult, OpState
from bus.keys import Keys
from bus.streams import read_all
from mano_core.models import VnfInstance
from mano_core.nfvo.records import NsOpState, NsState
from mano_core.vim.base import ServerStatus

FAST = {
    "NFVA_VIM_BOOT": "1s",
    "NFVA_VIM_REBOOT": "1s",
    "NFVA_COLLECTOR_SCRAPE_INTERVAL": "1s",
    "NFVA_COLLECTOR_VIM_INTERVAL": "1s",
    "NFVA_ANALYTICS_EVAL_INTERVAL": "500ms",
}


def heal_only(directory: Path) -> Path:
    """The shipped heal policy, with its durations cut for a test."""
    text = (DEFAULTS_DIR / "policies" / "vfw-heal.yaml").read_text(encoding="utf-8")
    text = text.replace("for: 15s", "for: 2s").replace("verify: 1m", "verify: 10s")
    (directory / "vfw-heal.yaml").write_text(text, encoding="utf-8")
    return directory


async def run_roles(env: dict[str, str], *roles: str) -> asyncio.subprocess.Process:
    flags = [a for role in roles for a in ("--role", role)]
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", "run", *flags,
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


async def cli(env: dict[str, str], *args: str) -> str:
    """Run ``nfv-assure ARGS`` in a process of its own; its stdout (it must exit 0)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assure", *args,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, (args, out.decode(), err.decode())
    return out.decode()


@contextlib.asynccontextmanager
async def split_platform(
    redis_url: str, keys: Keys, settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[Platform, dict[str, str], list[asyncio.subprocess.Process]]]:
    """The three role processes, and this process's view of the platform (and its env)."""
    policies = heal_only(tmp_path)
    env = {
        **os.environ,
        **FAST,
        "REDIS_URL": redis_url,
        "NFVA_REDIS_PREFIX": keys.prefix,
        "NFVA_POLICY_POLICY_DIR": str(policies),
    }
    settings = dataclasses.replace(
        settings,
        vim=dataclasses.replace(settings.vim, boot=1.0, reboot=1.0),
        policy=dataclasses.replace(settings.policy, policy_dir=policies),
    )
    processes = [
        await run_roles(env, "collector", "analytics"),
        await run_roles(env, "policy"),
        await run_roles(env, "actuator"),
    ]
    platform = await Platform.open(settings, WallClock())
    try:
        yield platform, env, processes
    finally:
        await platform.aclose()
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            _, stderr = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0, stderr.decode()[-2000:]


async def crash_and_wait_for_the_heal(
    platform: Platform,
    env: dict[str, str],
    processes: list[asyncio.subprocess.Process],
    vnf: VnfInstance,
) -> None:
    """Serve the VNF's exporters, crash one of its servers from the command line once
    they have been scraped, and wait for the split roles to heal it automatically."""
    sim = platform.sims[vnf.vim]
    workload = Workload(sim, platform.inventory, vnf.id, seed=1, offered_rps=300.0)
    victim = vnf.vnfcs[0]

    async def heal_result() -> OpResult | None:
        for _, message in await read_all(platform.redis, platform.keys.stream("op_results")):
            if (
                isinstance(message, OpResult)
                and message.action is Action.HEAL
                and message.state is OpState.COMPLETED
            ):
                return message
        return None

    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        crashed = False
        result = None
        while result is None:
            assert loop.time() - start < 90, "no heal within 90 s"
            for process in processes:
                assert process.returncode is None, "a role process stopped"
            await workload.tick(platform.clock.now())
            if not crashed and loop.time() - start > 6:  # the exporters have been scraped
                await cli(env, "sim", "fault", "crash-server", victim.server_id)
                assert (await sim.get_server(victim.server_id)).status is ServerStatus.ERROR
                crashed = True
            result = await heal_result()
            await asyncio.sleep(0.5)
    finally:
        await workload.aclose()
    assert result.target.id == victim.id
    healed = await sim.get_server(victim.server_id)
    assert healed.status is ServerStatus.ACTIVE, "the crashed server runs again"
    heals = [o for o in await platform.ops.list(vnf.id) if o.operation == "HEAL"]
    assert heals and all(o.is_automatic for o in heals)
    assert heals[0].state is OpState.COMPLETED


async def test_split_roles_heal_a_server_crashed_from_the_command_line(
    redis: Any, redis_url: str, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    async with split_platform(redis_url, keys, settings, tmp_path) as (platform, env, processes):
        await platform.onboard_dir(platform.settings.policy.vnfd_dir)
        vnf, op = await platform.vnfm.instantiate("vfw", "vfw-1")
        assert op.state is OpState.COMPLETED, op.error
        await crash_and_wait_for_the_heal(platform, env, processes, vnf)


async def test_split_roles_assure_an_ns_created_from_the_command_line(
    redis: Any, redis_url: str, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    async with split_platform(redis_url, keys, settings, tmp_path) as (platform, env, processes):
        vnfds = DEFAULTS_DIR / "vnfds"
        await cli(env, "vnfd", "onboard", str(vnfds / "vfw.yaml"), str(vnfds / "vlb.yaml"))
        await cli(env, "nsd", "onboard", str(DEFAULTS_DIR / "nsds" / "edge.yaml"))
        await cli(env, "ns", "create", "edge", "shop")
        done = json.loads(await cli(env, "ns", "instantiate", "shop", "--json"))
        assert done["operation"]["state"] == "COMPLETED", done
        ns = await platform.nslcm.get("shop")
        fw = next(v for v in ns.vnfs if v.member == "fw")
        assert fw.vnf_id is not None
        vnf = await platform.inventory.get(fw.vnf_id)
        assert vnf.ns_id == ns.id

        await crash_and_wait_for_the_heal(platform, env, processes, vnf)

        # The loop healed the member in place: the NS is as the NFVO left it.
        after = await platform.nslcm.get("shop")
        assert after.state is NsState.INSTANTIATED and after.vnfs == ns.vnfs
        assert [(o.operation, o.state) for o in after.operations] == [
            ("INSTANTIATE", NsOpState.COMPLETED)
        ]
