"""The simulated VIM: scheduling, lifecycles in clock time, injected failures, telemetry."""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bus.clock import ScaledClock
from bus.keys import Keys
from mano_core.errors import (
    NotFound,
    NoValidHost,
    PermanentVimError,
    QuotaExceeded,
    TemporaryVimError,
)
from mano_core.vim.base import (
    HOST_CPU,
    HOST_DEGRADED,
    HOST_UP,
    SERVER_CPU,
    SERVER_UP,
    Flavor,
    GroupPolicy,
    HostState,
    PortSpec,
    ServerInfo,
    ServerSpec,
    ServerStatus,
    VimDriver,
)
from mano_core.vim.simulated import QuotaRec, SimHost, SimulatedVim
from mano_core.vim.timed import TimedVim

SMALL = Flavor("small", vcpus=2, ram_mb=2048)
CLOCK = ScaledClock(speed=200)
"""Boot (20 s), reboot (10 s) and migration (8 s) take 0.1 s wall or less."""


MakeVim = Callable[..., Awaitable[SimulatedVim]]


@pytest.fixture
def make_vim(redis: Any, keys: Keys) -> MakeVim:
    """Builds a simulated VIM on the test's Redis, one image ``img`` registered."""
    made = 0

    async def build(
        *hosts: SimHost,
        address_base: str | None = None,
        seed: int | None = None,
        deployment: str | None = None,
    ) -> SimulatedVim:
        nonlocal made
        made += 1
        vim = SimulatedVim(
            CLOCK,
            redis,
            keys if deployment is None else Keys(prefix=f"{keys.prefix}-{deployment}"),
            hosts or (SimHost("h1", 8, 16384), SimHost("h2", 8, 16384)),
            name=f"sim-{made}" if deployment is None else "sim",
            address_base=address_base,
            seed=seed,
        )
        await vim.add_image("img")
        return vim

    return build


async def image_id(vim: SimulatedVim, name: str = "img") -> str:
    return next(i.id for i in await vim.images() if i.name == name)


async def spec(vim: SimulatedVim, name: str = "s", **options: Any) -> ServerSpec:
    return ServerSpec(name=name, flavor=SMALL, image=await image_id(vim), **options)


async def settle(vim: SimulatedVim, server_id: str, until: ServerStatus) -> ServerInfo:
    """Wait in clock time (at most 60 s of it) for the server to reach ``until``."""
    deadline = CLOCK.now() + 60
    while True:
        server = await vim.get_server(server_id)
        if server.status is until or CLOCK.now() > deadline:
            return server
        await CLOCK.sleep(1.0)


async def active(vim: SimulatedVim, name: str = "s", **options: Any) -> ServerInfo:
    created = await vim.create_server(await spec(vim, name, **options))
    return await settle(vim, created.id, ServerStatus.ACTIVE)


async def test_it_implements_the_driver_protocol(make_vim: MakeVim) -> None:
    driver: VimDriver = await make_vim()
    assert driver.name.startswith("sim-")


async def test_a_server_builds_then_becomes_active(make_vim: MakeVim) -> None:
    vim = await make_vim()
    created = await vim.create_server(await spec(vim))
    assert created.status is ServerStatus.BUILD
    server = await settle(vim, created.id, ServerStatus.ACTIVE)
    assert server.status is ServerStatus.ACTIVE
    assert server.host in {"h1", "h2"}


async def test_servers_get_distinct_loopback_addresses_outside_127_0_0(make_vim: MakeVim) -> None:
    vim = await make_vim()
    addresses = [(await vim.create_server(await spec(vim, f"s{i}"))).address for i in range(5)]
    assert len(set(addresses)) == 5
    for address in addresses:
        assert address is not None
        ip = ipaddress.IPv4Address(address)
        assert ip.is_loopback
        assert not address.startswith("127.0.0.")


async def test_an_address_base_is_followed(make_vim: MakeVim) -> None:
    vim = await make_vim(address_base="127.42.7.0")
    first = await vim.create_server(await spec(vim, "a"))
    second = await vim.create_server(await spec(vim, "b"))
    assert (first.address, second.address) == ("127.42.7.1", "127.42.7.2")


