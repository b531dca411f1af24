"""The VIM-driver contract: what the VNFM relies on, the same on every driver.

Each test runs on the simulated VIM and, in the OpenStack tier
(``scripts/test-openstack``), on :class:`~mano_core.vim.openstack.OpenStackVim`
against a real OpenStack (Nova with the fake virt driver on two hosts).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bus.keys import Keys
from mano_core.errors import NotFound, PermanentVimError, QuotaExceeded, TemporaryVimError
from mano_core.vim.base import (
    HOST_DEGRADED,
    HOST_UP,
    HOST_VCPUS,
    HOST_VCPUS_USED,
    HostState,
    ServerInfo,
    ServerSpec,
    ServerStatus,
)
from mano_core.vim.timed import TimedVim
from tests.vim_backends import (
    Backend,
    OpenStackBackend,
    SimulatedBackend,
    eventually,
    wait_server,
)


@pytest.fixture(scope="module")
def os_operator() -> Iterator[Any]:
    from tests.openstack_cloud import Operator, connect_admin

    conn = connect_admin()
    yield Operator(conn)
    conn.close()


@pytest.fixture(params=["simulated", pytest.param("openstack", marks=pytest.mark.openstack)])
async def backend(request: pytest.FixtureRequest, redis: Any, keys: Keys) -> AsyncIterator[Backend]:
    chosen: Backend
    if request.param == "simulated":
        chosen = await SimulatedBackend.create(redis, keys)
    else:
        from mano_core.vim.openstack import OpenStackVim
        from tests.openstack_cloud import ADMIN_CLOUD, NETWORK

        operator = request.getfixturevalue("os_operator")
        vim = await asyncio.to_thread(
            OpenStackVim.connect, "openstack", cloud=ADMIN_CLOUD, networks=[NETWORK]
        )
        chosen = await asyncio.to_thread(OpenStackBackend, vim, operator)
    try:
        yield chosen
    finally:
        await chosen.cleanup()
        await chosen.vim.aclose()


def spec(backend: Backend, name: str, **options: Any) -> ServerSpec:
    metadata = {"test-run": backend.run, "vnfc": name, **options.pop("metadata", {})}
    return ServerSpec(
        name=f"contract-{name}",
        flavor=backend.flavor,
        image=backend.image,
        metadata=metadata,
        **options,
    )


def status_is(*wanted: ServerStatus) -> Any:
    def check(server: ServerInfo) -> bool:
        assert server.status is not ServerStatus.ERROR, server
        return server.status in wanted

    check.__name__ = "/".join(wanted)
    return check


async def active_server(backend: Backend, name: str, **options: Any) -> ServerInfo:
    created = await backend.vim.create_server(spec(backend, name, **options))
    return await wait_server(backend.vim, created.id, status_is(ServerStatus.ACTIVE), "ACTIVE")


async def test_create_then_delete(backend: Backend) -> None:
    wanted = spec(backend, "create", metadata={"vnf": "v1"})
    created = await backend.vim.create_server(wanted)
    assert created.status in (ServerStatus.BUILD, ServerStatus.ACTIVE)
    server = await wait_server(backend.vim, created.id, status_is(ServerStatus.ACTIVE), "ACTIVE")
    assert server.name == wanted.name
    assert server.image == backend.image
    assert server.flavor.name == backend.flavor.name
    assert server.flavor.vcpus == backend.flavor.vcpus
    assert wanted.metadata.items() <= server.metadata.items()
    assert server.host in backend.hosts
    assert server.address is not None
    assert server.id in {s.id for s in await backend.vim.list_servers()}
    allocation = {
        p.kpi: p.value
        for p in await backend.vim.telemetry()
        if p.labels.get("host") == server.host and p.kpi in (HOST_VCPUS, HOST_VCPUS_USED)
    }
    assert allocation[HOST_VCPUS] > 0
    assert allocation[HOST_VCPUS_USED] >= backend.flavor.vcpus

    await backend.vim.delete_server(server.id)

    async def gone() -> bool:
        try:
            await backend.vim.get_server(server.id)
        except NotFound:
            return True
        return False

    await eventually(gone, "deleted")
    with pytest.raises(NotFound):
        await backend.vim.delete_server(server.id)


async def test_soft_and_hard_reboot(backend: Backend) -> None:
    server = await active_server(backend, "reboot")
    await backend.vim.reboot_server(server.id)
    await wait_server(backend.vim, server.id, status_is(ServerStatus.ACTIVE), "ACTIVE")
    await backend.vim.reboot_server(server.id, hard=True)
    rebooted = await wait_server(backend.vim, server.id, status_is(ServerStatus.ACTIVE), "ACTIVE")
    assert rebooted.id == server.id
    assert rebooted.address == server.address

    # A soft reboot needs a running guest: refused for good on a stopped server.
    await backend.vim.stop_server(server.id)
    await wait_server(backend.vim, server.id, status_is(ServerStatus.SHUTOFF), "SHUTOFF")
    with pytest.raises(PermanentVimError):
        await backend.vim.reboot_server(server.id)


async def test_rebuild_with_another_image(backend: Backend) -> None:
    server = await active_server(backend, "rebuild")
    await backend.vim.rebuild_server(server.id, image=backend.other_image)

    def rebuilt(current: ServerInfo) -> bool:
        return status_is(ServerStatus.ACTIVE)(current) and current.image == backend.other_image

    done = await wait_server(backend.vim, server.id, rebuilt, "rebuilt")
    assert (done.id, done.address, done.host) == (server.id, server.address, server.host)


@pytest.mark.parametrize("keep", [True, False], ids=["confirm", "revert"])
async def test_resize(backend: Backend, keep: bool) -> None:
    server = await active_server(backend, f"resize-{keep}")
    await backend.vim.resize_server(server.id, backend.bigger)
    waiting = await wait_server(
        backend.vim, server.id, status_is(ServerStatus.VERIFY_RESIZE), "VERIFY_RESIZE"
    )
    assert waiting.flavor.name == backend.bigger.name
    if keep:
        await backend.vim.confirm_resize(server.id)
    else:
        await backend.vim.revert_resize(server.id)

    wanted = backend.bigger if keep else backend.flavor

    def settled(current: ServerInfo) -> bool:
        return status_is(ServerStatus.ACTIVE)(current) and current.flavor.name == wanted.name

    done = await wait_server(backend.vim, server.id, settled, f"ACTIVE as {wanted.name}")
    assert done.flavor.ram_mb == wanted.ram_mb


async def test_stop_then_start(backend: Backend) -> None:
    server = await active_server(backend, "power")
    await backend.vim.stop_server(server.id)
    await wait_server(backend.vim, server.id, status_is(ServerStatus.SHUTOFF), "SHUTOFF")
    await backend.vim.start_server(server.id)
    started = await wait_server(backend.vim, server.id, status_is(ServerStatus.ACTIVE), "ACTIVE")
    assert started.host == server.host


async def test_live_migration_between_the_two_hosts(backend: Backend) -> None:
    first, second = backend.hosts
    server = await active_server(backend, "live", host=first)
    assert server.host == first
    await backend.vim.live_migrate_server(server.id, host=second)

    def arrived(current: ServerInfo) -> bool:
        return status_is(ServerStatus.ACTIVE)(current) and current.host == second

    moved = await wait_server(backend.vim, server.id, arrived, f"ACTIVE on {second}")
    assert moved.address == server.address


async def test_cold_migration_with_confirm(backend: Backend) -> None:
    first, second = backend.hosts
    server = await active_server(backend, "cold", host=first)
    await backend.vim.migrate_server(server.id)
    waiting = await wait_server(
        backend.vim, server.id, status_is(ServerStatus.VERIFY_RESIZE), "VERIFY_RESIZE"
    )
    assert waiting.host == second
    await backend.vim.confirm_resize(server.id)
    done = await wait_server(backend.vim, server.id, status_is(ServerStatus.ACTIVE), "ACTIVE")
    assert done.host == second


async def test_found_by_metadata_after_a_lost_reply(backend: Backend) -> None:
    wanted = spec(backend, "lost", metadata={"vnf": f"lost-{backend.run}"})
    # The create is sent, but its caller gives up before the reply (a deadline far
    # shorter than the API's answer): the server may exist though nobody saw its id.
    impatient = TimedVim(backend.vim, call_timeout_s=0.001)
    with contextlib.suppress(TemporaryVimError):
        await impatient.create_server(wanted)

    async def found() -> list[ServerInfo]:
        return await backend.vim.list_servers(metadata={"vnf": f"lost-{backend.run}"})

    servers = await eventually(found, "found by metadata")
    assert [s.name for s in servers] == [wanted.name]
    others = await backend.vim.list_servers(metadata={"vnf": f"lost-{backend.run}", "vnfc": "x"})
    assert others == []


@pytest.mark.parametrize("fault", ["forced_down", "disabled"])
async def test_host_status_after_its_compute_service_is_forced_down_or_disabled(
    backend: Backend, fault: str
) -> None:
    """Either is a host fault (degraded, vim_host_degraded = 1) the loop acts on."""
    first, second = backend.hosts
    await (backend.force_down(first) if fault == "forced_down" else backend.disable(first))
    try:
        hosts = {h.name: h for h in await backend.vim.list_hosts()}
        fenced, healthy = hosts[first], hosts[second]
        if fault == "forced_down":
            assert fenced.forced_down
            assert fenced.state is HostState.DOWN
        else:
            assert (fenced.enabled, fenced.forced_down) == (False, False)
            assert fenced.state is HostState.UP  # its servers keep running
        assert fenced.degraded
        assert not fenced.schedulable
        assert healthy.schedulable and not healthy.forced_down
        assert fenced.vcpus > 0 and fenced.ram_mb > 0
        points = {
            (p.kpi, p.labels.get("host")): p.value
            for p in await backend.vim.telemetry()
            if p.kpi in (HOST_UP, HOST_DEGRADED)
        }
        assert points[(HOST_UP, first)] == 0.0
        assert points[(HOST_DEGRADED, first)] == 1.0
        assert points[(HOST_UP, second)] == 1.0
        assert points[(HOST_DEGRADED, second)] == 0.0
    finally:
        await backend.restore(first)
    hosts = {h.name: h for h in await backend.vim.list_hosts()}
    assert hosts[first].schedulable


async def test_quota_exceeded_is_a_permanent_error(backend: Backend) -> None:
    server = await active_server(backend, "quota")
    used = (await backend.vim.get_limits()).instances.used
    assert used >= 1
    await backend.limit_instances(used)
    try:
        with pytest.raises(QuotaExceeded) as refused:
            await backend.vim.create_server(spec(backend, "over-quota"))
        assert isinstance(refused.value, PermanentVimError)
        limits = await backend.vim.get_limits()
        assert limits.instances.limit == used
        assert not limits.instances.allows(1)
    finally:
        await backend.limit_instances(None)
    assert [s.name for s in await backend.vim.list_servers(metadata={"test-run": backend.run})] == [
        server.name
    ]


async def test_missing_server_is_not_found(backend: Backend) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(NotFound):
        await backend.vim.get_server(missing)
    with pytest.raises(NotFound):
        await backend.vim.reboot_server(missing)
