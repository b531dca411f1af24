"""Every VNFM operation on simulated VIMs in Redis, with real hooks over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bus.keys import Keys
from mano_core.errors import GrantRefused, InvalidRequest
from mano_core.grants import Grant, GrantRequest, Placement
from mano_core.models import ComputeFlavour, VnfInstance, VnfState
from mano_core.vim.base import ServerInfo, ServerStatus, VimDriver
from mano_core.vnfd import RecoveryLevel, parse_vnfd
from tests.vnfm_support import World, make_world, states


@pytest.fixture
async def world(redis: Any, keys: Keys) -> AsyncIterator[World]:
    async with make_world(redis, keys) as w:
        yield w


async def test_instantiate_builds_networks_ports_and_servers_and_runs_day1(world: World) -> None:
    vnf = await world.deploy(level="small", ext_networks={})
    assert [c.vdu for c in vnf.vnfcs] == ["db", "web", "web"]
    [network] = await world.sim.list_networks(metadata={"vnf": vnf.id})
    [subnet] = await world.sim.list_subnets(network_id=network.id)
    assert subnet.cidr == "10.9.0.0/24"
    for vnfc in vnf.vnfcs:
        ports = await world.sim.list_ports(server_id=vnfc.server_id)
        # web-north is exposed, but this instantiation connected it to nothing.
        assert [p.metadata["cp"] for p in ports] == [f"{vnfc.vdu}-internal"]
        assert ports[0].address is not None and ports[0].address.startswith("10.9.0.")
    assert sorted(world.hooks.paths("/day1")) == sorted(c.address or "" for c in vnf.vnfcs)


async def test_an_external_connection_point_gets_a_port_on_the_given_network(
    world: World,
) -> None:
    north = await world.sim.create_network("ns-north")
    vnf = await world.deploy(ext_networks={"north": north.id})
    web = vnf.vnfcs_of("web")[0]
    ports = {p.metadata["cp"]: p for p in await world.sim.list_ports(server_id=web.server_id)}
    assert ports["web-north"].network_id == north.id
    with pytest.raises(InvalidRequest, match="no external connection point south"):
        await world.vnfm.instantiate("app", "x", ext_networks={"south": north.id})


async def test_terminate_drains_then_releases_every_resource(world: World) -> None:
    vnf = await world.deploy(level="big")
    op = await world.vnfm.terminate(vnf.id)
    assert op.state == "COMPLETED", op.error
    assert sorted(world.hooks.paths("/drain")) == sorted(
        c.address or "" for c in vnf.vnfcs_of("web")
    )
    assert await world.leftovers(vnf.id) == {
        "servers": [], "ports": [], "networks": [], "groups": []
    }  # fmt: skip
    assert await world.inventory.find(vnf.id) is None


async def test_scale_in_drains_its_victims_before_deleting_them(world: World) -> None:
    vnf = await world.deploy()
    out = await world.vnfm.scale(vnf.id, "web-scale", "out", 2)
    assert out.state == "COMPLETED", out.error
    grown = await world.vnf(vnf.id)
    newest = sorted(grown.vnfcs_of("web"), key=lambda c: c.created_at)[-2:]
    back = await world.vnfm.scale(vnf.id, "web-scale", "in", 2)
    assert back.state == "COMPLETED", back.error
    assert set(back.result["removed"]) == {c.id for c in newest}
    assert sorted(world.hooks.paths("/drain")) == sorted(c.address or "" for c in newest)
    for vnfc in newest:  # their ports went with them
        assert await world.sim.list_ports(metadata={"vnf": vnf.id, "vnfc": vnfc.id}) == []


async def test_scale_in_removes_the_vnfcs_the_request_names(world: World) -> None:
    vnf = await world.deploy(level="big")
    oldest = sorted(vnf.vnfcs_of("web"), key=lambda c: c.created_at)[0]
    op = await world.vnfm.scale(vnf.id, "web-scale", "in", 1, vnfc_ids=[oldest.id])
    assert op.state == "COMPLETED", op.error
    assert op.result["removed"] == [oldest.id]
    with pytest.raises(InvalidRequest, match="nope"):
        await world.vnfm.scale(vnf.id, "web-scale", "in", 1, vnfc_ids=["nope"])


async def test_scale_in_by_least_loaded_takes_the_idlest(world: World) -> None:
    vnf = await world.deploy()
    assert (await world.vnfm.scale(vnf.id, "idle-first", "out", 2)).state == "COMPLETED"
    webs = (await world.vnf(vnf.id)).vnfcs_of("web")
    load = dict(zip((c.server_id for c in webs), (90.0, 3.0, 50.0, 40.0), strict=True))
    await world.sim.set_server_cpu(load)
    op = await world.vnfm.scale(vnf.id, "idle-first", "in", 1)
    assert op.state == "COMPLETED", op.error
    assert op.result["removed"] == [next(c.id for c in webs if load[c.server_id] == 3.0)]


async def test_scale_to_level_and_to_an_instantiation_level(world: World) -> None:
    vnf = await world.deploy(level="small")
    up = await world.vnfm.scale_to_level(vnf.id, instantiation_level="big")
    assert up.state == "COMPLETED", up.error
    after = await world.vnf(vnf.id)
    assert (after.scale_levels["web-scale"], len(after.vnfcs_of("web"))) == (2, 4)
    down = await world.vnfm.scale_to_level(vnf.id, levels={"web-scale": 0})
    assert down.state == "COMPLETED", down.error
    assert len((await world.vnf(vnf.id)).vnfcs_of("web")) == 2
    with pytest.raises(InvalidRequest, match=r"outside 0\.\.4"):
        await world.vnfm.scale_to_level(vnf.id, levels={"web-scale": 9})
    with pytest.raises(InvalidRequest, match="either"):
        await world.vnfm.scale_to_level(vnf.id)


async def test_operate_stops_gracefully_and_starts_again(world: World) -> None:
    vnf = await world.deploy()
    stop = await world.vnfm.operate(vnf.id, "STOPPED")
    assert stop.state == "COMPLETED", stop.error
    assert {s.status for s in await world.servers(vnf.id)} == {ServerStatus.SHUTOFF}
    assert len(world.hooks.paths("/drain")) == len(vnf.vnfcs_of("web"))
    stopped = await world.vnf(vnf.id)
    assert stopped.vnf_state is VnfState.STOPPED
    with pytest.raises(InvalidRequest, match="STOPPED"):
        await world.vnfm.heal(vnf.id, vnf.vnfcs[0].id, RecoveryLevel.HARD_REBOOT)
    with pytest.raises(InvalidRequest, match="STOPPED already"):
        await world.vnfm.operate(vnf.id, "STOPPED")
    start = await world.vnfm.operate(vnf.id, VnfState.STARTED)
    assert start.state == "COMPLETED", start.error
    assert {s.status for s in await world.servers(vnf.id)} == {ServerStatus.ACTIVE}
    assert (await world.vnf(vnf.id)).vnf_state is VnfState.STARTED


async def test_configure_runs_day2_with_the_request_parameters(world: World) -> None:
    vnf = await world.deploy()
    op = await world.vnfm.configure(vnf.id, {"mode": "strict", "rules": 3})
    assert op.state == "COMPLETED", op.error
    day2 = [body for path, _, body in world.hooks.calls if path == "/day2"]
    assert day2 == [{"mode": "strict", "rules": 3}] * 2  # the request's win over the hook's
    assert set(op.result["configured"]) == {c.id for c in vnf.vnfcs_of("web")}
    world.hooks.failing["/day2"] = 500
    failed = await world.vnfm.configure(vnf.id, {})
    assert failed.state == "FAILED"
    assert failed.error is not None and "day2 hook of VNFC" in failed.error
    assert "HTTP 500" in failed.error
    with pytest.raises(InvalidRequest, match=r"no VNFC .* has a day2 hook"):
        await world.vnfm.configure(vnf.id, {}, vnfc_ids=[vnf.vnfcs_of("db")[0].id])


async def test_a_failing_day1_hook_rolls_the_instantiation_back(world: World) -> None:
    world.hooks.failing["/day1"] = 400
    vnf, op = await world.vnfm.instantiate("app", "app-1")
    assert op.state == "ROLLED_BACK"
    assert op.error is not None and "day1 hook" in op.error
    assert await world.leftovers(vnf.id) == {
        "servers": [], "ports": [], "networks": [], "groups": []
    }  # fmt: skip


async def test_migrate_falls_back_to_cold_when_live_is_refused(world: World) -> None:
    vnf = await world.deploy()
    vnfc = vnf.vnfcs[0]
    await world.sim.fail_next("live_migrate", temporary=False)
    op = await world.vnfm.migrate(vnf.id, vnfc.id)
    assert op.state == "COMPLETED", op.error
    assert op.result["mode"] == "cold" and op.result["to_host"] != vnfc.host
    server = await world.sim.get_server(vnfc.server_id)
    assert (server.status, server.host) == (ServerStatus.ACTIVE, op.result["to_host"])
    # Confirmed: the old host holds nothing of it any more.
    old = next(h for h in await world.sim.hosts() if h.name == vnfc.host)
    assert vnfc.server_id not in old.servers and old.vcpus_used == sum(
        1 for c in (await world.vnf(vnf.id)).vnfcs if c.host == old.name
    )


async def test_a_cold_migration_failing_its_check_is_reverted(redis: Any, keys: Keys) -> None:
    async def picky(vim: VimDriver, vnf: VnfInstance, server: ServerInfo) -> str | None:
        return "the VNFC answers no probes there" if server.status == "VERIFY_RESIZE" else None

    async with make_world(redis, keys, health=picky) as w:
        vnf = await w.deploy()
        vnfc = vnf.vnfcs[0]
        op = await w.vnfm.migrate(vnf.id, vnfc.id, live=False)
        assert op.state == "ROLLED_BACK"
        assert op.error is not None and "migration reverted: the VNFC answers no probes" in op.error
        server = await w.sim.get_server(vnfc.server_id)
        assert (server.status, server.host) == (ServerStatus.ACTIVE, vnfc.host)


async def test_change_flavour_resizes_each_vnfc_and_records_the_flavour(world: World) -> None:
    vnf = await world.deploy()
    bigger = ComputeFlavour(vcpus=2, ram_mb=1024, name="web.large")
    op = await world.vnfm.change_flavour(vnf.id, "web", bigger)
    assert op.state == "COMPLETED", op.error
    for vnfc in vnf.vnfcs_of("web"):
        server = await world.sim.get_server(vnfc.server_id)
        assert (server.status, server.flavor.name, server.flavor.vcpus) == (
            ServerStatus.ACTIVE, "web.large", 2,
        )  # fmt: skip
    assert (await world.vnf(vnf.id)).flavours["web"] == bigger
    out = await world.vnfm.scale(vnf.id, "web-scale", "out")
    [new] = [c for c in (await world.vnf(vnf.id)).vnfcs_of("web") if c.id in out.result["added"]]
    assert (await world.sim.get_server(new.server_id)).flavor.name == "web.large"


async def test_a_change_of_flavour_that_fails_is_rolled_back_everywhere(
    redis: Any, keys: Keys
) -> None:
    checks = 0

    async def second_fails(vim: VimDriver, vnf: VnfInstance, server: ServerInfo) -> str | None:
        nonlocal checks
        checks += 1
        return "too slow after the resize" if checks == 2 else None

    async with make_world(redis, keys, health=second_fails) as w:
        vnf = await w.deploy()
        op = await w.vnfm.change_flavour(vnf.id, "web", ComputeFlavour(2, 1024))
        assert op.state == "ROLLED_BACK", op.error
        assert op.error is not None and "reverted: too slow" in op.error
        for vnfc in vnf.vnfcs_of("web"):
            server = await w.sim.get_server(vnfc.server_id)
            assert (server.status, server.flavor.vcpus) == (ServerStatus.ACTIVE, 1)
        assert "web" not in (await w.vnf(vnf.id)).flavours


async def test_change_package_rebuilds_one_vnfc_of_a_vdu_at_a_time(redis: Any, keys: Keys) -> None:
    async with make_world(redis, keys, boot_s=10.0) as w:
        vnf = await w.deploy(level="big")
        webs = {c.server_id for c in vnf.vnfcs_of("web")}
        worst = 0
        upgrade = asyncio.create_task(w.vnfm.change_package(vnf.id, "2.0"))
        while not upgrade.done():
            down = [s for s in await w.sim.servers() if s.id in webs and s.status != "ACTIVE"]
            worst = max(worst, len(down))
            await asyncio.sleep(0.002)
        op = await upgrade
        assert op.state == "COMPLETED", op.error
        assert worst == 1, "more than one VNFC of the VDU was down at once"
        images = {i.id: (i.name, i.version) for i in await w.sim.images()}
        for s in await w.servers(vnf.id):
            assert images[s.image][1] == "2"
        assert (await w.vnf(vnf.id)).vnfd_version == "2.0"


async def test_a_change_of_package_failing_a_check_goes_back_to_the_old_images(
    redis: Any, keys: Keys
) -> None:
    checks = 0

    async def third_fails(vim: VimDriver, vnf: VnfInstance, server: ServerInfo) -> str | None:
        nonlocal checks
        checks += 1
        return "KPIs broke on the new image" if checks == 3 else None

    async with make_world(redis, keys, health=third_fails) as w:
        vnf = await w.deploy(level="big")
        op = await w.vnfm.change_package(vnf.id, "2.0")
        assert op.state == "ROLLED_BACK", op.error
        assert op.error is not None and "KPIs broke" in op.error
        assert len(op.result["rebuilt_back"]) == 3
        images = {i.id: i.version for i in await w.sim.images()}
        assert {images[s.image] for s in await w.servers(vnf.id)} == {"1"}
        assert (await w.vnf(vnf.id)).vnfd_version == "1.0"


class Refusing:
    def __init__(self) -> None:
        self.asked: list[GrantRequest] = []

    async def grant(self, request: GrantRequest) -> Grant:
        self.asked.append(request)
        raise GrantRefused(["site-a is closed for maintenance"])


async def test_a_refused_grant_ends_the_operation_before_anything_exists(
    redis: Any, keys: Keys
) -> None:
    granter = Refusing()
    async with make_world(redis, keys, granter=granter) as w:
        vnf, op = await w.vnfm.instantiate("app", "app-1", level="big")
        assert states(op) == ["STARTING", "ROLLED_BACK"]
        assert op.error == "grant refused: site-a is closed for maintenance"
        [asked] = granter.asked
        assert (asked.vim, len(asked.add), asked.add[0].resources.vcpus) == (None, 5, 1)
        assert await w.leftovers(vnf.id) == {
            "servers": [], "ports": [], "networks": [], "groups": []
        }  # fmt: skip


class Placing:
    """Grants everything on ``site``, each VNFC on ``host``."""

    def __init__(self, site: str, host: str) -> None:
        self.site, self.host = site, host

    async def grant(self, request: GrantRequest) -> Grant:
        placements = {c.vnfc: Placement(host=self.host) for c in request.add}
        return Grant(id=f"g-{request.op_id}", vim=self.site, placements=placements)


async def test_each_vnf_runs_on_the_vim_and_host_its_grant_chose(redis: Any, keys: Keys) -> None:
    granter = Placing("site-b", "site-b-h2")
    async with make_world(redis, keys, sites=("site-a", "site-b"), granter=granter) as w:
        vnf = await w.deploy()
        assert vnf.vim == "site-b"
        assert {c.host for c in vnf.vnfcs} == {"site-b-h2"}
        assert await w.sims["site-a"].servers() == []
        op = await w.vnfm.scale(vnf.id, "web-scale", "out")
        assert op.state == "COMPLETED" and op.grant_id == f"g-{op.id}"
        heal = await w.vnfm.heal(vnf.id, vnf.vnfcs[0].id, RecoveryLevel.RECREATE)
        assert heal.state == "COMPLETED", heal.error
        assert len(await w.sims["site-b"].servers()) == 4
        assert (await w.vnfm.terminate(vnf.id)).state == "COMPLETED"
        assert await w.leftovers(vnf.id) == {
            "servers": [], "ports": [], "networks": [], "groups": []
        }  # fmt: skip


async def test_a_recreated_vnfc_keeps_its_ports_and_internal_address(world: World) -> None:
    vnf = await world.deploy()
    web = vnf.vnfcs_of("web")[0]
    [before] = await world.sim.list_ports(server_id=web.server_id)
    await world.sim.crash_server(web.server_id)
    op = await world.vnfm.heal(vnf.id, web.id, RecoveryLevel.RECREATE)
    assert op.state == "COMPLETED", op.error
    healed = (await world.vnf(vnf.id)).vnfc(web.id)
    assert healed is not None and healed.server_id != web.server_id
    [after] = await world.sim.list_ports(server_id=healed.server_id)
    assert (after.id, after.address) == (before.id, before.address)
    assert healed.address in world.hooks.paths("/day1")


async def test_virtual_links_without_a_cidr_get_one_of_their_protocol(
    redis: Any, keys: Keys
) -> None:
    async with make_world(redis, keys) as w:
        text = (
            "apiVersion: assure/v1\nkind: Vnfd\nid: dual\nvirtual_links:\n"
            "  - {id: v4}\n  - {id: v6, protocol: ipv6}\n"
            "vdus:\n  - id: web\n    image: {name: web, version: '1'}\n"
            "    flavour: {vcpus: 1, ram_mb: 512}\n    min_instances: 1\n    max_instances: 1\n"
            "    connection_points: [{id: a, virtual_link: v4}, {id: b, virtual_link: v6}]\n"
        )
        await w.catalogue.onboard(parse_vnfd(text))
        vnf, op = await w.vnfm.instantiate("dual", "dual-1")
        assert op.state == "COMPLETED", op.error
        cidrs = sorted(s.cidr for s in await w.sim.list_subnets(metadata={"vnf": vnf.id}))
        assert cidrs == ["10.100.0.0/24", "fd00:64:1::/64"]
        addresses = sorted(
            p.address or "" for p in await w.sim.list_ports(metadata={"vnf": vnf.id})
        )
        assert addresses == ["10.100.0.2", "fd00:64:1::2"]
