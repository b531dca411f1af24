"""A compute host dies: its VNFC is recreated on another host, end to end.

The whole platform runs (collector scraping real HTTP exporters, analytics,
policy engine, actuator, over a real Redis) on the simulated VIM with the
shipped VNFD and policies, in accelerated time. When the host dies its
VNFC stops answering; the heal policy reboots it, which cannot work on a
dead host, nor can a rebuild: each fails, and the policy climbs the VNFD's
recovery ladder to a recreate, which places the VNFC on a live host.
"""

from __future__ import annotations

import asyncio
from typing import Any

from assure.platform import ROLES, Platform
from assure.settings import Settings
from assure.simulation.workload import Workload
from bus.clock import ScaledClock
from bus.contracts import Action, OpResult, OpState
from bus.keys import Keys
from bus.streams import read_all
from mano_core.inventory import Inventory
from mano_core.vim.base import ServerStatus
from policy.audit import AuditTrail

SPEED = 20.0
TRAFFIC_RPS = 400.0
"""Light enough that one VNFC carries it all: no scale-out muddles the picture."""


async def test_a_vnfc_on_a_host_that_died_is_recreated_on_a_live_host(
    redis: Any, keys: Keys, settings: Settings
) -> None:
    clock = ScaledClock(SPEED)
    platform = await Platform.open(settings, clock, seed=1)
    vim = platform.sims[platform.vims.default]
    stop = asyncio.Event()
    roles: asyncio.Task[None] | None = None
    workload: Workload | None = None
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        loaded = platform.load_policies(None)
        assert not loaded.problems
        vnf, op = await platform.vnfm.instantiate("vfw", "vfw-1")
        assert op.state is OpState.COMPLETED, op.error
        workload = Workload(vim, platform.inventory, vnf.id, seed=1, offered_rps=TRAFFIC_RPS)
        roles = asyncio.create_task(platform.run_roles(ROLES, stop, loaded))

        async def heal_result() -> OpResult | None:
            for _, message in await read_all(redis, keys.stream("op_results")):
                if isinstance(message, OpResult) and message.action is Action.HEAL:
                    heals.setdefault(message.decision_id, message)
                    if message.state is OpState.COMPLETED:
                        return message
            return None

        heals: dict[str, OpResult] = {}
        victim = vnf.vnfcs[0]
        assert victim.host is not None
        start = clock.now()
        result = None
        failed = False
        while result is None:
            now = clock.now()
            assert now - start < 600, "no heal within 10 minutes of scenario time"
            assert not roles.done(), "the platform stopped"
            if now - start >= 20 and not failed:
                await vim.fail_host(victim.host)
                failed = True
            await workload.tick(now)
            result = await heal_result()
            await clock.sleep(1.0)
        # The exporters follow the new server, so the VNF serves on both VNFCs again.
        for _ in range(30):
            state = await workload.tick(clock.now())
            if state.serving == len(vnf.vnfcs):
                break
            await clock.sleep(1.0)
    finally:
        stop.set()
        if roles is not None:
            await asyncio.wait_for(roles, 30)
        if workload is not None:
            await workload.aclose()
        await platform.aclose()

    assert result.state is OpState.COMPLETED, result.error
    assert result.target.id == victim.id
    assert result.detail["level"] == "recreate"
    # One decision per rung, each one operation, all one episode: the chain.
    record = await AuditTrail(redis, keys, clock).episode_of(result.decision_id)
    assert record is not None
    steps = [(s.parameters["level"], s.outcome) for s in record.episode.steps]
    assert steps == [
        ("soft_reboot", "failed"),
        ("hard_reboot", "failed"),
        ("rebuild", "failed"),
        ("recreate", "completed"),
    ]
    assert set(heals) == {s.decision_id for s in record.episode.steps}
    healed = (await Inventory(redis, keys).get(vnf.id)).vnfc(victim.id)
    assert healed is not None and healed.host != victim.host
    assert (await vim.get_server(healed.server_id)).status is ServerStatus.ACTIVE
    assert state.serving == len(vnf.vnfcs), "the recreated VNFC does not serve"
