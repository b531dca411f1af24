"""The NFVO's NS lifecycle across two simulated sites: create, instantiate, scale, heal,
terminate, delete; each operation recorded in the NS instance, members through the VNFM."""

from __future__ import annotations

import msgspec
import pytest

from assure.settings import Settings
from bus.contracts import OpState
from bus.lease import Lease, VnfLease
from mano_core.errors import InvalidRequest, NotFound
from mano_core.nfvo.records import NsOperation, NsOpState, NsState
from mano_core.vim.base import ServerStatus
from tests.nfvo_support import EDGE, nfvo_world


async def test_an_ns_spans_two_sites_from_instantiate_to_delete(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(EDGE)
        ns = await world.nslcm.create("edge", "shop", labels={"tenant": "blue"})
        assert ns.state is NsState.NOT_INSTANTIATED and ns.nsd_version == "1.0"

        op = await world.nslcm.instantiate("shop")
        assert op.state is NsOpState.COMPLETED, op.error
        ns = await world.nslcm.get(ns.id)
        assert ns.state is NsState.INSTANTIATED
        assert ns.scale_levels == {"capacity": 0}
        vnfs = await world.vnfs(ns)
        fw, lb = vnfs["fw-1"], vnfs["lb-1"]
        # anti_affinity scope vim: one site each.
        assert {fw.vim, lb.vim} == {"site-a", "site-b"}
        assert (fw.name, lb.name) == ("shop-fw-1", "shop-lb-1")
        assert fw.ns_id == lb.ns_id == ns.id
        assert fw.labels == {"tenant": "blue"}
        assert len(fw.vnfcs) == 2 and len(lb.vnfcs) == 2
        # The link "service" has a network on each site, each member's port on it.
        assert sorted((n.link, n.vim) for n in ns.networks) == [
            ("service", "site-a"),
            ("service", "site-b"),
        ]
        for vnf, cp in ((fw, "data"), (lb, "back")):
            network = next(n for n in ns.networks if n.vim == vnf.vim)
            assert vnf.ext_networks == {cp: network.network_id}
            ports = await world.sims[vnf.vim].list_ports(metadata={"vnf": vnf.id})
            assert sum(p.network_id == network.network_id for p in ports) == 2
        # The members were instantiated through the VNFM, fw before lb (lb depends on it).
        instantiations = [await world.platform.ops.get(*ref.split("/")) for ref in op.vnf_ops]
        assert [o.operation for o in instantiations] == ["INSTANTIATE", "INSTANTIATE"]
        assert [o.vnf_id for o in instantiations] == [fw.id, lb.id]

        op = await world.nslcm.terminate(ns.id)
        assert op.state is NsOpState.COMPLETED, op.error
        ns = await world.nslcm.get(ns.id)
        assert ns.state is NsState.NOT_INSTANTIATED and ns.vnfs == [] and ns.networks == []
        assert [(o.operation, o.state) for o in ns.operations] == [
            ("INSTANTIATE", NsOpState.COMPLETED),
            ("TERMINATE", NsOpState.COMPLETED),
        ]
        assert await world.platform.inventory.list() == []
        assert await world.empty(), await world.cloud()

        await world.nslcm.delete("shop")
        with pytest.raises(NotFound):
            await world.nslcm.get(ns.id)


async def test_an_ns_aspect_scales_its_members_by_their_own_aspects(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(EDGE)
        ns = await world.nslcm.create("edge", "shop")
        assert (await world.nslcm.instantiate(ns.id)).state is NsOpState.COMPLETED

        op = await world.nslcm.scale(ns.id, "capacity", "out", 2)
        assert op.state is NsOpState.COMPLETED, op.error
        ns = await world.nslcm.get(ns.id)
        assert ns.scale_levels == {"capacity": 2}
        vnfs = await world.vnfs(ns)
        assert len(vnfs["fw-1"].vnfcs) == 4 and vnfs["fw-1"].scale_levels == {"fw-scale": 2}
        assert len(vnfs["lb-1"].vnfcs) == 2  # the aspect names fw only
        scaled = await world.platform.ops.get(*op.vnf_ops[0].split("/"))
        assert scaled.operation == "SCALE" and scaled.vnf_id == vnfs["fw-1"].id

        # Beyond max_scale_level (3): refused before anything is recorded.
        with pytest.raises(InvalidRequest, match=r"level 2 of 0\.\.3"):
            await world.nslcm.scale(ns.id, "capacity", "out", 2)
        with pytest.raises(InvalidRequest, match="no scaling aspect 'speed'"):
            await world.nslcm.scale(ns.id, "speed", "out")
        assert len((await world.nslcm.get(ns.id)).operations) == 2

        op = await world.nslcm.scale(ns.id, "capacity", "in", 2)
        assert op.state is NsOpState.COMPLETED, op.error
        ns = await world.nslcm.get(ns.id)
        assert ns.scale_levels == {"capacity": 0}
        assert len((await world.vnfs(ns))["fw-1"].vnfcs) == 2


async def test_an_ns_heal_brings_a_crashed_member_vnfc_back(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(EDGE)
        ns = await world.nslcm.create("edge", "shop")
        assert (await world.nslcm.instantiate(ns.id)).state is NsOpState.COMPLETED
        fw = (await world.vnfs(await world.nslcm.get(ns.id)))["fw-1"]
        victim = fw.vnfcs[1]
        sim = world.sims[fw.vim]
        await sim.crash_server(victim.server_id)

        op = await world.nslcm.heal(ns.id)
        assert op.state is NsOpState.COMPLETED, op.error
        assert (await sim.get_server(victim.server_id)).status is ServerStatus.ACTIVE
        # Only the crashed VNFC was healed, up its ladder: a soft reboot does not
        # bring a crashed guest back, a hard one does.
        heals = [await world.platform.ops.get(*ref.split("/")) for ref in op.vnf_ops]
        assert [(h.operation, h.operation_params["vnfc_id"]) for h in heals] == [
            ("HEAL", victim.id),
            ("HEAL", victim.id),
        ]
        assert [h.operation_params["level"] for h in heals] == ["soft_reboot", "hard_reboot"]
        assert heals[0].state is not OpState.COMPLETED
        assert heals[1].state is OpState.COMPLETED

        # Nothing to heal: COMPLETED, no VNF operation.
        op = await world.nslcm.heal(ns.id, vnfs=["shop-lb-1"])
        assert op.state is NsOpState.COMPLETED and op.vnf_ops == []
        with pytest.raises(InvalidRequest, match="no member VNF 'nope'"):
            await world.nslcm.heal(ns.id, vnfs=["nope"])


async def test_ns_operations_are_refused_in_the_wrong_state(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(EDGE)
        with pytest.raises(NotFound):
            await world.nslcm.create("nothing", "x")
        ns = await world.nslcm.create("edge", "shop")
        with pytest.raises(InvalidRequest, match="named 'shop' exists"):
            await world.nslcm.create("edge", "shop")
        with pytest.raises(InvalidRequest, match="is NOT_INSTANTIATED"):
            await world.nslcm.scale(ns.id, "capacity", "out")
        with pytest.raises(InvalidRequest, match="not instantiated"):
            await world.nslcm.terminate(ns.id)
        op = await world.nslcm.instantiate(ns.id, op_id="first")
        assert op.state is NsOpState.COMPLETED
        # The same op id again: the operation as it stands, nothing done again.
        again = await world.nslcm.instantiate(ns.id, op_id="first")
        assert again == op
        with pytest.raises(InvalidRequest, match="terminate it first"):
            await world.nslcm.instantiate(ns.id)
        with pytest.raises(InvalidRequest, match="terminate it first"):
            await world.nslcm.delete(ns.id)
        found_ns, found = await world.nslcm.operation("first")
        assert found_ns.id == ns.id and found.operation == "INSTANTIATE"


async def test_one_ns_operation_at_a_time_and_members_under_their_vnf_lease(
    settings: Settings,
) -> None:
    async with nfvo_world(settings) as world:
        platform = world.platform
        await world.onboard_nsd(EDGE)
        ns = await world.nslcm.create("edge", "shop")
        other = Lease(platform.redis, platform.keys.ns_lease(ns.id), platform.clock,
                      ttl_s=600, holder="someone")  # fmt: skip
        assert await other.try_acquire()
        with pytest.raises(InvalidRequest, match="another lifecycle operation is in progress"):
            await world.nslcm.instantiate(ns.id)
        await other.release()
        assert (await world.nslcm.instantiate(ns.id)).state is NsOpState.COMPLETED

        # The actuator (say) holds the firewall: the NS scale waits, then gives up whole.
        fw = (await world.vnfs(await world.nslcm.get(ns.id)))["fw-1"]
        busy = VnfLease(platform.redis, platform.keys, platform.clock, fw.id,
                        ttl_s=600, holder="actuator")  # fmt: skip
        assert await busy.try_acquire()
        op = await world.nslcm.scale(ns.id, "capacity", "out")
        assert op.state is NsOpState.ROLLED_BACK
        assert f"another lifecycle operation held VNF instance {fw.id}" in (op.error or "")
        assert len((await platform.inventory.get(fw.id)).vnfcs) == 2
        await busy.release()
        assert (await world.nslcm.scale(ns.id, "capacity", "out")).state is NsOpState.COMPLETED


async def test_an_operation_left_processing_by_a_stopped_process_is_failed_at_start_up(
    settings: Settings,
) -> None:
    async with nfvo_world(settings) as world:
        platform = world.platform
        await world.onboard_nsd(EDGE)
        left = await world.nslcm.create("edge", "left")
        running = await world.nslcm.create("edge", "running")
        for ns in (left, running):
            op = NsOperation("op-" + ns.name, "INSTANTIATE", NsOpState.PROCESSING, 1.0)
            await platform.ns_inventory.save(msgspec.structs.replace(ns, operations=[op]))
        alive = Lease(platform.redis, platform.keys.ns_lease(running.id), platform.clock,
                      ttl_s=600, holder="a live process")  # fmt: skip
        assert await alive.try_acquire()

        settled = await world.nslcm.recover()

        assert [o.id for o in settled] == ["op-left"]
        op = (await world.nslcm.get("left")).operations[-1]
        assert op.state is NsOpState.FAILED and "found abandoned at start-up" in (op.error or "")
        assert (await world.nslcm.get("running")).operations[-1].state is NsOpState.PROCESSING
