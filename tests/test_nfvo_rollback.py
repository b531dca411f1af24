"""An NS operation that fails part way is undone whole: nothing is left on any VIM."""

from __future__ import annotations

from assure.settings import Settings
from bus.contracts import OpState
from mano_core.nfvo.records import NsOpState, NsState
from tests.nfvo_support import nfvo_world

# fw on site-a, lb on site-b, then probe (a second firewall) on site-a again.
THREE = """\
apiVersion: assure/v1
kind: Nsd
id: three
vnfs:
  - {id: fw, vnfd: vfw}
  - {id: lb, vnfd: vlb, depends_on: [fw]}
  - {id: probe, vnfd: vfw, depends_on: [lb]}
virtual_links:
  - id: service
    connects:
      - {vnf: lb, connection_point: back}
      - {vnf: fw, connection_point: data}
      - {vnf: probe, connection_point: data}
placement:
  - {type: affinity, members: [fw, probe], vims: [site-a]}
  - {type: affinity, members: [lb], vims: [site-b]}
scaling_aspects:
  - id: capacity
    max_scale_level: 2
    members:
      - {vnf: fw, aspect: fw-scale}
      - {vnf: lb, aspect: lb-scale}
"""


async def test_a_third_vnf_failing_to_instantiate_leaves_nothing_on_either_vim(
    settings: Settings,
) -> None:
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(THREE)
        ns = await world.nslcm.create("three", "svc")
        # site-a creates fw's two servers, then refuses the third VNF's first one.
        await world.sims["site-a"].fail_next("create", temporary=False, after=2)

        op = await world.nslcm.instantiate(ns.id)

        assert op.state is NsOpState.ROLLED_BACK
        assert "svc-probe-1" in (op.error or "")
        ns = await world.nslcm.get(ns.id)
        assert ns.state is NsState.NOT_INSTANTIATED and ns.vnfs == [] and ns.networks == []
        ran = [await world.platform.ops.get(*ref.split("/")) for ref in op.vnf_ops]
        assert [(o.operation, o.state) for o in ran] == [
            ("INSTANTIATE", OpState.COMPLETED),  # fw
            ("INSTANTIATE", OpState.COMPLETED),  # lb
            ("INSTANTIATE", OpState.ROLLED_BACK),  # probe, undone by the VNFM
            ("TERMINATE", OpState.COMPLETED),  # lb, then fw: the NS rollback
            ("TERMINATE", OpState.COMPLETED),
        ]
        assert [ran[3].vnf_id, ran[4].vnf_id] == [ran[1].vnf_id, ran[0].vnf_id]
        assert await world.platform.inventory.list() == []
        assert await world.empty(), await world.cloud()

        # Nothing half-made stands in the way: the NS instantiates afterwards.
        op = await world.nslcm.instantiate(ns.id)
        assert op.state is NsOpState.COMPLETED, op.error
        assert len((await world.nslcm.get(ns.id)).vnfs) == 3


async def test_a_member_failing_to_scale_scales_the_others_back(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(THREE)
        ns = await world.nslcm.create("three", "svc")
        assert (await world.nslcm.instantiate(ns.id)).state is NsOpState.COMPLETED
        before = await world.cloud()
        # fw scales out on site-a; lb's new server on site-b is refused.
        await world.sims["site-b"].fail_next("create", temporary=False)

        op = await world.nslcm.scale(ns.id, "capacity", "out")

        assert op.state is NsOpState.ROLLED_BACK, op.error
        assert "svc-lb-1" in (op.error or "")
        ns = await world.nslcm.get(ns.id)
        assert ns.scale_levels == {"capacity": 0}
        vnfs = await world.vnfs(ns)
        assert vnfs["fw-1"].scale_levels == {"fw-scale": 0} and len(vnfs["fw-1"].vnfcs) == 2
        ran = [await world.platform.ops.get(*ref.split("/")) for ref in op.vnf_ops]
        assert [(o.operation, o.operation_params.get("direction"), o.state) for o in ran] == [
            ("SCALE", "out", OpState.COMPLETED),
            ("SCALE", "out", OpState.ROLLED_BACK),
            ("SCALE", "in", OpState.COMPLETED),
        ]
        assert sorted(map(sorted, (await world.cloud())["site-a"].values())) == sorted(
            map(sorted, before["site-a"].values())
        )


async def test_a_temporary_vim_failure_of_a_member_is_retried(settings: Settings) -> None:
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(THREE)
        ns = await world.nslcm.create("three", "svc")
        await world.sims["site-b"].fail_next("create", temporary=True, retry_after=2.0)

        op = await world.nslcm.instantiate(ns.id)

        assert op.state is NsOpState.COMPLETED, op.error
        lb = next(v for v in (await world.nslcm.get(ns.id)).vnfs if v.member == "lb")
        assert lb.vnf_id is not None
        instantiation = await world.platform.ops.get(lb.vnf_id, lb.op_id)
        states = [h.state for h in instantiation.history]
        assert OpState.FAILED_TEMP in states and states[-1] is OpState.COMPLETED