async def test_a_soft_anti_affinity_group_spreads_its_servers(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 16, 32768), SimHost("h2", 4, 4096))
    group = await vim.create_server_group("g", GroupPolicy.SOFT_ANTI_AFFINITY)
    first = await vim.create_server(await spec(vim, "a", server_group=group.id))
    # h1 has more free vCPUs, but anti-affinity sends the second server to h2...
    second = await vim.create_server(await spec(vim, "b", server_group=group.id))
    # ...and, softly, a third where there is room.
    third = await vim.create_server(await spec(vim, "c", server_group=group.id))
    assert (first.host, second.host, third.host) == ("h1", "h2", "h1")
    (listed,) = await vim.list_server_groups()
    assert set(listed.members) == {first.id, second.id, third.id}


async def test_the_scheduler_prefers_the_host_with_most_free_vcpus(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 4, 16384), SimHost("h2", 8, 16384))
    placed = [(await vim.create_server(await spec(vim, f"s{i}"))).host for i in range(3)]
    assert placed == ["h2", "h2", "h1"]


async def test_no_valid_host_is_a_permanent_error(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 4, 4096))
    await vim.create_server(await spec(vim, "a"))
    await vim.create_server(await spec(vim, "b"))
    with pytest.raises(NoValidHost, match="no valid host"):
        await vim.create_server(await spec(vim, "c"))


async def test_degraded_down_and_disabled_hosts_take_no_new_servers(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384), SimHost("h2", 8, 16384), SimHost("h3", 2, 2048))
    await vim.degrade_host("h1")
    await vim.fail_host("h2")
    await vim.disable_host("h3")
    with pytest.raises(PermanentVimError, match="no valid host"):
        await vim.create_server(await spec(vim))
    await vim.restore_host("h1")
    assert (await vim.create_server(await spec(vim))).host == "h1"


async def test_deleting_frees_the_capacity(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 2, 2048))
    server = await vim.create_server(await spec(vim, "a"))
    await vim.delete_server(server.id)
    assert (await vim.servers()) == []
    assert (await vim.create_server(await spec(vim, "b"))).host == "h1"
    with pytest.raises(NotFound):
        await vim.delete_server(server.id)


async def test_a_crashed_server_comes_back_with_a_hard_reboot(make_vim: MakeVim) -> None:
    vim = await make_vim()
    server = await active(vim)
    await vim.crash_server(server.id)
    crashed = await vim.get_server(server.id)
    assert (crashed.status, crashed.fault) == (ServerStatus.ERROR, "guest crashed (injected)")
    with pytest.raises(PermanentVimError, match="hard reboot"):
        await vim.reboot_server(server.id)  # a soft reboot cannot revive a dead guest
    await vim.reboot_server(server.id, hard=True)
    assert (await vim.get_server(server.id)).status is ServerStatus.HARD_REBOOT
    back = await settle(vim, server.id, ServerStatus.ACTIVE)
    assert (back.status, back.fault, back.host) == (ServerStatus.ACTIVE, None, server.host)


async def test_a_server_on_a_down_host_cannot_be_rebooted_in_place(make_vim: MakeVim) -> None:
    vim = await make_vim()
    server = await active(vim)
    assert server.host is not None
    await vim.fail_host(server.host)
    failed = await vim.get_server(server.id)
    assert failed.status is ServerStatus.ERROR
    assert failed.fault == f"host {server.host} is down"
    with pytest.raises(PermanentVimError, match="is down"):
        await vim.reboot_server(server.id, hard=True)


async def test_a_rebuild_replaces_the_image_and_ends_active(make_vim: MakeVim) -> None:
    vim = await make_vim()
    server = await active(vim)
    await vim.crash_server(server.id)
    newer = await vim.add_image("img", "2")
    with pytest.raises(PermanentVimError, match="does not exist"):
        await vim.rebuild_server(server.id, image="no-such-image")
    await vim.rebuild_server(server.id, image=newer.id)
    assert (await vim.get_server(server.id)).status is ServerStatus.REBUILD
    rebuilt = await settle(vim, server.id, ServerStatus.ACTIVE)
    assert (rebuilt.status, rebuilt.image, rebuilt.address) == (
        ServerStatus.ACTIVE,
        newer.id,
        server.address,
    )


