"""The VNFM's lifecycle on a real OpenStack: the demo's firewall VNF, start to end.

The OpenStack tier (``scripts/test-openstack``): instantiate, scale out and
in, heal by each ladder step, migrate, change flavour, change package,
terminate. Every operation must end
COMPLETED with the VNF's servers where the VNFM says they are; after
terminate, openstacksdk (not the driver under test) must find no server,
port or server group of the VNF left in the cloud.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bus.clock import WallClock
from bus.contracts import OpState
from bus.keys import Keys
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import ComputeFlavour, VnfInstance
from mano_core.vim.base import ServerStatus
from mano_core.vim.openstack import OpenStackVim
from mano_core.vim.timed import TimedVim
from mano_core.vnfd import RecoveryLevel, load_vnfd, parse_vnfd
from mano_core.vnfm import Vnfm
from tests.openstack_cloud import ADMIN_CLOUD, HOSTS, NETWORK, Operator, connect_admin
from tests.vim_backends import eventually

pytestmark = [pytest.mark.openstack, pytest.mark.timeout(300)]

VFW = Path(__file__).resolve().parents[1] / "assure" / "defaults" / "vnfds" / "vfw.yaml"
ASPECT = "fw-scale"


@dataclass
class Mano:
    driver: OpenStackVim
    inventory: Inventory
    catalogue: Catalogue
    vnfm: Vnfm
    operator: Operator
    seen_servers: set[str]

    async def vnf(self, vnf_id: str) -> VnfInstance:
        vnf = await self.inventory.get(vnf_id)
        self.seen_servers |= {c.server_id for c in vnf.vnfcs}
        return vnf

    async def servers_of(self, vnf_id: str) -> dict[str, Any]:
        """The VNF's servers as openstacksdk lists them, by id."""
        found = await asyncio.to_thread(self.operator.servers, vnf=vnf_id)
        self.seen_servers |= {s.id for s in found}
        return {s.id: s for s in found}


@pytest.fixture(scope="module")
def operator() -> Iterator[Operator]:
    conn = connect_admin()
    yield Operator(conn)
    conn.close()


@pytest.fixture
async def mano(redis: Any, keys: Keys, operator: Operator) -> AsyncIterator[Mano]:
    clock = WallClock()
    driver = await asyncio.to_thread(
        OpenStackVim.connect, "openstack", cloud=ADMIN_CLOUD, networks=[NETWORK], clock=clock
    )
    inventory, catalogue = Inventory(redis, keys), Catalogue(redis, keys)
    await catalogue.onboard(load_vnfd(VFW))
    ops = OpOccStore(redis, keys, clock)
    vnfm = Vnfm(TimedVim(driver, 30.0), inventory, catalogue, ops, clock, poll_s=0.5, timeout_s=120)
    built = Mano(driver, inventory, catalogue, vnfm, operator, set())
    try:
        yield built
    finally:
        for vnf in await inventory.list():
            await vnfm.terminate(vnf.id)
        await driver.aclose()


async def only(mano: Mano, vnf_id: str, server_ids: set[str]) -> bool:
    """Whether the VNF's servers in the cloud are exactly ``server_ids``."""
    return set(await mano.servers_of(vnf_id)) == server_ids


async def instantiate(mano: Mano) -> VnfInstance:
    vnf, op = await mano.vnfm.instantiate("vfw", "fw-os")
    assert op.state is OpState.COMPLETED, op.error
    return await mano.vnf(vnf.id)


async def terminate_leaving_nothing(mano: Mano, vnf_id: str) -> None:
    op = await mano.vnfm.terminate(vnf_id)
    assert op.state is OpState.COMPLETED, op.error
    conn = mano.operator.conn
    await eventually(lambda: only(mano, vnf_id, set()), "every server deleted")
    for server_id in mano.seen_servers:
        gone = await asyncio.to_thread(conn.compute.find_server, server_id, ignore_missing=True)
        assert gone is None, f"server {server_id} is still there"
    assert await asyncio.to_thread(mano.operator.ports, mano.seen_servers) == []
    groups = await asyncio.to_thread(lambda: list(conn.compute.server_groups(all_projects=True)))
    assert [g.name for g in groups if vnf_id in (g.name or "")] == []
    # The VNF's own networks (its virtual links) and their ports go with it.
    networks = await asyncio.to_thread(lambda: list(conn.network.networks()))
    assert [n.name for n in networks if vnf_id in (n.description or "")] == []
    ports = await asyncio.to_thread(lambda: list(conn.network.ports()))
    assert [p.name for p in ports if vnf_id in (p.description or "")] == []


