"""NS scaling as a policy action, on a real Redis: planned, bounded and guarded per NS.

A policy of scope ``ns`` acts on the NS's own loop record: its decisions
scale an NS scaling aspect (out, in, to a level), bounded by the NSD's
levels and the members' own bounds, under one cooldown per NS aspect, one
decision in flight per NS, and coordinated with the member VNFs' own
decisions.
"""

from __future__ import annotations

from typing import Any

import pytest

from bus.contracts import Action, OpState, Target, TargetKind
from bus.keys import Keys
from mano_core.granter import VimGranter
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState, NsState, NsVnf
from mano_core.nsd import parse_nsd
from mano_core.vim.registry import VimRegistry
from mano_core.vim.simulated import SimHost, SimulatedVim
from tests.policy_support import (
    START,
    ManualClock,
    World,
    guard,
    policies_from,
    shipped_policies,
    vnf_target,
    vnfc_target,
    world_with,
)

NSD = """
apiVersion: assure/v1
kind: Nsd
id: edge1
vnfs:
  - {id: fw, vnfd: vfw}
scaling_aspects:
  - id: capacity
    max_scale_level: 3
    members:
      - {vnf: fw, aspect: fw-scale, steps: 1}
"""

POLICIES = """
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: edge-slow}
spec:
  target: {nsd: edge1}
  conditions:
    - {name: slow, kpi: vnf_request_latency_seconds, scope: ns, aggregate: max,
       op: ">", threshold: 0.05, clear: 0.03, for: 30s}
  action: {type: scale_ns_out, aspect: capacity}
  verify: 1m
  guards: {cooldown: 120s}
---
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: edge-idle}
spec:
  target: {nsd: edge1}
  conditions:
    - {name: idle, kpi: vnf_request_latency_seconds, scope: ns, aggregate: max,
       op: "<", threshold: 0.01, clear: 0.02, for: 30s}
  action: {type: scale_ns_in, aspect: capacity}
  guards: {cooldown: 120s}
"""

COOLDOWN_S = 120.0
VERIFY_S = 60.0
REQUEUE_S = 5.0
"""How often a decision held back by another record's decision looks again."""
NS = Target(TargetKind.NS, "ns1")


async def ns_world(redis: Any, keys: Keys, text: str = POLICIES, **options: Any) -> World:
    options.setdefault("ns_inventory", NsInventory(redis, keys))
    options.setdefault("requeue_s", REQUEUE_S)
    world = await world_with(
        redis,
        keys,
        [*policies_from(text), *shipped_policies("vfw-heal", "vfw-scale-out")],
        **options,
    )
    await world.catalogue.onboard_nsd(parse_nsd(NSD))
    return world


async def add_ns(
    redis: Any,
    keys: Keys,
    *,
    level: int = 0,
    nsd: str = "edge1",
    operations: list[NsOperation] | None = None,
) -> NsInstance:
    """NS ns1 (edge-1) of NSD ``nsd`` at ``level`` of aspect capacity, member fw-1 = fw1."""
    ns = NsInstance(
        id="ns1",
        name="edge-1",
        nsd_id=nsd,
        nsd_version="1.0",
        state=NsState.INSTANTIATED,
        created_at=START,
        updated_at=START,
        vnfs=[NsVnf(member="fw", index=1, vim="sim", op_id="op-i", vnf_id="fw1")],
        scale_levels={"capacity": level},
        operations=operations or [],
    )
    await NsInventory(redis, keys).save(ns)
    return ns


async def scaled(world: World, level: int) -> None:
    """The NS at ``level`` and its firewall with the VNFCs that level gives it."""
    await add_ns(world.redis, world.keys, level=level)
    vnfcs = [(f"c{i}", f"h{i % 3}") for i in range(1, 3 + level)]
    await world.add_vnf("fw1", vnfcs, level=level, ns="ns1")


@pytest.fixture
async def world(redis: Any, keys: Keys) -> World:
    world = await ns_world(redis, keys)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")], ns="ns1")
    return world


async def test_an_ns_onset_scales_the_ns_aspect_out_by_its_steps(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys)

    [decision] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))

    assert decision.approved, decision.reason
    assert decision.action is Action.SCALE_NS_OUT
    assert decision.target == NS
    assert decision.parameters == {"aspect": "capacity", "steps": 1}
    passed, detail = guard(decision, "max_instances")
    assert passed
    assert "NS aspect capacity level 0 -> 1 of 3" in detail
    assert "member fw-1: VDU fw: 2 -> 3 VNFCs" in detail
    assert all(g.passed for g in decision.guards)


async def test_an_ns_at_its_aspects_max_level_is_denied_for_good(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys, level=3)

    [decision] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))

    assert decision.verdict == "denied"
    assert guard(decision, "max_instances") == (
        False,
        "NS aspect capacity is at scale level 3 of 3",
    )