async def test_a_busy_server_refuses_a_second_task_for_now(make_vim: MakeVim) -> None:
    vim = await make_vim()
    building = await vim.create_server(await spec(vim))
    with pytest.raises(TemporaryVimError) as exc:
        await vim.reboot_server(building.id, hard=True)
    assert exc.value.retry_after > 0


async def test_live_migration_moves_the_server_and_keeps_its_address(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384), SimHost("h2", 8, 16384), SimHost("h3", 8, 16384))
    server = await active(vim)
    assert server.host is not None
    await vim.degrade_host("h2" if server.host != "h2" else "h3")
    await vim.live_migrate_server(server.id)
    moving = await vim.get_server(server.id)
    assert (moving.status, moving.host) == (ServerStatus.MIGRATING, server.host)
    moved = await settle(vim, server.id, ServerStatus.ACTIVE)
    healthy = (
        {"h1", "h2", "h3"} - {server.host} - {h.name for h in (await vim.hosts()) if h.degraded}
    )
    assert moved.host in healthy
    assert moved.address == server.address


async def test_migration_to_a_named_host_and_its_refusals(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384), SimHost("h2", 8, 16384), SimHost("h3", 8, 16384))
    server = await active(vim)
    others = sorted({"h1", "h2", "h3"} - {server.host})
    with pytest.raises(PermanentVimError, match="already on host"):
        await vim.live_migrate_server(server.id, host=server.host)
    await vim.degrade_host(others[0])
    with pytest.raises(NoValidHost, match="cannot take"):
        await vim.live_migrate_server(server.id, host=others[0])
    with pytest.raises(NotFound):
        await vim.migrate_server(server.id, host="nowhere")
    await vim.live_migrate_server(server.id, host=others[1])
    assert (await settle(vim, server.id, ServerStatus.ACTIVE)).host == others[1]


async def test_migration_with_nowhere_to_go_is_permanent(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384))
    server = await active(vim)
    with pytest.raises(NoValidHost, match="no valid host"):
        await vim.live_migrate_server(server.id)
    with pytest.raises(NoValidHost, match="no valid host"):
        await vim.migrate_server(server.id)


async def test_injected_failures_hit_the_next_calls_only(make_vim: MakeVim) -> None:
    vim = await make_vim()
    await vim.fail_next("create", temporary=True, count=2, retry_after=7.0)
    for _ in range(2):
        with pytest.raises(TemporaryVimError) as exc:
            await vim.create_server(await spec(vim))
        assert exc.value.retry_after == 7.0
    server = await vim.create_server(await spec(vim))
    await vim.fail_next("delete", temporary=False)
    with pytest.raises(PermanentVimError, match="injected"):
        await vim.delete_server(server.id)
    await vim.delete_server(server.id)
    assert (await vim.servers()) == []
    with pytest.raises(ValueError, match="unknown operation"):
        await vim.fail_next("teleport", temporary=True)


async def test_a_hung_call_answers_nothing_and_changes_nothing_until_given_up(
    make_vim: MakeVim,
) -> None:
    vim = await make_vim()
    hung = await vim.hang_next("create")
    call = asyncio.create_task(vim.create_server(await spec(vim, "hung")))
    await asyncio.wait_for(hung.wait(), 5)
    done, _ = await asyncio.wait([call], timeout=0.2)
    assert not done, "a hung call answered"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (await vim.servers()) == []
    # Only the next call hangs.
    assert (await vim.create_server(await spec(vim, "next"))).name == "next"
    with pytest.raises(ValueError, match="unknown operation"):
        await vim.hang_next("teleport")