async def test_instantiate_scale_out_and_in_then_terminate(mano: Mano) -> None:
    vnf = await instantiate(mano)
    assert len(vnf.vnfcs) == 2
    servers = await mano.servers_of(vnf.id)
    assert set(servers) == {c.server_id for c in vnf.vnfcs}
    for vnfc in vnf.vnfcs:
        server = servers[vnfc.server_id]
        assert server.status == "ACTIVE"
        assert (vnfc.host, server.compute_host) == (server.compute_host, vnfc.host)
        assert vnfc.address is not None and vnfc.address.startswith("127.77.")
        # Besides the management network, a port on the VNF's own mgmt virtual link.
        own = await asyncio.to_thread(mano.operator.ports, {server.id})
        nets = sorted(".".join(p.fixed_ips[0]["ip_address"].split(".")[:2]) for p in own)
        assert nets == ["10.10", "127.77"]
        assert vnfc.metrics_url == f"http://{vnfc.address}:9273/metrics"
        assert server.flavor.original_name == "m1.fw"
    # Both are in the VDU's server group (soft anti-affinity: Nova spreads them where it can).
    groups = await asyncio.to_thread(lambda: list(mano.operator.conn.compute.server_groups()))
    (group,) = [g for g in groups if set(servers) <= set(g.member_ids or ())]
    assert group.policy == "soft-anti-affinity"
    assert {c.host for c in vnf.vnfcs} <= set(HOSTS)

    op = await mano.vnfm.scale(vnf.id, ASPECT, "out")
    assert op.state is OpState.COMPLETED, op.error
    grown = await mano.vnf(vnf.id)
    assert (len(grown.vnfcs), grown.scale_levels[ASPECT]) == (3, 1)
    (added,) = [c for c in grown.vnfcs if c.id not in {v.id for v in vnf.vnfcs}]
    assert (await mano.servers_of(vnf.id))[added.server_id].status == "ACTIVE"

    op = await mano.vnfm.scale(vnf.id, ASPECT, "in")
    assert op.state is OpState.COMPLETED, op.error
    shrunk = await mano.vnf(vnf.id)
    assert (len(shrunk.vnfcs), shrunk.scale_levels[ASPECT]) == (2, 0)
    assert added.id not in {c.id for c in shrunk.vnfcs}  # newest first
    # Nova deletes a server after accepting the request: it is gone soon after.
    await eventually(lambda: only(mano, vnf.id, {c.server_id for c in shrunk.vnfcs}), "scaled in")

    await terminate_leaving_nothing(mano, vnf.id)


