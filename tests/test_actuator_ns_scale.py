"""NS scaling decisions executed by the actuator through the NFVO, on two simulated sites.

The members really scale (their VNFCs are servers on their VIMs), a
decision run again never scales twice, an NS scale that rolled back is
tried again after a back-off, and one that can never succeed fails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec

from actuator.idempotency import op_id_for
from actuator.service import Actuator
from assure.settings import Settings
from bus.contracts import Action, OpResult, OpState, Target, TargetKind
from bus.lease import Lease
from bus.redis import reply_text
from bus.streams import StreamPublisher, read_all
from mano_core.models import VnfInstance
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState
from tests.actuator_support import FAST, decision, running, until
from tests.nfvo_support import EDGE, NfvoWorld, nfvo_world


@dataclass
class NsActuation:
    world: NfvoWorld
    ns: NsInstance

    def actuator(self, **options: Any) -> Actuator:
        p = self.world.platform
        options.setdefault("settings", FAST)
        options.setdefault("max_decision_age_s", math.inf)
        options.setdefault("retry_base_s", 2.0)
        options.setdefault("nslcm", p.nslcm)
        return Actuator(p.redis, p.keys, p.vnfm, p.clock, **options)

    def target(self) -> Target:
        return Target(TargetKind.NS, self.ns.id)

    async def firewall(self) -> VnfInstance:
        return (await self.world.vnfs(await self.world.nslcm.get(self.ns.id)))["fw-1"]

    async def servers_of(self, vnf: VnfInstance) -> list[str]:
        """The VNF's servers as its VIM has them."""
        sim = self.world.sims[vnf.vim]
        return sorted(s.name for s in await sim.list_servers(metadata={"vnf": vnf.id}))

    async def results(self) -> list[OpResult]:
        p = self.world.platform
        entries = await read_all(p.redis, p.keys.stream("op_results"))
        return [m for _, m in entries if isinstance(m, OpResult)]


@contextlib.asynccontextmanager
async def edge_ns(settings: Settings) -> AsyncIterator[NsActuation]:
    """The edge NS instantiated across the two sites."""
    async with nfvo_world(settings) as world:
        await world.onboard_nsd(EDGE)
        ns = await world.nslcm.create("edge", "shop")
        assert (await world.nslcm.instantiate(ns.id)).state is NsOpState.COMPLETED
        yield NsActuation(world, await world.nslcm.get(ns.id))


async def test_an_ns_scale_out_decision_scales_the_members_on_their_vims(
    settings: Settings,
) -> None:
    async with edge_ns(settings) as ns:
        before = await ns.firewall()
        assert len(await ns.servers_of(before)) == 2
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=1)

        result = await ns.actuator().execute(grow)

        assert result is not None
        assert (result.state, result.error) == (OpState.COMPLETED, None)
        assert (result.op_id, result.operation, result.target) == (
            op_id_for("d-1"),
            "SCALE",
            ns.target(),
        )
        after = await ns.firewall()
        assert after.scale_levels == {"fw-scale": 1} and len(after.vnfcs) == 3
        assert len(await ns.servers_of(after)) == 3, "the third VNFC is a server on its VIM"
        record = await ns.world.nslcm.get(ns.ns.id)
        assert record.scale_levels == {"capacity": 1}
        [op] = [o for o in record.operations if o.operation == "SCALE"]
        assert op.id == op_id_for("d-1") and op.state is NsOpState.COMPLETED
        [member_op] = result.detail["vnf_ops"]
        assert member_op == op.vnf_ops[0] and member_op.startswith(f"{after.id}/")
        assert [r.decision_id for r in await ns.results()] == ["d-1"]

        shrink = decision("d-2", Action.SCALE_NS_IN, ns.target(), aspect="capacity", steps=1)
        done = await ns.actuator().execute(shrink)
        assert done is not None and done.state is OpState.COMPLETED, done
        assert len(await ns.servers_of(await ns.firewall())) == 2


async def test_a_replayed_ns_decision_never_scales_twice(settings: Settings) -> None:
    async with edge_ns(settings) as ns:
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=1)
        first = await ns.actuator().execute(grow)
        fw = await ns.firewall()
        creates = len(await ns.world.sims[fw.vim].calls("create"))

        # Another worker gets it again (redelivered), even with the record of it gone.
        again = await ns.actuator(consumer="other").execute(grow)
        p = ns.world.platform
        await p.redis.delete(p.keys.idempotency("d-1"))
        replayed = await ns.actuator(consumer="third").execute(grow)

        assert first is not None and again == first
        assert replayed is not None
        assert (replayed.op_id, replayed.state) == (first.op_id, OpState.COMPLETED)
        assert len(await ns.world.sims[fw.vim].calls("create")) == creates, "nothing made again"
        assert (await ns.world.nslcm.get(ns.ns.id)).scale_levels == {"capacity": 1}
        assert len(await ns.servers_of(await ns.firewall())) == 3


async def test_a_rolled_back_ns_scale_is_tried_again_after_a_back_off(
    settings: Settings,
) -> None:
    async with edge_ns(settings) as ns:
        fw = await ns.firewall()
        await ns.world.sims[fw.vim].fail_next("create", temporary=False)
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=1)

        result = await ns.actuator(retry_base_s=5.0).execute(grow)

        assert result is not None and result.state is OpState.COMPLETED, result
        assert result.op_id == f"{op_id_for('d-1')}-retry-1"
        assert result.detail["attempts"] == 2
        record = await ns.world.nslcm.get(ns.ns.id)
        scales = [o for o in record.operations if o.operation == "SCALE"]
        assert [o.state for o in scales] == [NsOpState.ROLLED_BACK, NsOpState.COMPLETED]
        assert scales[1].started_at >= (scales[0].finished_at or 0) + 5.0, "after the back-off"
        assert record.scale_levels == {"capacity": 1}
        assert len(await ns.servers_of(await ns.firewall())) == 3