async def test_telemetry_reports_servers_and_hosts(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 4, 8192), SimHost("h2", 4, 8192))
    server = await active(vim)
    assert server.host is not None
    other = "h2" if server.host == "h1" else "h1"
    await vim.set_server_cpu({server.id: 80.0})
    await vim.degrade_host(other)
    points = {(p.kpi, p.labels.get("server") or p.labels["host"]): p for p in await vim.telemetry()}
    assert points[(SERVER_CPU, server.id)].value == 80.0
    assert points[(SERVER_UP, server.id)].value == 1.0
    assert points[(SERVER_UP, server.id)].labels["status"] == "ACTIVE"
    # 80 % of 2 vCPUs on a 4-vCPU host.
    assert points[(HOST_CPU, server.host)].value == pytest.approx(40.0)
    assert points[(HOST_DEGRADED, other)].value == 1.0
    assert points[(HOST_UP, other)].value == 1.0
    await vim.crash_server(server.id)
    await vim.fail_host(other)
    points = {(p.kpi, p.labels.get("server") or p.labels["host"]): p for p in await vim.telemetry()}
    assert points[(SERVER_UP, server.id)].value == 0.0
    assert points[(SERVER_CPU, server.id)].value == 0.0
    assert points[(HOST_UP, other)].value == 0.0


async def test_hosts_report_their_load_and_servers(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384))
    server = await vim.create_server(await spec(vim))
    await vim.fail_host("h1")
    (host,) = await vim.hosts()
    assert (host.state, host.vcpus_used, host.ram_used_mb) == (HostState.DOWN, 2, 2048)
    assert host.servers == (server.id,)


async def test_a_seed_makes_server_ids_reproducible(make_vim: MakeVim) -> None:
    # The same cloud (name, seed) in two deployments.
    one, two = await make_vim(seed=7, deployment="a"), await make_vim(seed=7, deployment="b")
    assert (await one.create_server(await spec(one))).id == (
        await two.create_server(await spec(two))
    ).id


async def test_a_soft_reboot_shows_reboot_and_a_hard_one_hard_reboot(make_vim: MakeVim) -> None:
    vim = await make_vim()
    server = await active(vim)
    await vim.reboot_server(server.id)
    assert (await vim.get_server(server.id)).status is ServerStatus.REBOOT
    await settle(vim, server.id, ServerStatus.ACTIVE)
    await vim.reboot_server(server.id, hard=True)
    assert (await vim.get_server(server.id)).status is ServerStatus.HARD_REBOOT
    assert (await settle(vim, server.id, ServerStatus.ACTIVE)).status is ServerStatus.ACTIVE


async def test_a_resize_waits_in_verify_resize_then_confirm_keeps_the_new_flavour(
    make_vim: MakeVim,
) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384))
    server = await active(vim)
    big = Flavor("big", vcpus=4, ram_mb=4096)
    await vim.resize_server(server.id, big)
    assert (await vim.get_server(server.id)).status is ServerStatus.RESIZE
    waiting = await settle(vim, server.id, ServerStatus.VERIFY_RESIZE)
    assert (waiting.status, waiting.flavor) == (ServerStatus.VERIFY_RESIZE, big)
    # Until confirmed, both the old and the new flavour are held.
    (host,) = await vim.hosts()
    assert host.vcpus_used == SMALL.vcpus + big.vcpus
    await vim.confirm_resize(server.id)
    confirmed = await vim.get_server(server.id)
    assert (confirmed.status, confirmed.flavor) == (ServerStatus.ACTIVE, big)
    assert (await vim.hosts())[0].vcpus_used == big.vcpus
    with pytest.raises(PermanentVimError, match="while it is ACTIVE"):
        await vim.confirm_resize(server.id)


async def test_a_reverted_resize_goes_back_to_the_old_flavour(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384))
    server = await active(vim)
    await vim.resize_server(server.id, Flavor("big", vcpus=4, ram_mb=4096))
    await settle(vim, server.id, ServerStatus.VERIFY_RESIZE)
    await vim.revert_resize(server.id)
    assert (await vim.get_server(server.id)).status is ServerStatus.REVERT_RESIZE
    back = await settle(vim, server.id, ServerStatus.ACTIVE)
    assert back.flavor == SMALL
    assert (await vim.hosts())[0].vcpus_used == SMALL.vcpus


