"""The policy engine on a real Redis: violations become guarded decisions, every one published."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bus.clock import ScaledClock
from bus.contracts import (
    Action,
    Decision,
    Evidence,
    GuardResult,
    Target,
    TargetKind,
    Violation,
    ViolationStatus,
)
from bus.keys import Keys
from bus.streams import ConsumerSettings, StreamPublisher, read_all
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vnfd import load_vnfd
from policy.engine import PolicyEngine
from policy.loader import load_policies
from policy.schema import KpiPolicy
from tests.actuator_support import restartable_redis, until

DEFAULTS = Path(__file__).resolve().parents[1] / "assure" / "defaults"
START = 1_700_000_000.0


@dataclass
class World:
    """The engine over the shipped vfw VNFD and policies, and what it reads and writes."""

    redis: Any
    keys: Keys
    inventory: Inventory
    clock: ScaledClock
    engine: PolicyEngine

    async def add_vnf(
        self, vnf_id: str, placement: list[tuple[str, str]], *, vnfd: str = "vfw", level: int = 0
    ) -> VnfInstance:
        """A VNF instance whose VNFCs ``(vnfc id, host)`` run the ``fw`` VDU."""
        vnfcs = [
            VnfcInstance(
                id=vnfc_id,
                vdu="fw",
                server_id=f"srv-{vnfc_id}",
                host=host,
                address=None,
                metrics_url=None,
                created_at=START,
            )
            for vnfc_id, host in placement
        ]
        vnf = VnfInstance(
            id=vnf_id,
            name=vnf_id,
            vnfd_id=vnfd,
            vim="sim",
            state=InstantiationState.INSTANTIATED,
            scale_levels={"fw-scale": level},
            vnfcs=vnfcs,
            created_at=START,
            updated_at=START,
        )
        await self.inventory.save(vnf)
        return vnf

    def onset(self, policy: str, target: Target, violation_id: str = "v-1") -> Violation:
        now = self.clock.now()
        return Violation(
            id=violation_id,
            status=ViolationStatus.ONSET,
            policy=policy,
            condition="c",
            target=target,
            evidence=Evidence(value=82.0, values={}, window_s=30.0, threshold=75.0),
            started_at=now - 30.0,
            at=now,
            request_id=f"req-{violation_id}",
        )

    async def published(self) -> list[Decision]:
        entries = await read_all(self.redis, self.keys.stream("decisions"))
        out = [message for _, message in entries]
        assert all(isinstance(m, Decision) for m in out)
        return [m for m in out if isinstance(m, Decision)]


def vnf_target(vnf_id: str) -> Target:
    return Target(TargetKind.VNF, vnf_id, vnf=vnf_id, vnfd="vfw")


def shipped_policies() -> list[KpiPolicy]:
    result = load_policies(DEFAULTS / "policies")
    assert result.ok, result.problems
    return result.policies


async def world_with(redis: Any, keys: Keys, policies: list[KpiPolicy], **options: Any) -> World:
    inventory, catalogue = Inventory(redis, keys), Catalogue(redis, keys)
    await catalogue.onboard(load_vnfd(DEFAULTS / "vnfds" / "vfw.yaml"))
    clock = ScaledClock(speed=100, start=START)
    engine = PolicyEngine(redis, keys, inventory, catalogue, clock, policies, **options)
    return World(redis, keys, inventory, clock, engine)


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
    assert {g.guard: g.passed for g in decision.guards} == {
        "active": True,
        "max_instances": True,
        "cooldown": True,
    }
    assert await world.published() == [decision]


async def test_a_second_onset_within_the_cooldown_is_denied_and_still_published(
    world: World,
) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    [first] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-1"))
    [second] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-2"))

    assert first.approved
    assert not second.approved
    cooldown = next(g for g in second.guards if g.guard == "cooldown")
    assert not cooldown.passed
    assert first.id in cooldown.detail
    assert "cooldown" in second.reason
    assert [d.id for d in await world.published()] == [first.id, second.id]


async def test_after_the_cooldown_the_policy_acts_again(redis: Any, keys: Keys) -> None:
    [policy] = [p for p in shipped_policies() if p.name == "vfw-heal"]
    world = await world_with(redis, keys, [policy])
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    target = Target(TargetKind.VNFC, "c1", vnf="fw1", vnfd="vfw")

    [first] = await world.engine.handle(world.onset("vfw-heal", target, "v-1"))
    await world.clock.sleep(policy.spec.guards.cooldown + 1)  # 60 s of clock time
    [second] = await world.engine.handle(world.onset("vfw-heal", target, "v-2"))

    assert first.approved and second.approved
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
    [denied] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-1"))

    # The VNF shrank meanwhile: the next ONSET must not be held back by the denial.
    await world.add_vnf("fw1", [("c0", "h1"), ("c1", "h1")], level=0)
    [approved] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-2"))

    assert not denied.approved
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


async def test_the_same_violation_handled_twice_yields_the_same_decisions(world: World) -> None:
    # A worker that crashed after publishing gets its violation redelivered.
    await world.add_vnf("fw1", [("a1", "h1")])
    await world.add_vnf("fw2", [("b1", "h1")])
    violation = world.onset("vfw-migrate", Target(TargetKind.HOST, "h1"))

    first = await world.engine.handle(violation)
    again = await world.engine.handle(violation)

    assert [d.id for d in again] == [d.id for d in first]
    assert len(first) == 2
    # The cooldown the first handling started does not deny its own redelivery.
    assert all(d.approved for d in first + again)


async def test_abated_yields_no_decision(world: World) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    onset = world.onset("vfw-scale-out", vnf_target("fw1"))
    abated = msgspec.structs.replace(onset, status=ViolationStatus.ABATED)

    assert await world.engine.handle(abated) == []
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


@pytest.mark.parametrize("recorded", [b"ONSET", None])
async def test_an_onset_still_active_or_with_no_recorded_status_is_approved(
    world: World, recorded: bytes | None
) -> None:
    await world.add_vnf("fw1", [("c1", "h1"), ("c2", "h2")])
    if recorded is not None:
        await world.redis.set(world.keys.violation_state("v-1"), recorded, ex=86_400)

    [decision] = await world.engine.handle(world.onset("vfw-scale-out", vnf_target("fw1"), "v-1"))

    assert decision.approved
    [active] = [g for g in decision.guards if g.guard == "active"]
    assert active.passed


async def test_the_decisions_stream_is_trimmed_to_maxlen(redis: Any, keys: Keys) -> None:
    [policy] = [p for p in shipped_policies() if p.name == "vfw-migrate"]
    world = await world_with(redis, keys, [policy], maxlen=100)
    # Every violation on h1 yields one migrate decision per VNFC there: 300 each.
    await world.add_vnf("fw1", [(f"c{i}", "h1") for i in range(300)])

    for n in range(3):
        decisions = await world.engine.handle(
            world.onset("vfw-migrate", Target(TargetKind.HOST, "h1"), f"v-{n}")
        )
        assert len(decisions) == 300

    # Approximate trimming removes whole macro-nodes (100 entries), so allow their slack.
    assert 100 <= await redis.xlen(keys.stream("decisions")) <= 300


async def test_the_engine_consumes_the_violations_stream(redis: Any, keys: Keys) -> None:
    inventory, catalogue = Inventory(redis, keys), Catalogue(redis, keys)
    await catalogue.onboard(load_vnfd(DEFAULTS / "vnfds" / "vfw.yaml"))
    clock = ScaledClock(speed=100, start=START)
    engine = PolicyEngine(
        redis,
        keys,
        inventory,
        catalogue,
        clock,
        shipped_policies(),
        settings=ConsumerSettings(block_ms=50),
    )
    world = World(redis, keys, inventory, clock, engine)
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
        clock = ScaledClock(speed=100, start=START)
        engine = PolicyEngine(
            redis.client,
            keys,
            inventory,
            catalogue,
            clock,
            shipped_policies(),
            settings=ConsumerSettings(block_ms=50),
        )
        world = World(redis.client, keys, inventory, clock, engine)
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
