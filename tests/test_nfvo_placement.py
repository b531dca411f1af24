"""The NSD's placement rules, honoured: members on VIMs (site affinity and anti-affinity),
VNFCs on hosts and zones, capacity counted; scaling a member later keeps to them."""

from __future__ import annotations

from collections import Counter

from assure.settings import Settings
from bus.contracts import OpState
from mano_core.nfvo.records import NsOpState
from mano_core.vim.simulated import QuotaRec
from tests.nfvo_support import EDGE, NfvoWorld, nfvo_world


def nsd(members: str, placement: str) -> str:
    return f"""\
apiVersion: assure/v1
kind: Nsd
id: svc
vnfs:
{members}
placement:
{placement}
"""


async def instantiate(world: NfvoWorld, text: str) -> tuple[str, NsOpState, str]:
    await world.onboard_nsd(text)
    ns = await world.nslcm.create("svc", "svc")
    op = await world.nslcm.instantiate(ns.id)
    return ns.id, op.state, op.error or ""


async def vims_of(world: NfvoWorld, ns_id: str) -> dict[str, str]:
    return {key: vnf.vim for key, vnf in (await world.vnfs(await world.nslcm.get(ns_id))).items()}


async def test_site_affinity_keeps_members_on_the_named_vims(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        ns_id, state, error = await instantiate(
            world,
            nsd(
                "  - {id: fw, vnfd: vfw}\n  - {id: lb, vnfd: vlb}",
                "  - {type: affinity, members: [fw, lb], vims: [site-b]}",
            ),
        )
        assert state is NsOpState.COMPLETED, error
        assert await vims_of(world, ns_id) == {"fw-1": "site-b", "lb-1": "site-b"}
        assert (await world.cloud())["site-a"]["servers"] == []


async def test_site_anti_affinity_keeps_members_off_the_named_vims(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        ns_id, state, error = await instantiate(
            world,
            nsd(
                "  - {id: fw, vnfd: vfw, count: 2}",
                "  - {type: anti_affinity, members: [fw], vims: [site-a]}",
            ),
        )
        assert state is NsOpState.COMPLETED, error
        assert await vims_of(world, ns_id) == {"fw-1": "site-b", "fw-2": "site-b"}


async def test_vim_affinity_and_anti_affinity_between_members(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        ns_id, state, error = await instantiate(
            world,
            nsd(
                "  - {id: fw, vnfd: vfw, count: 2}\n  - {id: lb, vnfd: vlb}",
                # Each firewall on a site of its own; the balancer with the second one.
                "  - {type: anti_affinity, members: [fw]}\n"
                "  - {type: affinity, members: [lb], vims: [site-b]}",
            ),
        )
        assert state is NsOpState.COMPLETED, error
        placed = await vims_of(world, ns_id)
        assert {placed["fw-1"], placed["fw-2"]} == {"site-a", "site-b"}
        assert placed["lb-1"] == "site-b"


async def test_a_placement_the_vims_cannot_take_is_rolled_back_before_anything_exists(
    settings: Settings,
) -> None:
    async with nfvo_world(settings) as world:
        await world.sims["site-b"].set_quotas(QuotaRec(instances=1))
        ns_id, state, error = await instantiate(
            world,
            nsd(
                "  - {id: fw, vnfd: vfw, count: 2}",
                "  - {type: anti_affinity, members: [fw]}",
            ),
        )
        assert state is NsOpState.ROLLED_BACK
        assert error == (
            "placement: grant refused: VNF fw-2 fits no VIM: "
            "VIM site-a: placement[0] keeps it apart from fw-1, already there; "
            "VIM site-b: quota of 1 instances exceeded (0 used, 2 more asked)"
        )
        assert (await world.nslcm.get(ns_id)).vnfs == []
        assert await world.empty()


async def test_placement_counts_capacity_across_members(settings: Settings) -> None:
    # Each site has one host of 5 vCPUs: one firewall (2 x 2 vCPU) fits a site, not two.
    async with nfvo_world(settings, hosts=1, host_vcpus=5) as world:
        ns_id, state, error = await instantiate(
            world,
            nsd("  - {id: fw, vnfd: vfw, count: 2}", "  []"),
        )
        assert state is NsOpState.COMPLETED, error
        placed = await vims_of(world, ns_id)
        assert sorted(placed.values()) == ["site-a", "site-b"]


async def test_an_early_choice_is_revised_when_a_later_member_needs_its_vim(
    settings: Settings,
) -> None:
    # The firewall would fit site-a first, but the balancer must be there and both do not fit.
    async with nfvo_world(settings, hosts=1, host_vcpus=5) as world:
        ns_id, state, error = await instantiate(
            world,
            nsd(
                "  - {id: fw, vnfd: vfw}\n  - {id: lb, vnfd: vlb, depends_on: [fw]}",
                "  - {type: affinity, members: [lb], vims: [site-a]}",
            ),
        )
        assert state is NsOpState.COMPLETED, error
        assert await vims_of(world, ns_id) == {"fw-1": "site-b", "lb-1": "site-a"}


async def test_host_anti_affinity_of_vnfcs_holds_when_a_member_scales(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(EDGE)  # its lb VNFCs: each on a host of its own
        ns = await world.nslcm.create("edge", "shop")
        assert (await world.nslcm.instantiate(ns.id)).state is NsOpState.COMPLETED
        lb = (await world.vnfs(await world.nslcm.get(ns.id)))["lb-1"]
        assert len({c.host for c in lb.vnfcs}) == 2

        # A scale out of the member itself (as the closed loop does): a third host.
        op = await world.platform.vnfm.scale(lb.id, "lb-scale", "out")
        assert op.state is OpState.COMPLETED, op.error
        lb = await world.platform.inventory.get(lb.id)
        assert len({c.host for c in lb.vnfcs}) == 3
        # A site has three hosts: a fourth VNFC has nowhere apart to go.
        op = await world.platform.vnfm.scale(lb.id, "lb-scale", "out")
        assert op.state is OpState.ROLLED_BACK
        assert "placement[1]: no host apart from the other VNFCs of VDUs lb" in (op.error or "")
        assert len((await world.platform.inventory.get(lb.id)).vnfcs) == 3


async def test_host_affinity_keeps_a_vdus_vnfcs_together(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        ns_id, state, error = await instantiate(
            world,
            nsd(
                "  - {id: fw, vnfd: vfw}",
                "  - {type: affinity, scope: host, members: [fw], vdus: [fw]}",
            ),
        )
        assert state is NsOpState.COMPLETED, error
        fw = (await world.vnfs(await world.nslcm.get(ns_id)))["fw-1"]
        assert len({c.host for c in fw.vnfcs}) == 1
        op = await world.platform.vnfm.scale(fw.id, "fw-scale", "out")
        assert op.state is OpState.COMPLETED, op.error
        hosts = Counter(c.host for c in (await world.platform.inventory.get(fw.id)).vnfcs)
        assert list(hosts.values()) == [3]


async def test_zone_anti_affinity_with_one_zone_is_refused(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        ns_id, state, error = await instantiate(
            world,
            nsd(
                "  - {id: fw, vnfd: vfw}",
                "  - {type: anti_affinity, scope: zone, members: [fw], vdus: [fw]}",
            ),
        )
        # Every simulated host is in zone "nova": the second VNFC has no zone apart.
        assert state is NsOpState.ROLLED_BACK
        assert "placement[0]: no zone apart from the other VNFCs of VDUs fw" in error
        assert await world.empty(), await world.cloud()
        assert (await world.nslcm.get(ns_id)).vnfs == []