async def test_an_ns_at_level_zero_is_not_scaled_in(world: World, redis: Any, keys: Keys) -> None:
    await add_ns(redis, keys, level=0)

    [decision] = await world.engine.handle(world.onset("edge-idle", NS, condition="idle"))

    assert decision.verdict == "denied" and decision.action is Action.SCALE_NS_IN
    assert guard(decision, "min_instances") == (
        False,
        "NS aspect capacity is at scale level 0 of 3",
    )


async def test_a_member_vnf_at_its_own_bound_denies_the_ns_step(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys, level=0)
    # Scaled by its own policies meanwhile: fw runs 5 VNFCs, its VDU's maximum.
    await world.add_vnf("fw1", [(f"c{i}", "h1") for i in range(5)], level=3, ns="ns1")

    [decision] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))

    assert decision.verdict == "denied"
    passed, detail = guard(decision, "max_instances")
    assert not passed
    assert detail.startswith("member fw-1: ")
    assert "would exceed max_instances 5" in detail


async def test_an_aspect_the_nsd_lacks_is_denied_naming_the_aspects_it_has(
    redis: Any, keys: Keys
) -> None:
    text = POLICIES.replace("scale_ns_out, aspect: capacity", "scale_ns_out, aspect: size")
    world = await ns_world(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")], ns="ns1")
    await add_ns(redis, keys)

    [decision] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))

    assert decision.verdict == "denied"
    assert guard(decision, "target") == (
        False,
        "NSD edge1 has no scaling aspect 'size' (aspects: capacity)",
    )


async def test_scaling_to_a_level_takes_the_steps_it_needs(redis: Any, keys: Keys) -> None:
    text = POLICIES.replace(
        "{type: scale_ns_out, aspect: capacity}",
        "{type: scale_ns_to_level, aspect: capacity, level: 2}",
    )
    world = await ns_world(redis, keys, text)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")], ns="ns1")
    await add_ns(redis, keys, level=0)

    [decision] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))

    assert decision.approved
    assert (decision.action, decision.parameters) == (
        Action.SCALE_NS_OUT,
        {"aspect": "capacity", "steps": 2},
    )


async def test_a_policy_on_another_nsd_does_not_act_on_the_ns(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys, nsd="core")

    [decision] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))

    assert decision.verdict == "denied"
    assert guard(decision, "target") == (
        False,
        "NS edge-1 is of NSD core, the policy targets NSD edge1",
    )


async def test_scale_out_and_in_of_one_ns_aspect_share_a_cooldown_from_completion(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys, level=0)
    slow = world.onset("edge-slow", NS, "v-slow", condition="slow")
    [out] = await world.engine.handle(slow)
    await world.finish(out, after_s=30.0)  # the cooldown runs from here, not from the decision
    await scaled(world, 1)
    await world.engine.handle(world.abated(slow))

    [queued] = await world.engine.handle(world.onset("edge-idle", NS, "v-idle", condition="idle"))
    assert queued.verdict == "queued"
    passed, detail = guard(queued, "cooldown")
    assert not passed and "ns-scale:capacity" in detail
    assert await world.advance(COOLDOWN_S - 1) == []
    [scale_in] = await world.advance(1)

    assert scale_in.id == queued.id and scale_in.approved
    assert (scale_in.action, scale_in.parameters) == (
        Action.SCALE_NS_IN,
        {"aspect": "capacity", "steps": 1},
    )


async def test_an_ns_still_violating_after_the_cooldown_takes_another_step(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys, level=0)
    [first] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))
    await world.finish(first)
    await scaled(world, 1)

    # Unrecovered after the verify window; the next step waits out the cooldown.
    held = await world.advance(VERIFY_S)
    assert [(d.verdict, guard(d, "cooldown")[0]) for d in held] == [("queued", False)]
    [second] = await world.advance(COOLDOWN_S - VERIFY_S)

    assert second.approved and second.id != first.id
    assert second.episode == first.episode
    assert second.action is Action.SCALE_NS_OUT
    assert "NS aspect capacity level 1 -> 2 of 3" in guard(second, "max_instances")[1]


async def test_one_ns_decision_in_flight_at_a_time(world: World) -> None:
    await scaled(world, 1)
    [out] = await world.engine.handle(world.onset("edge-slow", NS, "v-slow", condition="slow"))

    [held] = await world.engine.handle(world.onset("edge-idle", NS, "v-idle", condition="idle"))

    assert out.approved
    assert held.verdict == "queued"
    assert guard(held, "in_flight") == (False, f"decision {out.id} runs on the NS")