async def test_heal_by_each_step_of_the_ladder(mano: Mano) -> None:
    vnf = await instantiate(mano)
    vnfc = vnf.vnfcs[0]
    for level in (RecoveryLevel.SOFT_REBOOT, RecoveryLevel.HARD_REBOOT, RecoveryLevel.REBUILD):
        op = await mano.vnfm.heal(vnf.id, vnfc.id, level)
        assert op.state is OpState.COMPLETED, (level, op.error)
        healed = next(c for c in (await mano.vnf(vnf.id)).vnfcs if c.id == vnfc.id)
        assert healed.server_id == vnfc.server_id  # in place
        assert (await mano.servers_of(vnf.id))[healed.server_id].status == "ACTIVE"

    # A server stopped behind the platform's back is brought back by a hard reboot.
    await asyncio.to_thread(mano.operator.conn.compute.stop_server, vnfc.server_id)
    await asyncio.to_thread(
        mano.operator.conn.compute.wait_for_server,
        mano.operator.conn.compute.get_server(vnfc.server_id),
        status="SHUTOFF",
        wait=60,
    )
    op = await mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.HARD_REBOOT)
    assert op.state is OpState.COMPLETED, op.error
    assert (await mano.driver.get_server(vnfc.server_id)).status is ServerStatus.ACTIVE

    op = await mano.vnfm.heal(vnf.id, vnfc.id, RecoveryLevel.RECREATE)
    assert op.state is OpState.COMPLETED, op.error
    recreated = next(c for c in (await mano.vnf(vnf.id)).vnfcs if c.id == vnfc.id)
    assert recreated.server_id != vnfc.server_id
    await eventually(
        lambda: only(mano, vnf.id, {c.server_id for c in vnf.vnfcs[1:]} | {recreated.server_id}),
        "the old server replaced",
    )
    assert (await mano.servers_of(vnf.id))[recreated.server_id].status == "ACTIVE"

    await terminate_leaving_nothing(mano, vnf.id)


async def test_migrate_live_and_cold(mano: Mano) -> None:
    vnf = await instantiate(mano)
    vnfc = vnf.vnfcs[0]
    for live in (True, False):
        before = next(c for c in (await mano.vnf(vnf.id)).vnfcs if c.id == vnfc.id)
        op = await mano.vnfm.migrate(vnf.id, vnfc.id, live=live)
        assert op.state is OpState.COMPLETED, (live, op.error)
        after = next(c for c in (await mano.vnf(vnf.id)).vnfcs if c.id == vnfc.id)
        server = (await mano.servers_of(vnf.id))[after.server_id]
        assert after.host != before.host
        assert (server.status, server.compute_host) == ("ACTIVE", after.host)
        assert after.address == before.address

    await terminate_leaving_nothing(mano, vnf.id)


async def test_change_flavour_resizes_every_vnfc_then_terminate(mano: Mano) -> None:
    vnf = await instantiate(mano)
    medium = ComputeFlavour(vcpus=2, ram_mb=4096, disk_gb=40, name="m1.medium")
    op = await mano.vnfm.change_flavour(vnf.id, "fw", medium)
    assert op.state is OpState.COMPLETED, op.error
    changed = await mano.vnf(vnf.id)
    assert changed.flavours["fw"] == medium
    servers = await mano.servers_of(vnf.id)
    assert set(servers) == {c.server_id for c in vnf.vnfcs}  # resized in place, same servers
    for vnfc in changed.vnfcs:
        server = servers[vnfc.server_id]
        # Confirmed (not left waiting in VERIFY_RESIZE), where the VNFM says it runs.
        assert (server.status, server.flavor.original_name) == ("ACTIVE", "m1.medium")
        assert server.compute_host == vnfc.host

    await terminate_leaving_nothing(mano, vnf.id)


async def test_change_package_rebuilds_every_vnfc_on_the_new_image_then_terminate(
    mano: Mano,
) -> None:
    vnf = await instantiate(mano)
    upgrade = VFW.read_text(encoding="utf-8").replace('version: "1.0"', 'version: "1.1"')
    await mano.catalogue.onboard(parse_vnfd(upgrade))
    conn = mano.operator.conn
    images = await asyncio.to_thread(lambda: list(conn.image.images(name="fw-image")))
    new_image = next(i.id for i in images if (i.properties or {}).get("version") == "1.1")

    op = await mano.vnfm.change_package(vnf.id, "1.1")
    assert op.state is OpState.COMPLETED, op.error
    upgraded = await mano.vnf(vnf.id)
    assert upgraded.vnfd_version == "1.1"
    servers = await mano.servers_of(vnf.id)
    assert set(servers) == {c.server_id for c in vnf.vnfcs}  # rebuilt in place
    for vnfc in upgraded.vnfcs:
        server = servers[vnfc.server_id]
        assert (server.status, server.image.id) == ("ACTIVE", new_image)
        assert vnfc.address == next(c for c in vnf.vnfcs if c.id == vnfc.id).address

    await terminate_leaving_nothing(mano, vnf.id)
