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
from mano_core.vnfm.instantiate import vnf_id_for

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


@contextlib.asynccontextmanager
async def serving(platform: Platform, vnf_id: str) -> AsyncIterator[None]:
    """The VNF's users and exporters, in the background from now on: the exporter of each
    VNFC serves from the moment its server is ACTIVE, as a real VNFC's would, so none is
    silent for longer than a tick before the test crashes one."""
    vnf = await platform.inventory.get(vnf_id)
    workload = Workload(platform.sims[vnf.vim], platform.inventory, vnf_id, seed=1,
                        offered_rps=300.0)  # fmt: skip

    async def tick() -> None:
        while True:
            await workload.tick(platform.clock.now())
            await asyncio.sleep(0.2)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await workload.aclose()


async def crash_and_wait_for_the_heal(
    platform: Platform,
    env: dict[str, str],
    processes: list[asyncio.subprocess.Process],
    vnf: VnfInstance,
) -> None:
    """Once the VNF's exporters (served by :func:`serving`) have been scraped, crash one of
    its servers from the command line, and wait for the split roles to heal it
    automatically."""
    sim = platform.sims[vnf.vim]
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

    loop = asyncio.get_running_loop()
    start = loop.time()
    crashed = False
    result = None
    while result is None:
        assert loop.time() - start < 90, "no heal within 90 s"
        for process in processes:
            assert process.returncode is None, "a role process stopped"
        if not crashed and loop.time() - start > 6:  # the exporters have been scraped
            await cli(env, "sim", "fault", "crash-server", victim.server_id)
            assert (await sim.get_server(victim.server_id)).status is ServerStatus.ERROR
            crashed = True
        result = await heal_result()
        await asyncio.sleep(0.5)
    assert result.target.id == victim.id
    healed = await sim.get_server(victim.server_id)
    assert healed.status is ServerStatus.ACTIVE, "the crashed server runs again"
    heals = [o for o in await platform.ops.list(vnf.id) if o.operation == "HEAL"]
    assert heals and all(o.is_automatic for o in heals)
    assert heals[0].state is OpState.COMPLETED


async def member_vnf(platform: Platform, ns_ref: str, member: str) -> str:
    """The id of NS ``ns_ref``'s VNF ``member``, as soon as its VNFM has recorded the VNF
    (before its servers are ACTIVE): placement names the member's operation, and the VNF's
    id follows from that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        ns = await platform.nslcm.get(ns_ref)
        op_id = next((v.op_id for v in ns.vnfs if v.member == member), None)
        vnf_id = None if op_id is None else vnf_id_for(op_id)
        if vnf_id is not None and await platform.inventory.find(vnf_id) is not None:
            return vnf_id
        assert loop.time() < deadline, f"no {member} VNF recorded in 60 s"
        await asyncio.sleep(0.05)


async def test_split_roles_heal_a_server_crashed_from_the_command_line(
    redis: Any, redis_url: str, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    async with split_platform(redis_url, keys, settings, tmp_path) as (platform, env, processes):
        await platform.onboard_dir(platform.settings.policy.vnfd_dir)
        vnf, op = await platform.vnfm.instantiate("vfw", "vfw-1")
        assert op.state is OpState.COMPLETED, op.error
        async with serving(platform, vnf.id):
            await crash_and_wait_for_the_heal(platform, env, processes, vnf)


async def test_split_roles_assure_an_ns_created_from_the_command_line(
    redis: Any, redis_url: str, keys: Keys, settings: Settings, tmp_path: Path
) -> None:
    async with split_platform(redis_url, keys, settings, tmp_path) as (platform, env, processes):
        vnfds = DEFAULTS_DIR / "vnfds"
        await cli(env, "vnfd", "onboard", str(vnfds / "vfw.yaml"), str(vnfds / "vlb.yaml"))
        await cli(env, "nsd", "onboard", str(DEFAULTS_DIR / "nsds" / "edge.yaml"))
        await cli(env, "ns", "create", "edge", "shop")
        # The firewall's exporters serve as soon as its servers are ACTIVE, while the rest
        # of the NS (the balancer, which depends on it) is instantiated.
        instantiating = asyncio.create_task(cli(env, "ns", "instantiate", "shop", "--json"))
        fw_id = await member_vnf(platform, "shop", "fw")
        async with serving(platform, fw_id):
            done = json.loads(await instantiating)
            assert done["operation"]["state"] == "COMPLETED", done
            ns = await platform.nslcm.get("shop")
            fw = next(v for v in ns.vnfs if v.member == "fw")
            assert fw.vnf_id == fw_id
            vnf = await platform.inventory.get(fw_id)
            assert vnf.ns_id == ns.id
            await crash_and_wait_for_the_heal(platform, env, processes, vnf)

        # The loop healed the member in place: the NS is as the NFVO left it.
        after = await platform.nslcm.get("shop")
        assert after.state is NsState.INSTANTIATED and after.vnfs == ns.vnfs
        assert [(o.operation, o.state) for o in after.operations] == [
            ("INSTANTIATE", NsOpState.COMPLETED)
        ]