async def test_an_ns_scale_that_keeps_rolling_back_ends_after_max_attempts(
    settings: Settings,
) -> None:
    async with edge_ns(settings) as ns:
        fw = await ns.firewall()
        await ns.world.sims[fw.vim].fail_next("create", temporary=False, count=2)
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=1)

        result = await ns.actuator(max_attempts=2).execute(grow)

        assert result is not None and result.state is OpState.ROLLED_BACK
        assert "injected permanent failure of create" in (result.error or "")
        assert result.detail["attempts"] == 2
        assert (await ns.world.nslcm.get(ns.ns.id)).scale_levels == {"capacity": 0}
        assert len(await ns.servers_of(await ns.firewall())) == 2


async def test_an_ns_scale_beyond_its_aspect_fails_at_once_and_records_nothing(
    settings: Settings,
) -> None:
    async with edge_ns(settings) as ns:
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=4)

        result = await ns.actuator().execute(grow)

        assert result is not None and result.state is OpState.FAILED
        assert (result.error or "").startswith("InvalidRequest: NS aspect capacity is at level 0")
        record = await ns.world.nslcm.get(ns.ns.id)
        assert [o.operation for o in record.operations] == ["INSTANTIATE"]


async def test_an_ns_busy_with_another_operation_is_waited_for(settings: Settings) -> None:
    async with edge_ns(settings) as ns:
        p = ns.world.platform
        other = Lease(p.redis, p.keys.ns_lease(ns.ns.id), p.clock, ttl_s=600.0, holder="operator")
        assert await other.try_acquire()
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=1)
        task = asyncio.create_task(ns.actuator(lease_poll_s=1.0).execute(grow))
        await p.clock.sleep(5.0)
        released_at = p.clock.now()
        await other.release()
        result = await asyncio.wait_for(task, 10)

        assert result is not None and result.state is OpState.COMPLETED, result
        assert result.started_at >= released_at, "started only once the NS was free"


async def test_a_decision_delivered_twice_on_the_stream_scales_the_ns_once(
    settings: Settings,
) -> None:
    async with edge_ns(settings) as ns:
        p = ns.world.platform
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=1)
        publisher = StreamPublisher(p.redis, p.keys.stream("decisions"))
        await publisher.publish(grow)
        second = await publisher.publish(grow)  # a policy worker that died after publishing, say

        async with running(ns.actuator()), running(ns.actuator(consumer="other")):

            async def both_taken() -> bool:
                if not await ns.results():
                    return False  # the group exists once a result is out
                pending = await p.redis.xpending(p.keys.stream("decisions"), "actuator")
                groups = await p.redis.xinfo_groups(p.keys.stream("decisions"))
                delivered = [reply_text(g["last-delivered-id"]) for g in groups
                             if reply_text(g["name"]) == "actuator"]  # fmt: skip
                return int(pending["pending"]) == 0 and delivered == [second]

            await until(both_taken, wall_s=20)

        record = await ns.world.nslcm.get(ns.ns.id)
        assert [o.id for o in record.operations if o.operation == "SCALE"] == [op_id_for("d-1")]
        assert record.scale_levels == {"capacity": 1}
        assert len(await ns.servers_of(await ns.firewall())) == 3
        assert {r.op_id for r in await ns.results()} == {op_id_for("d-1")}


async def test_an_ns_scale_left_running_by_a_stopped_worker_is_settled_failed(
    settings: Settings,
) -> None:
    async with edge_ns(settings) as ns:
        # A worker recorded the decision's NS operation, then stopped (its NS lease expired).
        left = NsOperation(
            id=op_id_for("d-1"),
            operation="SCALE",
            state=NsOpState.PROCESSING,
            started_at=ns.world.platform.clock.now(),
            params={"aspect_id": "capacity", "direction": "out", "steps": 1},
        )
        await ns.world.nslcm.ns_inventory.save(
            msgspec.structs.replace(ns.ns, operations=[*ns.ns.operations, left])
        )
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=1)

        result = await ns.actuator().execute(grow)

        assert result is not None and result.state is OpState.FAILED
        assert result.op_id == op_id_for("d-1")
        assert "abandoned by the process running it" in (result.error or "")
        record = await ns.world.nslcm.get(ns.ns.id)
        assert [(o.operation, o.state) for o in record.operations] == [
            ("INSTANTIATE", NsOpState.COMPLETED),
            ("SCALE", NsOpState.FAILED),
        ]


async def test_an_actuator_without_an_nfvo_fails_ns_scaling_saying_so(settings: Settings) -> None:
    async with edge_ns(settings) as ns:
        grow = decision("d-1", Action.SCALE_NS_OUT, ns.target(), aspect="capacity", steps=1)

        result = await ns.actuator(nslcm=None).execute(grow)

        assert result is not None and result.state is OpState.FAILED
        assert result.error == f"no NFVO here to run scale_ns_out on ns:{ns.ns.id}"
        assert (await ns.world.nslcm.get(ns.ns.id)).scale_levels == {"capacity": 0}