async def test_a_cold_migration_is_confirmed_or_reverted_from_verify_resize(
    make_vim: MakeVim,
) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384), SimHost("h2", 8, 16384))
    server = await active(vim)
    other = "h2" if server.host == "h1" else "h1"
    await vim.migrate_server(server.id)
    assert (await vim.get_server(server.id)).status is ServerStatus.RESIZE
    moved = await settle(vim, server.id, ServerStatus.VERIFY_RESIZE)
    assert moved.host == other
    # The source host still holds the server until the move is confirmed.
    used = {h.name: h.vcpus_used for h in (await vim.hosts())}
    assert used == {"h1": SMALL.vcpus, "h2": SMALL.vcpus}
    await vim.revert_resize(server.id)
    back = await settle(vim, server.id, ServerStatus.ACTIVE)
    assert back.host == server.host
    await vim.migrate_server(server.id, host=other)
    await settle(vim, server.id, ServerStatus.VERIFY_RESIZE)
    await vim.confirm_resize(server.id)
    assert (await vim.get_server(server.id)).host == other
    assert {h.name: h.vcpus_used for h in (await vim.hosts())}[server.host or ""] == 0


async def test_stop_and_start(make_vim: MakeVim) -> None:
    vim = await make_vim()
    server = await active(vim)
    with pytest.raises(PermanentVimError, match="ACTIVE"):
        await vim.start_server(server.id)
    await vim.stop_server(server.id)
    assert (await settle(vim, server.id, ServerStatus.SHUTOFF)).status is ServerStatus.SHUTOFF
    with pytest.raises(PermanentVimError, match="SHUTOFF"):
        await vim.reboot_server(server.id)
    with pytest.raises(PermanentVimError, match="SHUTOFF"):
        await vim.live_migrate_server(server.id)
    await vim.start_server(server.id)
    assert (await settle(vim, server.id, ServerStatus.ACTIVE)).status is ServerStatus.ACTIVE


async def test_placement_hints_zone_host_and_hard_group_policies(make_vim: MakeVim) -> None:
    vim = await make_vim(
        SimHost("a1", 8, 16384, zone="az-a"),
        SimHost("a2", 8, 16384, zone="az-a"),
        SimHost("b1", 8, 16384, zone="az-b"),
    )
    in_b = await vim.create_server(await spec(vim, "b", availability_zone="az-b"))
    assert (in_b.host, in_b.zone) == ("b1", "az-b")
    on_a2 = await vim.create_server(await spec(vim, "a2", host="a2"))
    assert on_a2.host == "a2"
    with pytest.raises(NoValidHost, match="zone az-c"):
        await vim.create_server(await spec(vim, "c", availability_zone="az-c"))
    apart = await vim.create_server_group("apart", GroupPolicy.ANTI_AFFINITY)
    hosts = {
        (await vim.create_server(await spec(vim, f"x{i}", server_group=apart.id))).host
        for i in range(3)
    }
    assert hosts == {"a1", "a2", "b1"}
    with pytest.raises(NoValidHost):
        await vim.create_server(await spec(vim, "x3", server_group=apart.id))
    together = await vim.create_server_group("together", GroupPolicy.AFFINITY)
    first = await vim.create_server(await spec(vim, "t0", server_group=together.id))
    second = await vim.create_server(await spec(vim, "t1", server_group=together.id))
    assert first.host == second.host
    await vim.delete_server_group(apart.id)
    with pytest.raises(NotFound):
        await vim.delete_server_group(apart.id)
    with pytest.raises(NotFound):
        await vim.create_server(await spec(vim, "y", server_group=apart.id))


async def test_servers_are_found_by_their_metadata(make_vim: MakeVim) -> None:
    vim = await make_vim()
    mine = await vim.create_server(await spec(vim, "m", metadata={"vnf": "v1", "vnfc": "c1"}))
    await vim.create_server(await spec(vim, "o", metadata={"vnf": "v2", "vnfc": "c1"}))
    found = await vim.list_servers(metadata={"vnf": "v1"})
    assert [s.id for s in found] == [mine.id]
    assert await vim.list_servers(metadata={"vnf": "v1", "vnfc": "c2"}) == []
    assert len(await vim.list_servers()) == 2


