"""The simulated VIM: scheduling, lifecycles in clock time, injected failures, telemetry."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from bus.clock import ScaledClock
from mano_core.errors import NotFound, PermanentVimError, TemporaryVimError
from mano_core.vim.base import (
    HOST_CPU,
    HOST_DEGRADED,
    HOST_UP,
    SERVER_CPU,
    SERVER_UP,
    Flavor,
    HostState,
    ServerInfo,
    ServerSpec,
    ServerStatus,
    VimDriver,
)
from mano_core.vim.simulated import SimHost, SimulatedVim

SMALL = Flavor("small", vcpus=2, ram_mb=2048)
CLOCK = ScaledClock(speed=200)
"""Boot (20 s), reboot (10 s) and migration (8 s) take 0.1 s wall or less."""


def make_vim(
    *hosts: SimHost, address_base: str | None = None, seed: int | None = None
) -> SimulatedVim:
    hosts = hosts or (SimHost("h1", 8, 16384), SimHost("h2", 8, 16384))
    return SimulatedVim(CLOCK, hosts, address_base=address_base, seed=seed)


def spec(name: str = "s", *, different_host: tuple[str, ...] = ()) -> ServerSpec:
    return ServerSpec(name=name, flavor=SMALL, image="img", different_host=different_host)


async def settle(vim: SimulatedVim, server_id: str, until: ServerStatus) -> ServerInfo:
    """Wait in clock time (at most 60 s of it) for the server to reach ``until``."""
    deadline = CLOCK.now() + 60
    while True:
        server = await vim.get_server(server_id)
        if server.status is until or CLOCK.now() > deadline:
            return server
        await CLOCK.sleep(1.0)


async def active(vim: SimulatedVim, name: str = "s", **kw: tuple[str, ...]) -> ServerInfo:
    created = await vim.create_server(spec(name, **kw))
    return await settle(vim, created.id, ServerStatus.ACTIVE)


def test_it_implements_the_driver_protocol() -> None:
    driver: VimDriver = make_vim()
    assert driver.name == "sim"


async def test_a_server_builds_then_becomes_active() -> None:
    vim = make_vim()
    created = await vim.create_server(spec())
    assert created.status is ServerStatus.BUILD
    server = await settle(vim, created.id, ServerStatus.ACTIVE)
    assert server.status is ServerStatus.ACTIVE
    assert server.host in {"h1", "h2"}


async def test_servers_get_distinct_loopback_addresses_outside_127_0_0() -> None:
    vim = make_vim()
    addresses = [(await vim.create_server(spec(f"s{i}"))).address for i in range(5)]
    assert len(set(addresses)) == 5
    for address in addresses:
        assert address is not None
        ip = ipaddress.IPv4Address(address)
        assert ip.is_loopback
        assert not address.startswith("127.0.0.")


async def test_an_address_base_is_followed() -> None:
    vim = make_vim(address_base="127.42.7.0")
    first = await vim.create_server(spec("a"))
    second = await vim.create_server(spec("b"))
    assert (first.address, second.address) == ("127.42.7.1", "127.42.7.2")


async def test_the_scheduler_spreads_servers_kept_apart() -> None:
    vim = make_vim(SimHost("h1", 16, 32768), SimHost("h2", 4, 4096))
    first = await vim.create_server(spec("a"))
    # h1 has more free vCPUs, but anti-affinity sends the second server to h2.
    second = await vim.create_server(spec("b", different_host=(first.id,)))
    assert first.host == "h1"
    assert second.host == "h2"


async def test_the_scheduler_prefers_the_host_with_most_free_vcpus() -> None:
    vim = make_vim(SimHost("h1", 4, 16384), SimHost("h2", 8, 16384))
    placed = [(await vim.create_server(spec(f"s{i}"))).host for i in range(3)]
    assert placed == ["h2", "h2", "h1"]


async def test_no_valid_host_is_a_permanent_error() -> None:
    vim = make_vim(SimHost("h1", 4, 4096))
    await vim.create_server(spec("a"))
    await vim.create_server(spec("b"))
    with pytest.raises(PermanentVimError, match="no valid host"):
        await vim.create_server(spec("c"))


async def test_degraded_down_and_disabled_hosts_take_no_new_servers() -> None:
    vim = make_vim(SimHost("h1", 8, 16384), SimHost("h2", 8, 16384), SimHost("h3", 2, 2048))
    vim.degrade_host("h1")
    vim.fail_host("h2")
    vim.disable_host("h3")
    with pytest.raises(PermanentVimError, match="no valid host"):
        await vim.create_server(spec())
    vim.restore_host("h1")
    assert (await vim.create_server(spec())).host == "h1"


async def test_deleting_frees_the_capacity() -> None:
    vim = make_vim(SimHost("h1", 2, 2048))
    server = await vim.create_server(spec("a"))
    await vim.delete_server(server.id)
    assert vim.servers() == []
    assert (await vim.create_server(spec("b"))).host == "h1"
    with pytest.raises(NotFound):
        await vim.delete_server(server.id)


async def test_a_crashed_server_comes_back_with_a_hard_reboot() -> None:
    vim = make_vim()
    server = await active(vim)
    vim.crash_server(server.id)
    crashed = await vim.get_server(server.id)
    assert (crashed.status, crashed.fault) == (ServerStatus.ERROR, "guest crashed (injected)")
    with pytest.raises(PermanentVimError, match="hard reboot"):
        await vim.reboot_server(server.id)
    await vim.reboot_server(server.id, hard=True)
    assert (await vim.get_server(server.id)).status is ServerStatus.HARD_REBOOT
    back = await settle(vim, server.id, ServerStatus.ACTIVE)
    assert (back.status, back.fault, back.host) == (ServerStatus.ACTIVE, None, server.host)


async def test_a_server_on_a_down_host_cannot_be_rebooted_in_place() -> None:
    vim = make_vim()
    server = await active(vim)
    assert server.host is not None
    vim.fail_host(server.host)
    failed = await vim.get_server(server.id)
    assert failed.status is ServerStatus.ERROR
    assert failed.fault == f"host {server.host} is down"
    with pytest.raises(PermanentVimError, match="is down"):
        await vim.reboot_server(server.id, hard=True)


async def test_a_rebuild_replaces_the_image_and_ends_active() -> None:
    vim = make_vim()
    server = await active(vim)
    vim.crash_server(server.id)
    await vim.rebuild_server(server.id, image="img-2")
    assert (await vim.get_server(server.id)).status is ServerStatus.REBUILD
    rebuilt = await settle(vim, server.id, ServerStatus.ACTIVE)
    assert (rebuilt.status, rebuilt.image) == (ServerStatus.ACTIVE, "img-2")


async def test_a_busy_server_refuses_a_second_task_for_now() -> None:
    vim = make_vim()
    building = await vim.create_server(spec())
    with pytest.raises(TemporaryVimError) as exc:
        await vim.reboot_server(building.id, hard=True)
    assert exc.value.retry_after > 0


async def test_live_migration_moves_the_server_and_keeps_its_address() -> None:
    vim = make_vim(SimHost("h1", 8, 16384), SimHost("h2", 8, 16384), SimHost("h3", 8, 16384))
    server = await active(vim)
    assert server.host is not None
    vim.degrade_host("h2" if server.host != "h2" else "h3")
    await vim.migrate_server(server.id)
    moving = await vim.get_server(server.id)
    assert (moving.status, moving.host) == (ServerStatus.MIGRATING, server.host)
    moved = await settle(vim, server.id, ServerStatus.ACTIVE)
    healthy = {"h1", "h2", "h3"} - {server.host} - {h.name for h in vim.hosts() if h.degraded}
    assert moved.host in healthy
    assert moved.address == server.address


async def test_migration_to_a_named_host_and_its_refusals() -> None:
    vim = make_vim(SimHost("h1", 8, 16384), SimHost("h2", 8, 16384), SimHost("h3", 8, 16384))
    server = await active(vim)
    others = sorted({"h1", "h2", "h3"} - {server.host})
    with pytest.raises(PermanentVimError, match="already on host"):
        await vim.migrate_server(server.id, destination=server.host)
    vim.degrade_host(others[0])
    with pytest.raises(PermanentVimError, match="cannot take"):
        await vim.migrate_server(server.id, destination=others[0])
    with pytest.raises(NotFound):
        await vim.migrate_server(server.id, destination="nowhere")
    await vim.migrate_server(server.id, destination=others[1], live=False)
    assert (await vim.get_server(server.id)).status is ServerStatus.RESIZE
    assert (await settle(vim, server.id, ServerStatus.ACTIVE)).host == others[1]


async def test_migration_with_nowhere_to_go_is_permanent() -> None:
    vim = make_vim(SimHost("h1", 8, 16384))
    server = await active(vim)
    with pytest.raises(PermanentVimError, match="no valid host"):
        await vim.migrate_server(server.id)


async def test_injected_failures_hit_the_next_calls_only() -> None:
    vim = make_vim()
    vim.fail_next("create", temporary=True, count=2, retry_after=7.0)
    for _ in range(2):
        with pytest.raises(TemporaryVimError) as exc:
            await vim.create_server(spec())
        assert exc.value.retry_after == 7.0
    server = await vim.create_server(spec())
    vim.fail_next("delete", temporary=False)
    with pytest.raises(PermanentVimError, match="injected"):
        await vim.delete_server(server.id)
    await vim.delete_server(server.id)
    assert vim.servers() == []
    with pytest.raises(ValueError, match="unknown operation"):
        vim.fail_next("resize", temporary=True)


async def test_a_hung_call_answers_nothing_and_changes_nothing_until_given_up() -> None:
    vim = make_vim()
    hung = vim.hang_next("create")
    call = asyncio.create_task(vim.create_server(spec("hung")))
    await asyncio.wait_for(hung.wait(), 5)
    done, _ = await asyncio.wait([call], timeout=0.2)
    assert not done, "a hung call answered"
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert vim.servers() == []
    # Only the next call hangs.
    assert (await vim.create_server(spec("next"))).name == "next"
    with pytest.raises(ValueError, match="unknown operation"):
        vim.hang_next("resize")


async def test_telemetry_reports_servers_and_hosts() -> None:
    vim = make_vim(SimHost("h1", 4, 8192), SimHost("h2", 4, 8192))
    server = await active(vim)
    assert server.host is not None
    other = "h2" if server.host == "h1" else "h1"
    vim.set_server_cpu(server.id, 80.0)
    vim.degrade_host(other)
    points = {(p.kpi, p.labels.get("server") or p.labels["host"]): p for p in await vim.telemetry()}
    assert points[(SERVER_CPU, server.id)].value == 80.0
    assert points[(SERVER_UP, server.id)].value == 1.0
    assert points[(SERVER_UP, server.id)].labels["status"] == "ACTIVE"
    # 80 % of 2 vCPUs on a 4-vCPU host.
    assert points[(HOST_CPU, server.host)].value == pytest.approx(40.0)
    assert points[(HOST_DEGRADED, other)].value == 1.0
    assert points[(HOST_UP, other)].value == 1.0
    vim.crash_server(server.id)
    vim.fail_host(other)
    points = {(p.kpi, p.labels.get("server") or p.labels["host"]): p for p in await vim.telemetry()}
    assert points[(SERVER_UP, server.id)].value == 0.0
    assert points[(SERVER_CPU, server.id)].value == 0.0
    assert points[(HOST_UP, other)].value == 0.0


async def test_hosts_report_their_load_and_servers() -> None:
    vim = make_vim(SimHost("h1", 8, 16384))
    server = await vim.create_server(spec())
    vim.fail_host("h1")
    (host,) = vim.hosts()
    assert (host.state, host.vcpus_used, host.ram_used_mb) == (HostState.DOWN, 2, 2048)
    assert host.servers == (server.id,)


async def test_a_seed_makes_server_ids_reproducible() -> None:
    one, two = make_vim(seed=7), make_vim(seed=7)
    assert (await one.create_server(spec())).id == (await two.create_server(spec())).id
