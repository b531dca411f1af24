"""The closed loop on a real OpenStack: a compute service forced down gets its VNFCs moved.

The OpenStack tier (``scripts/test-openstack``). The platform runs every
stage (collector reading VIM telemetry from Nova and Placement, analytics,
policy engine, actuator) in wall time on the OpenStack VIM, with the
shipped migrate policy. An operator forces the compute service of a host
down behind the platform's back: the host reports degraded, the policy
decides to migrate its VNFCs, and the VNFM moves them (Nova evacuates
servers off a dead host) to the other host, where openstacksdk finds them
running.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from assure.platform import ROLES, Platform
from assure.settings import DEFAULTS_DIR, Settings
from bus.clock import WallClock
from bus.contracts import Action, OpResult, OpState
from bus.keys import Keys
from bus.streams import read_all
from tests.openstack_cloud import ADMIN_CLOUD, NETWORK, Operator, connect_admin
from tests.vim_backends import eventually

pytestmark = [pytest.mark.openstack, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def operator() -> Iterator[Operator]:
    conn = connect_admin()
    yield Operator(conn)
    conn.close()


async def test_a_host_forced_down_gets_its_vnfcs_migrated(
    redis: Any, keys: Keys, settings: Settings, operator: Operator
) -> None:
    settings = dataclasses.replace(
        settings,
        vim=dataclasses.replace(
            settings.vim, driver="openstack", cloud=ADMIN_CLOUD, networks=NETWORK
        ),
        collector=dataclasses.replace(settings.collector, vim_interval=2.0),
    )
    platform = await Platform.open(settings, WallClock())
    stop = asyncio.Event()
    roles: asyncio.Task[None] | None = None
    fenced: str | None = None
    vnf_id: str | None = None
    try:
        await platform.onboard_dir(settings.policy.vnfd_dir)
        # The migrate policy alone: the firewall's exporters do not run on the fake servers.
        loaded = platform.load_policies(DEFAULTS_DIR / "policies" / "vfw-migrate.yaml")
        assert not loaded.problems and len(loaded.policies) == 1
        vnf, op = await platform.vnfm.instantiate("vfw", "vfw-os")
        assert op.state is OpState.COMPLETED, op.error
        vnf_id = vnf.id
        fenced = vnf.vnfcs[0].host
        assert fenced is not None
        moving = {c.id for c in vnf.vnfcs if c.host == fenced}
        roles = asyncio.create_task(platform.run_roles(ROLES, stop, loaded))
        await asyncio.to_thread(operator.force_down, fenced)

        async def migrated() -> dict[str, OpResult] | None:
            assert not roles.done(), "the platform stopped"
            done = {
                m.target.id: m
                for _, m in await read_all(redis, keys.stream("op_results"))
                if isinstance(m, OpResult) and m.action is Action.MIGRATE and m.state.final
            }
            return done if moving <= set(done) else None

        results = await eventually(migrated, f"VNFCs {sorted(moving)} migrated", timeout_s=240)
        moved = await platform.inventory.get(vnf.id)
        for vnfc in moved.vnfcs:
            server = await asyncio.to_thread(operator.conn.compute.get_server, vnfc.server_id)
            assert (server.status, server.compute_host) == ("ACTIVE", vnfc.host)
            assert vnfc.host != fenced
    finally:
        stop.set()
        if roles is not None:
            await asyncio.wait_for(roles, 30)
        if vnf_id is not None:
            await platform.vnfm.terminate(vnf_id)
        if fenced is not None:
            await asyncio.to_thread(operator.restore, fenced)
        await platform.aclose()

    for vnfc_id in moving:
        assert results[vnfc_id].state is OpState.COMPLETED, results[vnfc_id].error
        assert results[vnfc_id].detail["from_host"] == fenced
        assert results[vnfc_id].detail["to_host"] != fenced