async def test_ports_get_addresses_outlive_their_server_and_hold_their_network(
    make_vim: MakeVim,
) -> None:
    vim = await make_vim()
    net = await vim.create_network("n", metadata={"vnf": "v1"})
    subnet = await vim.create_subnet(net.id, "n-sub", "10.1.0.0/24")
    port = await vim.create_port(PortSpec("p", net.id, metadata={"vnf": "v1"}))
    assert port.address == "10.1.0.2"
    server = await vim.create_server(await spec(vim, ports=(port.id,)))
    (attached,) = await vim.list_ports(server_id=server.id)
    assert (attached.id, attached.server_id) == (port.id, server.id)
    with pytest.raises(PermanentVimError, match="in use"):
        await vim.create_server(await spec(vim, "second", ports=(port.id,)))
    await vim.delete_server(server.id)
    (left,) = await vim.list_ports(metadata={"vnf": "v1"})
    assert left.server_id is None, "a deleted server's port stays, detached"
    with pytest.raises(PermanentVimError, match="still has port"):
        await vim.delete_network(net.id)
    with pytest.raises(PermanentVimError, match="held by port"):
        await vim.delete_subnet(subnet.id)
    await vim.delete_port(port.id)
    await vim.delete_network(net.id)
    assert await vim.list_networks() == []
    assert await vim.list_subnets() == [], "a network's subnets go with it"
    with pytest.raises(NotFound):
        await vim.create_port(PortSpec("p", net.id))


async def test_an_image_name_and_version_map_to_an_image(make_vim: MakeVim) -> None:
    vim = await make_vim()
    one = await vim.add_image("fw", "1.0")
    two = await vim.add_image("fw", "2.0")
    assert await vim.add_image("fw", "1.0") == one
    assert await vim.find_image("fw", "1.0") == one
    assert await vim.find_image("fw") == two, "no version: the newest"
    with pytest.raises(NotFound, match=r"fw version 3\.0"):
        await vim.find_image("fw", "3.0")
    assert {i.id for i in await vim.list_images()} >= {one.id, two.id}
    with pytest.raises(PermanentVimError, match="does not exist"):
        await vim.create_server(ServerSpec("s", SMALL, image="fw"))


async def test_quotas_are_enforced_and_reported(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 64, 65536))
    await vim.set_quotas(QuotaRec(instances=2, vcpus=3, ports=1, networks=1))
    await vim.create_server(await spec(vim, "a"))
    with pytest.raises(QuotaExceeded, match="vCPUs"):
        await vim.create_server(await spec(vim, "b"))  # 2 + 2 > 3
    net = await vim.create_network("n")
    with pytest.raises(QuotaExceeded, match="networks"):
        await vim.create_network("n2")
    await vim.create_port(PortSpec("p", net.id))
    with pytest.raises(QuotaExceeded, match="ports"):
        await vim.create_port(PortSpec("p2", net.id))
    limits = await vim.get_limits()
    assert (limits.instances.limit, limits.instances.used) == (2, 1)
    assert (limits.vcpus.limit, limits.vcpus.used) == (3, 2)
    assert limits.ram_mb.limit is None
    assert isinstance(QuotaExceeded("x"), PermanentVimError)


async def test_hosts_report_capacity_disk_and_state(make_vim: MakeVim) -> None:
    vim = await make_vim(SimHost("h1", 8, 16384, disk_gb=100))
    await vim.create_server(ServerSpec("s", Flavor("d", 1, 512, disk_gb=40), await image_id(vim)))
    await vim.force_down_host("h1")
    (host,) = await vim.list_hosts()
    assert (host.disk_gb, host.disk_used_gb, host.forced_down) == (100, 40, True)
    assert not host.schedulable
    assert host.fits(Flavor("d", 1, 512, disk_gb=60))
    assert not host.fits(Flavor("d", 1, 512, disk_gb=61))
    with pytest.raises(NoValidHost):
        await vim.create_server(await spec(vim))
    await vim.restore_host("h1")
    assert (await vim.list_hosts())[0].schedulable


async def test_an_outage_fails_every_call_reads_included(make_vim: MakeVim) -> None:
    vim = await make_vim()
    await vim.fail_next("any", temporary=True, count=2)
    with pytest.raises(TemporaryVimError):
        await vim.list_servers()
    with pytest.raises(TemporaryVimError):
        await vim.telemetry()
    assert await vim.list_servers() == []