async def test_an_ns_scale_waits_while_a_member_vnf_has_a_decision_in_flight(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys)
    [heal] = await world.engine.handle(world.onset("vfw-heal", vnfc_target("c1"), "v-heal"))
    assert heal.approved

    [held] = await world.engine.handle(world.onset("edge-slow", NS, "v-slow", condition="slow"))
    assert held.verdict == "queued"
    passed, detail = guard(held, "coordination")
    assert not passed
    assert (
        detail == f"decision {heal.id} runs on member fw-1 (VNF fw1); the NS waits for its members"
    )

    await world.finish(heal)
    [scale] = await world.advance(REQUEUE_S)
    assert scale.id == held.id and scale.approved


async def test_a_member_vnf_decision_waits_while_its_ns_scales(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys)
    [scale] = await world.engine.handle(world.onset("edge-slow", NS, "v-slow", condition="slow"))
    assert scale.approved

    [held] = await world.engine.handle(world.onset("vfw-heal", vnfc_target("c1"), "v-heal"))
    assert held.verdict == "queued"
    assert guard(held, "coordination") == (
        False,
        f"decision {scale.id} runs on NS ns1, of which VNF fw1 is a member",
    )

    assert await world.finish(scale) == []  # the NS's record; the VNF's looks again itself
    [heal] = await world.advance(REQUEUE_S)
    assert heal.id == held.id and heal.approved and heal.action is Action.HEAL


async def test_an_ns_result_reaches_the_ns_record_and_is_audited(
    world: World, redis: Any, keys: Keys
) -> None:
    await add_ns(redis, keys)
    [scale] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))
    await world.finish(scale, state=OpState.COMPLETED)

    record = await world.engine.audit.episode_of(scale.id)
    assert record is not None
    [step] = record.episode.steps
    assert (step.action, step.op_state, step.outcome) == ("scale_ns_out", "COMPLETED", "completed")
    assert record.episode.phase == "verifying"


async def test_an_ns_scale_out_a_members_vim_cannot_place_is_denied_by_the_capacity_check(
    redis: Any, keys: Keys
) -> None:
    # One host with one vCPU: the firewall's next VNFC (2 vCPUs) fits nowhere.
    tiny = SimulatedVim(ManualClock(), redis, keys, [SimHost("h1", vcpus=1, ram_mb=2048)])
    world = await ns_world(redis, keys, granter=VimGranter(VimRegistry([tiny])))
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")], ns="ns1")
    await add_ns(redis, keys)

    [denied] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))

    assert denied.verdict == "denied"
    passed, detail = guard(denied, "capacity")
    assert not passed and "VIM sim" in detail


async def test_an_ns_condition_of_a_notify_policy_notifies_about_the_ns(
    redis: Any, keys: Keys
) -> None:
    text = (
        POLICIES.split("---", maxsplit=1)[0]
        .replace("{type: scale_ns_out, aspect: capacity}", "{type: notify, message: slow}")
        .replace("  guards:", "  notify: {url: 'http://127.0.0.1:9/hook'}\n  guards:")
    )
    world = await ns_world(redis, keys, text)
    await add_ns(redis, keys)

    [decision] = await world.engine.handle(world.onset("edge-slow", NS, condition="slow"))

    assert decision.approved and decision.action is Action.NOTIFY
    assert decision.target == NS
    assert decision.parameters["target"] == "ns:ns1"


async def test_no_ns_scale_in_while_another_policys_condition_is_open_on_the_ns(
    world: World,
) -> None:
    await scaled(world, 3)
    # At its maximum: the scale-out is denied, its condition stays open.
    [denied] = await world.engine.handle(world.onset("edge-slow", NS, "v-slow", condition="slow"))
    assert denied.verdict == "denied"

    [held] = await world.engine.handle(world.onset("edge-idle", NS, "v-idle", condition="idle"))

    assert held.verdict == "queued"
    assert guard(held, "coordination") == (
        False,
        "no scale-in while edge-slow/slow is open on NS edge-1",
    )


async def test_a_completed_ns_scale_counts_for_its_members_own_scaling_cooldown(
    world: World,
) -> None:
    await scaled(world, 0)
    [grow] = await world.engine.handle(world.onset("edge-slow", NS, "v-slow", condition="slow"))
    # What the NFVO recorded for it: one step of capacity, which steps fw's fw-scale.
    op = NsOperation(
        id=f"op-{grow.id}",
        operation="SCALE",
        state=NsOpState.COMPLETED,
        started_at=world.clock.now(),
        params={"aspect_id": "capacity", "direction": "out", "steps": 1},
    )
    await add_ns(world.redis, world.keys, level=1, operations=[op])
    await world.finish(grow)

    # The firewall's own CPU policy fires on the same load: its scale-out cools down first.
    [held] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-cpu"))

    assert held.verdict == "queued" and held.action is Action.SCALE_OUT
    passed, detail = guard(held, "cooldown")
    assert not passed and detail.startswith("the last operation under scale:fw-scale ended 0s ago")
