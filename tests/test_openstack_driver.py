"""OpenStackVim beyond the shared contract: what only a real OpenStack shows.

The OpenStack tier (``scripts/test-openstack``): Neutron ports and networks,
Placement capacity, diagnostics as telemetry, server groups, a member's
credentials, the platform's settings, and host faults (a compute service
forced down, a nova-compute that stops reporting). Every check of what is
left in the cloud uses openstacksdk directly, not the driver.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from assure.platform import Platform
from assure.settings import Settings
from bus.clock import WallClock
from mano_core.errors import NotFound, PermanentVimError
from mano_core.servers import moved_from, wait_for
from mano_core.vim.base import (
    HOST_DEGRADED,
    HOST_UP,
    HOST_VCPUS,
    HOST_VCPUS_USED,
    SERVER_CPU,
    SERVER_UP,
    Flavor,
    GroupPolicy,
    HostState,
    PortSpec,
    ServerInfo,
    ServerSpec,
    ServerStatus,
)
from mano_core.vim.openstack import MANAGED_BY, OpenStackVim
from mano_core.vim.timed import TimedVim
from tests.openstack_cloud import (
    ADMIN_CLOUD,
    HOSTS,
    IMAGES,
    MEMBER_CLOUD,
    NETWORK,
    Operator,
    connect_admin,
    wait_until,
)
from tests.vim_backends import eventually, wait_server

pytestmark = pytest.mark.openstack

TINY = Flavor("m1.tiny", 1, 512, 1)


@pytest.fixture(scope="module")
def operator() -> Iterator[Operator]:
    conn = connect_admin()
    yield Operator(conn)
    conn.close()


@pytest.fixture
def run() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def vim(operator: Operator, run: str) -> AsyncIterator[OpenStackVim]:
    driver = await asyncio.to_thread(
        OpenStackVim.connect, "openstack", cloud=ADMIN_CLOUD, networks=[NETWORK]
    )
    try:
        yield driver
    finally:
        await asyncio.to_thread(operator.purge, **{"test-run": run})
        await driver.aclose()


@pytest.fixture
def image(operator: Operator) -> str:
    return str(operator.conn.image.find_image(IMAGES[0], ignore_missing=False).id)


def spec(image: str, run: str, name: str, **options: Any) -> ServerSpec:
    return ServerSpec(
        name=f"driver-{name}", flavor=TINY, image=image, metadata={"test-run": run}, **options
    )


def active(server: ServerInfo) -> bool:
    assert server.status is not ServerStatus.ERROR, server
    return server.status is ServerStatus.ACTIVE


async def test_the_platform_opens_the_openstack_vim_from_its_settings(settings: Settings) -> None:
    settings = dataclasses.replace(
        settings,
        vim=dataclasses.replace(
            settings.vim, driver="openstack", cloud=ADMIN_CLOUD, networks=f" {NETWORK} ,"
        ),
    )
    platform = await Platform.open(settings, WallClock())
    try:
        assert isinstance(platform.vim, TimedVim)
        driver = platform.vim.inner
        assert isinstance(driver, OpenStackVim)
        assert driver.name == ADMIN_CLOUD
        hosts = await platform.vim.list_hosts()
        assert [h.name for h in hosts] == list(HOSTS)
        # Capacity comes from Placement: the fake driver's 1000 vCPUs at Nova's 4.0 ratio.
        assert all(h.vcpus == 4000 and h.ram_mb > 0 and h.schedulable for h in hosts)
    finally:
        await platform.aclose()


async def test_a_server_on_its_own_port_keeps_the_port_and_address(
    vim: OpenStackVim, operator: Operator, image: str, run: str
) -> None:
    mark = {"test-run": run}
    net = await vim.create_network(f"driver-{run[:8]}", metadata=mark)
    try:
        subnet = await vim.create_subnet(net.id, "driver-subnet", "127.79.0.0/24", metadata=mark)
        assert (await vim.list_networks(metadata=mark)) == [net]
        assert (await vim.list_subnets(network_id=net.id)) == [subnet]
        port = await vim.create_port(
            PortSpec("driver-port", net.id, metadata={**mark, "vnfc": "a"})
        )
        assert port.address is not None and port.address.startswith("127.79.0.")
        assert port.server_id is None
        assert (await vim.list_ports(metadata={**mark, "vnfc": "a"})) == [port]

        created = await vim.create_server(spec(image, run, "on-port", ports=(port.id,)))
        server = await wait_server(vim, created.id, active, "ACTIVE")
        # Its address is the management network's; the port is attached after it.
        assert server.address is not None and server.address.startswith("127.77.")
        attached = {p.id: p for p in await vim.list_ports(server_id=server.id)}
        assert len(attached) == 2 and attached[port.id].address == port.address

        await vim.delete_server(server.id)
        await asyncio.to_thread(operator.purge, **mark)
        # The port was the caller's: it outlives the server, detached, with its address.
        detached = await asyncio.to_thread(operator.conn.network.get_port, port.id)
        assert not detached.device_id
        assert detached.fixed_ips[0]["ip_address"] == port.address
        with pytest.raises(PermanentVimError):
            await vim.delete_network(net.id)  # a port is still on it
        await vim.delete_port(port.id)
        with pytest.raises(NotFound):
            await vim.delete_port(port.id)
    finally:
        for left in await vim.list_ports(network_id=net.id):
            await vim.delete_port(left.id)
        await vim.delete_network(net.id)
    assert await asyncio.to_thread(operator.conn.network.find_network, net.id) is None
    assert await asyncio.to_thread(operator.conn.network.find_subnet, subnet.id) is None


async def test_servers_carry_our_mark_and_nova_made_ports_go_with_them(
    vim: OpenStackVim, operator: Operator, image: str, run: str
) -> None:
    created = await vim.create_server(spec(image, run, "marked"))
    server = await wait_server(vim, created.id, active, "ACTIVE")
    assert server.metadata[MANAGED_BY[0]] == MANAGED_BY[1]
    assert server.address is not None and server.address.startswith("127.77.")
    ports = await asyncio.to_thread(operator.ports, {server.id})
    assert [p.fixed_ips[0]["ip_address"] for p in ports] == [server.address]
    await vim.delete_server(server.id)
    await asyncio.to_thread(operator.purge, **{"test-run": run})
    assert await asyncio.to_thread(operator.ports, {server.id}) == []


async def test_anti_affinity_places_a_group_on_both_hosts(
    vim: OpenStackVim, image: str, run: str
) -> None:
    group = await vim.create_server_group(f"driver-{run[:8]}", GroupPolicy.ANTI_AFFINITY)
    try:
        created = [
            await vim.create_server(spec(image, run, f"apart-{i}", server_group=group.id))
            for i in range(2)
        ]
        servers = [await wait_server(vim, s.id, active, "ACTIVE") for s in created]
        assert sorted(s.host or "" for s in servers) == sorted(HOSTS)
        (listed,) = [g for g in await vim.list_server_groups() if g.id == group.id]
        assert listed.policy is GroupPolicy.ANTI_AFFINITY
        assert sorted(listed.members) == sorted(s.id for s in servers)
        for server in servers:
            await vim.delete_server(server.id)
    finally:
        await vim.delete_server_group(group.id)
    assert group.id not in {g.id for g in await vim.list_server_groups()}


async def test_images_flavours_and_quotas(vim: OpenStackVim, image: str, run: str) -> None:
    found = await vim.find_image(IMAGES[0])
    assert found.id == image and found.status == "active"
    assert {i.name for i in await vim.list_images()} >= set(IMAGES)
    with pytest.raises(NotFound):
        await vim.find_image(IMAGES[0], version="9.9")
    # A flavour Nova does not know by name is matched by its sizes (m1.small's).
    created = await vim.create_server(
        ServerSpec("driver-sized", Flavor("vnfd-small", 1, 2048, 20), image, {"test-run": run})
    )
    server = await wait_server(vim, created.id, active, "ACTIVE")
    assert server.flavor == Flavor("m1.small", 1, 2048, 20)
    with pytest.raises(PermanentVimError):
        await vim.create_server(
            ServerSpec("driver-nosize", Flavor("huge", 64, 1, 1), image, {"test-run": run})
        )
    limits = await vim.get_limits()
    assert limits.instances.limit is not None and limits.instances.used >= 1
    assert limits.ports.limit is not None and limits.networks.used >= 1


async def test_telemetry_reports_servers_from_diagnostics_and_hosts_from_placement(
    vim: OpenStackVim, image: str, run: str
) -> None:
    created = await vim.create_server(spec(image, run, "telemetry", host=HOSTS[1]))
    server = await wait_server(vim, created.id, active, "ACTIVE")
    points = {(p.kpi, p.labels.get("server") or p.labels["host"]): p for p in await vim.telemetry()}
    assert points[(SERVER_UP, server.id)].value == 1.0
    assert points[(SERVER_UP, server.id)].labels == {
        "server": server.id,
        "host": HOSTS[1],
        "status": "ACTIVE",
    }
    # The fake virt driver reports 15 % per vCPU in its diagnostics.
    assert points[(SERVER_CPU, server.id)].value == 15.0
    assert points[(HOST_VCPUS, HOSTS[1])].value == 4000.0
    assert points[(HOST_VCPUS_USED, HOSTS[1])].value >= 1.0
    assert points[(HOST_UP, HOSTS[1])].value == 1.0


async def test_a_members_credentials_give_server_telemetry_only(
    operator: Operator, image: str, run: str
) -> None:
    member = await asyncio.to_thread(
        OpenStackVim.connect, "member", cloud=MEMBER_CLOUD, networks=[NETWORK]
    )
    try:
        created = await member.create_server(spec(image, run, "member"))
        server = await wait_server(member, created.id, active, "ACTIVE")
        assert server.host is None  # only administrators see hosts
        with pytest.raises(PermanentVimError):
            await member.list_hosts()
        points = await member.telemetry()
        assert {p.kpi for p in points} == {SERVER_UP}
        await member.delete_server(server.id)
    finally:
        await asyncio.to_thread(operator.purge, **{"test-run": run})
        await member.aclose()


@pytest.mark.timeout(300)  # and the host's nova-compute restarted after (Operator.restore)
async def test_migrating_off_a_forced_down_host_evacuates(
    vim: OpenStackVim, operator: Operator, image: str, run: str
) -> None:
    first, second = HOSTS
    created = [
        await vim.create_server(spec(image, run, f"fenced-{kind}", host=first))
        for kind in ("live", "cold")
    ]
    live, cold = [await wait_server(vim, s.id, active, "ACTIVE") for s in created]
    await asyncio.to_thread(operator.force_down, first)
    try:
        await vim.live_migrate_server(live.id)
        await vim.migrate_server(cold.id, host=second)

        # Watched closely, as the VNFM watches a move: Nova shows an evacuated server
        # ACTIVE on its dead source for a moment before moving its host, which must not
        # read as an evacuation that ended back there (moved_from raises on that).
        moved = await wait_for(
            vim, WallClock(), [live.id, cold.id], moved_from(first), poll_s=0.05, timeout_s=120
        )
        for before in (live, cold):
            after = moved[before.id]
            assert (after.status, after.host) == (ServerStatus.ACTIVE, second)
            assert (after.id, after.address) == (before.id, before.address)
    finally:
        await asyncio.to_thread(operator.restore, first)


async def test_a_nova_compute_that_stops_reporting_is_a_host_fault(
    vim: OpenStackVim, operator: Operator
) -> None:
    host = HOSTS[1]
    await asyncio.to_thread(operator.stop_compute, host)
    try:

        async def reported_down() -> bool:
            hosts = {h.name: h for h in await vim.list_hosts()}
            return hosts[host].state is HostState.DOWN

        await eventually(reported_down, f"{host} reported down", timeout_s=90)
        (fault,) = [h for h in await vim.list_hosts() if h.name == host]
        assert fault.degraded and not fault.forced_down and not fault.schedulable
        points = {(p.kpi, p.labels.get("host")): p.value for p in await vim.telemetry()}
        assert points[(HOST_DEGRADED, host)] == 1.0
        assert points[(HOST_UP, host)] == 0.0
    finally:
        await asyncio.to_thread(operator.start_computes)
    await asyncio.to_thread(
        wait_until, f"{host} up", lambda: operator.compute_service(host).state == "up"
    )