def _argument(parameter: inspect.Parameter) -> Any:
    by_name = {"spec": ServerSpec("s", SMALL, "img"), "flavor": SMALL}
    if parameter.name in by_name:
        return by_name[parameter.name]
    if "PortSpec" in str(parameter.annotation):
        return PortSpec("p", "n")
    if "GroupPolicy" in str(parameter.annotation):
        return GroupPolicy.AFFINITY
    return "x"


async def test_timed_vim_puts_a_deadline_on_every_driver_method(make_vim: MakeVim) -> None:
    vim = await make_vim()
    timed = TimedVim(vim, call_timeout_s=0.05, retry_after_s=3.0)
    methods = [
        name
        for name, _ in inspect.getmembers(VimDriver, inspect.isfunction)
        if not name.startswith("_") and name != "aclose"
    ]
    assert len(methods) > 20
    for name in methods:
        await vim.hang_next("any")
        method = getattr(timed, name)
        positional = [
            _argument(p)
            for p in inspect.signature(method).parameters.values()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is p.empty
        ]
        with pytest.raises(TemporaryVimError, match="did not answer") as exc:
            await method(*positional)
        assert exc.value.retry_after == 3.0, name


async def test_every_instance_of_one_cloud_sees_the_same_state(
    redis: Any, keys: Keys, make_vim: MakeVim
) -> None:
    here = await make_vim(SimHost("h1", 64, 65536), SimHost("h2", 64, 65536), seed=1)
    # Another process builds the same cloud from other settings: the stored one wins.
    there = SimulatedVim(CLOCK, redis, keys, [SimHost("other", 1, 1)], name=here.name)
    assert [h.name for h in await there.list_hosts()] == ["h1", "h2"]
    # Concurrent changes from both are all kept, with distinct addresses.
    image = await image_id(here)
    made = await asyncio.gather(
        *(
            vim.create_server(ServerSpec(f"s{i}", SMALL, image))
            for i in range(10)
            for vim in (here, there)
        )
    )
    assert len({s.id for s in await here.list_servers()}) == 20
    assert len({s.address for s in made}) == 20
    # A fault injected through one instance hits the other's calls.
    await here.crash_server(made[0].id)
    assert (await there.get_server(made[0].id)).status is ServerStatus.ERROR
    await there.fail_next("delete", temporary=True)
    with pytest.raises(TemporaryVimError):
        await here.delete_server(made[1].id)
    assert await there.clear_failures() == 0
    await here.fail_next("any", temporary=False, count=2)
    assert await there.clear_failures() == 2


async def test_the_call_log_holds_every_call_served_by_any_instance_once(
    redis: Any, keys: Keys, make_vim: MakeVim
) -> None:
    here = await make_vim()
    there = SimulatedVim(CLOCK, redis, keys, [SimHost("other", 1, 1)], name=here.name)
    image = await image_id(here)
    made = await asyncio.gather(
        *(vim.create_server(ServerSpec(f"s{i}", SMALL, image, {"op": f"op-{i}"}))
          for i, vim in enumerate((here, there, here)))
    )  # fmt: skip
    await settle(here, made[0].id, ServerStatus.ACTIVE)
    await there.reboot_server(made[0].id, hard=True)
    await here.fail_next("delete", temporary=True)
    with pytest.raises(TemporaryVimError):
        await there.delete_server(made[1].id)
    await there.delete_server(made[1].id)

    calls = await here.calls()
    assert {(c.operation, c.subject, c.error) for c in calls[:3]} == {
        ("create", s.id, None) for s in made
    }
    assert [(c.operation, c.subject, c.error) for c in calls[3:]] == [
        ("reboot", made[0].id, None),
        ("delete", made[1].id, "injected temporary failure"),
        ("delete", made[1].id, None),
    ]
    assert sorted(c.metadata["op"] for c in await there.calls("create")) == [
        "op-0", "op-1", "op-2"
    ]  # fmt: skip
    assert all(c.at <= CLOCK.now() for c in calls)
