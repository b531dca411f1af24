"""The policy engine on a real Redis: violations become guarded decisions, every one published."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from bus.contracts import Action, GuardResult, Target, TargetKind, encode
from bus.keys import Keys
from bus.streams import ConsumerSettings, StreamPublisher
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.vnfd import load_vnfd
from policy.engine import PolicyEngine
from policy.store import LoopStore
from tests.actuator_support import restartable_redis, until
from tests.policy_support import (
    DEFAULTS,
    ManualClock,
    World,
    policies_from,
    shipped_policies,
    vnf_target,
    world_with,
)


@pytest.fixture
async def world(redis: Any, keys: Keys) -> World:
    return await world_with(redis, keys, shipped_policies())


async def test_an_onset_yields_an_approved_decision_and_publishes_it(world: World) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    [decision] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1")))

    assert decision.approved
    assert decision.action is Action.SCALE_OUT
    assert decision.target == Target(TargetKind.VNF, "fw1", vnf="fw1", vnfd="vfw")
    assert decision.parameters == {"aspect": "fw-scale", "steps": 1}
    assert (decision.violation_id, decision.policy, decision.request_id) == (
        "v-1",
        "vfw-scale-out",
        "req-v-1",
    )
    assert decision.verdict == "approved" and decision.step == 0 and decision.episode
    passed = {g.guard for g in decision.guards if g.passed}
    assert {"max_instances", "cooldown", "in_flight", "concurrency", "capacity"} <= passed
    assert all(g.passed for g in decision.guards)
    assert await world.published() == [decision]


async def test_a_second_onset_while_the_episode_is_open_takes_no_second_decision(
    world: World,
) -> None:
    # Two conditions of one policy on one VNF are one episode: acted on once,
    # then followed up by verification, not by a second decision per ONSET.
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    [first] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-1"))
    again = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-2"))

    assert first.approved
    assert again == []
    assert [d.id for d in await world.published()] == [first.id]


async def test_a_new_episode_within_the_cooldown_is_queued_then_acted_on(
    redis: Any, keys: Keys
) -> None:
    world = await world_with(redis, keys, shipped_policies("vfw-heal"))
    cooldown = shipped_policies("vfw-heal")[0].spec.guards.cooldown
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    target = Target(TargetKind.VNFC, "c1", vnf="fw1", vnfd="vfw")
    first_onset = world.onset("vfw-heal", target, "v-1")
    [first] = await world.engine.handle(first_onset)
    await world.finish(first)
    await world.engine.handle(world.abated(first_onset))

    [queued] = await world.engine.handle(world.onset("vfw-heal", target, "v-2"))
    assert not queued.approved and queued.verdict == "queued"
    assert "cooldown" in queued.reason
    assert await world.advance(cooldown / 2) == []
    [second] = await world.advance(cooldown / 2)

    assert first.approved and second.approved
    assert second.id == queued.id, "the queued decision is the one that runs"
    assert first.id != second.id


async def test_scale_out_at_max_instances_is_denied(world: World) -> None:
    # vfw allows 5 fw VNFCs; this one already runs 5 (2 initial + 3 steps).
    await world.add_vnf("fw1", [(f"c{i}", "h1") for i in range(5)], level=3)

    [decision] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1")))

    assert not decision.approved
    guard = next(g for g in decision.guards if g.guard == "max_instances")
    assert not guard.passed
    assert "max_instances 5" in guard.detail
    assert await world.published() == [decision]


async def test_a_denied_decision_does_not_start_the_cooldown(world: World) -> None:
    await world.add_vnf("fw1", [(f"c{i}", "h1") for i in range(5)], level=3)
    first = world.onset("vfw-scale-out", vnf_target("fw1"), "v-1")
    [denied] = await world.engine.handle(first)
    await world.engine.handle(world.abated(first))

    # The VNF shrank meanwhile: the next ONSET must not be held back by the denial.
    await world.add_vnf("fw1", [("c0", "h1"), ("c1", "h1")], level=0)
    [approved] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-2"))

    assert not denied.approved and denied.verdict == "denied"
    assert approved.approved


async def test_scale_in_at_min_instances_is_denied(world: World) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    [decision] = await world.engine.handle(world.onset("vfw-scale-in", vnf_target("fw1")))

    assert not decision.approved
    assert decision.action is Action.SCALE_IN
    guard = next(g for g in decision.guards if g.guard == "min_instances")
    assert not guard.passed


async def test_scale_in_within_bounds_is_approved(world: World) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2"), ("c3", "h1")], level=1)

    [decision] = await world.engine.handle(world.onset("vfw-scale-in", vnf_target("fw1")))

    assert decision.approved
    assert decision.parameters == {"aspect": "fw-scale", "steps": 1}


async def test_migrate_on_a_host_yields_one_decision_per_vnfc_of_the_vnfd_on_it(
    world: World,
) -> None:
    await world.add_vnf("fw1", [("a1", "h1"), ("a2", "h2")])
    await world.add_vnf("fw2", [("b1", "h1"), ("b2", "h2")])
    await world.add_vnf("lb1", [("l1", "h1")], vnfd="lb")  # not the policy's VNFD

    decisions = await world.engine.handle(world.onset("vfw-migrate", Target(TargetKind.HOST, "h1")))

    assert sorted(d.target.id for d in decisions) == ["a1", "b1"]
    for decision in decisions:
        assert decision.approved
        assert decision.action is Action.MIGRATE
        assert decision.target.kind is TargetKind.VNFC
        assert decision.target.host == "h1"
        assert decision.target.vnf == {"a1": "fw1", "b1": "fw2"}[decision.target.id]
        assert decision.parameters == {"destination": None, "live": True}
    assert len({d.id for d in decisions}) == 2
    assert len(await world.published()) == 2


async def test_migrate_on_a_host_without_vnfcs_of_the_vnfd_is_nothing_to_do(
    world: World,
) -> None:
    await world.add_vnf("fw1", [("a1", "h1")])

    [decision] = await world.engine.handle(
        world.onset("vfw-migrate", Target(TargetKind.HOST, "h9"))
    )

    assert not decision.approved
    assert decision.target == Target(TargetKind.HOST, "h9")
    [guard] = [g for g in decision.guards if not g.passed]
    assert (guard.guard, guard.passed) == ("target", False)
    assert "nothing to do" in guard.detail
    assert await world.published() == [decision]


async def test_heal_acts_on_the_silent_vnfc(world: World) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])

    [decision] = await world.engine.handle(
        world.onset("vfw-heal", Target(TargetKind.VNFC, "c2", vnf="fw1", vnfd="vfw"))
    )

    assert decision.approved
    assert decision.action is Action.HEAL
    assert decision.target == Target(TargetKind.VNFC, "c2", vnf="fw1", vnfd="vfw", host="h2")
    assert decision.parameters == {"level": "soft_reboot"}


async def test_a_violation_explained_by_its_host_is_not_acted_on(world: World) -> None:
    # The host's own violation is what a policy acts on, once; the VNFC's
    # violation it explains is recorded by analytics, not acted on here.
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    explained = msgspec.structs.replace(
        world.onset("vfw-heal", Target(TargetKind.VNFC, "c1", vnf="fw1", vnfd="vfw", host="h1")),
        caused_by="v-host-h1",
    )

    assert await world.engine.handle(explained) == []
    assert await world.published() == []


async def test_heal_of_a_vnfc_that_is_gone_is_nothing_to_do(world: World) -> None:
    await world.add_vnf("fw1", [("c1", "h1")])

    [decision] = await world.engine.handle(
        world.onset("vfw-heal", Target(TargetKind.VNFC, "gone", vnf="fw1", vnfd="vfw"))
    )

    assert not decision.approved
    assert "nothing to do" in decision.reason


async def test_the_same_violation_handled_twice_decides_once(world: World) -> None:
    # A worker that crashed after publishing gets its violation redelivered.
    await world.add_vnf("fw1", [("a1", "h1")])
    await world.add_vnf("fw2", [("b1", "h1")])
    violation = world.onset("vfw-migrate", Target(TargetKind.HOST, "h1"))

    first = await world.engine.handle(violation)
    again = await world.engine.handle(violation)

    assert len(first) == 2 and all(d.approved for d in first)
    assert again == []
    assert [d.id for d in await world.published()] == [d.id for d in first]


async def test_decisions_saved_but_not_published_are_published_by_the_next_worker(
    world: World,
) -> None:
    # A worker died between saving the VNF's record (decisions in its outbox)
    # and publishing them: whoever touches the VNF next publishes them.
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    [decision] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1")))
    await world.redis.delete(world.keys.stream("decisions"))
    store = LoopStore(world.redis, world.keys)
    state, version = await store.load("fw1")
    state.outbox = [encode(decision)]
    await store.save(state, version)

    # Every VNF an event touched is looked at again within claim_s, whatever happens.
    assert await world.advance(world.engine.claim_s) == []
    assert await world.published() == [decision]
    state, _ = await store.load("fw1")
    assert state.outbox == []


async def test_abated_yields_no_decision(world: World) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    onset = world.onset("vfw-scale-out", vnf_target("fw1"))

    assert await world.engine.handle(world.abated(onset)) == []
    assert await world.published() == []


async def test_an_onset_whose_violation_already_abated_is_denied(world: World) -> None:
    # A backlog: the ONSET is read after the analytics stage saw the condition clear.
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    await world.redis.set(world.keys.violation_state("v-1"), b"ABATED", ex=86_400)

    [decision] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-1"))

    assert not decision.approved
    assert GuardResult("active", False, "the violation already abated") in decision.guards
    assert "denied by active" in decision.reason
    assert await world.published() == [decision]
    # The denial started no cooldown: a new episode on the same VNF is acted on.
    [next_one] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-2"))
    assert next_one.approved


async def test_an_alert_onset_is_checked_against_the_alert_ledgers_status(world: World) -> None:
    # The webhook records an episode's status in its ledger, with the event, not at
    # keys.violation_state: an alert resolved before its ONSET is handled is not acted on.
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    await world.redis.hset(world.keys.alert_ledger("status"), "v-1", "ABATED")
    await world.redis.set(world.keys.violation_state("v-1"), b"ONSET", ex=86_400)
    onset = world.onset("vfw-scale-out", vnf_target("fw1"), "v-1", source="alertmanager")

    [decision] = await world.engine.handle(onset)

    assert not decision.approved
    assert GuardResult("active", False, "the violation already abated") in decision.guards
    [next_one] = await world.engine.handle(
        world.onset("vfw-scale-out", vnf_target("fw1"), "v-2", source="alertmanager")
    )
    assert next_one.approved, "an episode the ledger never saw is taken as active"


@pytest.mark.parametrize("recorded", [b"ONSET", None])
async def test_an_onset_still_active_or_with_no_recorded_status_is_approved(
    world: World, recorded: bytes | None
) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    if recorded is not None:
        await world.redis.set(world.keys.violation_state("v-1"), recorded, ex=86_400)

    [decision] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-1"))

    assert decision.approved


async def test_the_decisions_stream_is_trimmed_to_maxlen(redis: Any, keys: Keys) -> None:
    world = await world_with(redis, keys, shipped_policies("vfw-migrate"), maxlen=100)
    # A host with no VNFC of the policy's VNFD: one denied decision per violation.
    for n in range(300):
        [decision] = await world.engine.handle(
            world.onset("vfw-migrate", Target(TargetKind.HOST, "h9"), f"v-{n}")
        )
        assert not decision.approved

    # Approximate trimming removes whole macro-nodes (100 entries), so allow their slack.
    assert 100 <= await redis.xlen(keys.stream("decisions")) < 300


async def test_the_engine_consumes_the_violations_stream(redis: Any, keys: Keys) -> None:
    inventory, catalogue = Inventory(redis, keys), Catalogue(redis, keys)
    await catalogue.onboard(load_vnfd(DEFAULTS / "vnfds" / "vfw.yaml"))
    clock = ManualClock()
    engine = PolicyEngine(
        redis,
        keys,
        inventory,
        catalogue,
        clock,
        shipped_policies(),
        settings=ConsumerSettings(block_ms=50),
    )
    world = World(redis, keys, inventory, catalogue, clock, engine)
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    violation = world.onset("vfw-scale-out", vnf_target("fw1"))
    await StreamPublisher(redis, keys.stream("violations")).publish(violation)

    await engine.consumer.ensure_group()
    assert await engine.consumer.run_once() == 1

    [decision] = await world.published()
    assert decision.approved and decision.violation_id == violation.id
    assert (await redis.xpending(keys.stream("violations"), "policy"))["pending"] == 0


async def test_an_engine_started_while_redis_is_down_waits_for_it_then_works(keys: Keys) -> None:
    async with restartable_redis() as redis:
        inventory, catalogue = Inventory(redis.client, keys), Catalogue(redis.client, keys)
        clock = ManualClock()
        engine = PolicyEngine(
            redis.client,
            keys,
            inventory,
            catalogue,
            clock,
            shipped_policies(),
            settings=ConsumerSettings(block_ms=50),
        )
        world = World(redis.client, keys, inventory, catalogue, clock, engine)
        redis.stop()
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run(stop))
        try:
            await asyncio.sleep(0.5)
            assert not task.done(), "the policy engine ended while Redis was down"

            redis.start()
            await catalogue.onboard(load_vnfd(DEFAULTS / "vnfds" / "vfw.yaml"))
            await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
            violation = world.onset("vfw-scale-out", vnf_target("fw1"))
            await StreamPublisher(redis.client, keys.stream("violations")).publish(violation)

            async def decided() -> bool:
                return len(await world.published()) == 1

            await until(decided)
            [decision] = await world.published()
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)

    assert decision.approved and decision.violation_id == violation.id


SELECTIVE = """
apiVersion: assure/v1
kind: KpiPolicy
metadata: {name: gold-scale}
spec:
  target: {vnfd: vfw, vnfd_version: "1.0", ns: ns-edge, vnf_labels: {tier: gold}}
  conditions:
    - {name: cpu, kpi: vnf_cpu_utilisation, scope: vnf, op: ">", threshold: 75}
  action: {type: scale_out, aspect: fw-scale}
"""


async def test_a_policy_applies_only_to_the_vnfs_its_target_selects(redis: Any, keys: Keys) -> None:
    world = await world_with(redis, keys, policies_from(SELECTIVE))
    await world.add_vnf("gold", [("g1", "h1"), ("g2", "h2")], ns="ns-edge", labels={"tier": "gold"})
    await world.add_vnf("silver", [("s1", "h1"), ("s2", "h2")], ns="ns-edge", labels={"tier": "s"})
    await world.add_vnf("alone", [("a1", "h1"), ("a2", "h2")], labels={"tier": "gold"})

    [acted] = await world.engine.handle(world.onset("gold-scale", vnf_target("gold"), "v1"))
    [wrong_label] = await world.engine.handle(world.onset("gold-scale", vnf_target("silver"), "v2"))
    [no_ns] = await world.engine.handle(world.onset("gold-scale", vnf_target("alone"), "v3"))

    assert acted.approved
    assert not wrong_label.approved and "lacks the labels tier=gold" in wrong_label.reason
    assert not no_ns.approved and "is in no NS, the policy targets NS ns-edge" in no_ns.reason
