"""A network service across a simulated site and the OpenStack tier's cloud, through the NFVO.

The OpenStack tier (``scripts/test-openstack``). The edge NS keeps its
firewall and balancer on VIMs of their own; one more placement rule pins
the firewall to the cloud, so the balancer goes to the simulated site. The
NS instantiates, a firewall server stopped through openstacksdk and a
balancer server crashed on the site are healed by one NS heal, and
terminate leaves nothing: openstacksdk (not the driver) finds no server,
port or network of the NS in the cloud, and the site holds none of its
servers or ports.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest

from assure.demo.worlds import pinned_nsd
from assure.platform import Platform
from assure.settings import DEFAULTS_DIR, Settings
from bus.clock import WallClock
from mano_core.nfvo.records import NsOpState
from mano_core.vim.base import ServerStatus
from tests.openstack_cloud import ADMIN_CLOUD, NETWORK, Operator, connect_admin
from tests.vim_backends import eventually

pytestmark = [pytest.mark.openstack, pytest.mark.timeout(600)]

EDGE = DEFAULTS_DIR / "nsds" / "edge.yaml"


@pytest.fixture(scope="module")
def operator() -> Iterator[Operator]:
    conn = connect_admin()
    yield Operator(conn)
    conn.close()


def cloud_state(operator: Operator) -> tuple[set[str], set[str], set[str]]:
    conn = operator.conn
    return (
        {s.id for s in operator.servers()},
        {p.id for p in conn.network.ports()},
        {n.id for n in conn.network.networks()},
    )


async def test_an_ns_on_a_site_and_the_cloud_instantiates_heals_and_leaves_nothing(
    settings: Settings, operator: Operator
) -> None:
    settings = dataclasses.replace(
        settings,
        vim=dataclasses.replace(
            settings.vim, sites=("site-a",), clouds=(ADMIN_CLOUD,), networks=NETWORK
        ),
    )
    before = await asyncio.to_thread(cloud_state, operator)
    platform = await Platform.open(settings, WallClock())
    try:
        site = platform.sims["site-a"]
        await platform.onboard_dir(settings.policy.vnfd_dir)
        text = pinned_nsd(EDGE.read_text(encoding="utf-8"), "fw", ADMIN_CLOUD)
        await platform.onboarding.nsd(text, str(EDGE))
        ns = await platform.nslcm.create("edge", "span")
        op = await platform.nslcm.instantiate(ns.id)
        assert op.state is NsOpState.COMPLETED, op.error
        ns = await platform.nslcm.get(ns.id)
        vims = {m.member: m.vim for m in ns.vnfs}
        assert vims == {"fw": ADMIN_CLOUD, "lb": "site-a"}
        members = {m.member: await platform.inventory.get(str(m.vnf_id)) for m in ns.vnfs}
        fw, lb = members["fw"], members["lb"]
        for vnfc in fw.vnfcs:
            server = await asyncio.to_thread(operator.conn.compute.get_server, vnfc.server_id)
            assert (server.status, server.compute_host) == ("ACTIVE", vnfc.host)
        assert {n.vim for n in ns.networks} == {ADMIN_CLOUD, "site-a"}  # the service link

        # Faults on both sides: the cloud's behind the platform's back, the site's injected.
        stopped, crashed = fw.vnfcs[0], lb.vnfcs[0]
        await asyncio.to_thread(operator.conn.compute.stop_server, stopped.server_id)

        async def shut_off() -> bool:
            server = await asyncio.to_thread(operator.conn.compute.get_server, stopped.server_id)
            return bool(server.status == "SHUTOFF")

        await eventually(shut_off, "the firewall's server SHUTOFF")
        await site.crash_server(crashed.server_id)

        op = await platform.nslcm.heal(ns.id)
        assert op.state is NsOpState.COMPLETED, op.error
        server = await asyncio.to_thread(operator.conn.compute.get_server, stopped.server_id)
        assert server.status == "ACTIVE"
        assert (await site.get_server(crashed.server_id)).status is ServerStatus.ACTIVE
        healed = [await platform.ops.get(*ref.split("/")) for ref in op.vnf_ops]
        assert {h.operation_params["vnfc_id"] for h in healed} == {stopped.id, crashed.id}

        op = await platform.nslcm.terminate(ns.id)
        assert op.state is NsOpState.COMPLETED, op.error
        lb_servers = {c.server_id for c in lb.vnfcs}
        assert not lb_servers & {s.id for s in await site.servers()}
        assert not [p for p in await site.ports() if p.server_id in lb_servers]
    finally:
        await platform.aclose()

    # Nova deletes a server after accepting the request: wait for the cloud to settle.
    async def settled() -> bool:
        after = await asyncio.to_thread(cloud_state, operator)
        return all(now <= then for now, then in zip(after, before, strict=True))

    await eventually(settled, "no server, port or network of the NS left in the cloud")
    fw_servers = {c.server_id for c in fw.vnfcs}
    assert await asyncio.to_thread(operator.ports, fw_servers) == []
