"""The actuator runs decisions through a real VNFM and SimulatedVim, on a real Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from actuator.idempotency import op_id_for
from actuator.lease import VnfLease
from actuator.service import Actuator
from bus.contracts import Action, OpState, Target, TargetKind
from bus.keys import Keys
from bus.streams import ConsumerSettings, StreamPublisher
from mano_core.catalogue import Catalogue
from mano_core.models import VnfcInstance, VnfInstance
from mano_core.vnfd import parse_vnfd
from tests.actuator_support import (
    FAST,
    LB,
    LEASE_TTL_S,
    World,
    decision,
    make_world,
    restartable_redis,
    running,
    until,
    vnf_target,
    vnfc_target,
)

SCALE: dict[str, Any] = {"aspect": "web-scale"}


async def test_an_approved_scale_out_adds_a_vnfc_and_reports_completed(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    await StreamPublisher(redis, keys.stream("decisions")).publish(
        decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    )

    async with running(world.actuator()):
        await until(lambda: has_results(world, 1))
        await until(lambda: no_pending(world))

    [result] = await world.results()
    after = await world.inventory.get(vnf.id)
    assert result.state is OpState.COMPLETED
    assert (result.decision_id, result.vnf, result.operation) == ("d1", vnf.id, "SCALE")
    assert result.op_id == op_id_for("d1")
    assert result.request_id == "r-d1"
    assert len(after.vnfcs) == len(vnf.vnfcs) + 1
    new = {c.id for c in after.vnfcs} - {c.id for c in vnf.vnfcs}
    assert set(result.detail["added"]) == new
    [op] = await world.actions(vnf.id)
    assert (op.id, op.decision_id, op.state) == (op_id_for("d1"), "d1", OpState.COMPLETED)


async def test_the_same_decision_delivered_twice_runs_one_operation(redis: Any, keys: Keys) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    twice = decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    publisher = StreamPublisher(redis, keys.stream("decisions"))
    await publisher.publish_many([twice, twice])

    async with running(world.actuator()):
        await until(lambda: has_results(world, 1))
        await until(lambda: no_pending(world))
    # And once more, much later, by another worker: the recorded result comes back.
    again = await world.actuator(consumer="late").execute(twice)

    assert len(await world.actions(vnf.id)) == 1
    assert len((await world.inventory.get(vnf.id)).vnfcs) == len(vnf.vnfcs) + 1
    [result] = await world.results()
    assert again == result


async def test_one_vnf_runs_one_operation_at_a_time_while_another_runs_in_parallel(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf_a = await world.vnf("lb-a")
    vnf_b = await world.vnf("lb-b")
    await StreamPublisher(redis, keys.stream("decisions")).publish_many(
        [
            decision("a1", Action.SCALE_OUT, vnf_target(vnf_a), **SCALE),
            decision("a2", Action.SCALE_OUT, vnf_target(vnf_a), **SCALE),
            decision("b1", Action.SCALE_OUT, vnf_target(vnf_b), **SCALE),
        ]
    )

    async with running(world.actuator(concurrency=4)):
        await until(lambda: has_results(world, 3))

    assert {r.decision_id: r.state for r in await world.results()} == {
        "a1": OpState.COMPLETED,
        "a2": OpState.COMPLETED,
        "b1": OpState.COMPLETED,
    }
    first, second = await world.actions(vnf_a.id)
    [other] = await world.actions(vnf_b.id)
    assert second.started_at >= first.state_entered_at, "the VNF's operations overlapped"
    assert other.started_at < first.state_entered_at and first.started_at < other.state_entered_at
    assert len((await world.inventory.get(vnf_a.id)).vnfcs) == len(vnf_a.vnfcs) + 2


async def test_a_temporary_vim_failure_is_retried_and_completes(redis: Any, keys: Keys) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    await world.vim.fail_next("create", temporary=True, count=1, retry_after=5.0)

    result = await world.actuator().execute(
        decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    )

    assert result is not None and result.state is OpState.COMPLETED
    [op] = await world.actions(vnf.id)
    states = [change.state for change in op.history]
    assert states.count(OpState.FAILED_TEMP) == 1 and states[-1] is OpState.COMPLETED
    failed_at, retried_at = (
        next(c.at for c in op.history if c.state is OpState.FAILED_TEMP),
        [c.at for c in op.history if c.state is OpState.PROCESSING][-1],
    )
    assert retried_at - failed_at >= 5.0, "retried before retry_after"
    assert len((await world.inventory.get(vnf.id)).vnfcs) == len(vnf.vnfcs) + 1


async def test_an_operation_that_keeps_failing_temporarily_is_failed_after_max_attempts(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    await world.vim.fail_next("create", temporary=True, count=10, retry_after=1.0)

    result = await world.actuator(max_attempts=3).execute(
        decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    )

    assert result is not None and result.state is OpState.FAILED
    assert result.error is not None and "3 attempts" in result.error
    [op] = await world.actions(vnf.id)
    assert [c.state for c in op.history].count(OpState.FAILED_TEMP) == 3
    assert [r.state for r in await world.results()] == [OpState.FAILED]


async def test_a_permanent_vim_failure_ends_failed_or_rolled_back(redis: Any, keys: Keys) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    await world.vim.fail_next("create", temporary=False)

    result = await world.actuator().execute(
        decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    )

    assert result is not None
    assert result.state in (OpState.FAILED, OpState.ROLLED_BACK)
    assert result.error
    [op] = await world.actions(vnf.id)
    assert [c.state for c in op.history].count(OpState.PROCESSING) == 1, "a permanent error retried"
    assert len((await world.inventory.get(vnf.id)).vnfcs) == len(vnf.vnfcs)
    assert [r.state for r in await world.results()] == [result.state]


async def test_a_lease_left_by_a_dead_worker_expires_by_itself_and_the_work_proceeds(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    dead = VnfLease(redis, keys, world.clock, vnf.id, ttl_s=LEASE_TTL_S, holder="dead-worker")
    assert await dead.try_acquire()
    taken_at = world.clock.now()

    result = await world.actuator().execute(
        decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    )

    assert result is not None and result.state is OpState.COMPLETED
    [op] = await world.actions(vnf.id)
    # Not a moment before the dead worker's lease ran out (5% for rounding).
    assert op.started_at >= taken_at + 0.95 * LEASE_TTL_S
    assert await dead.holder() is None, "the actuator's own lease was released"


async def test_denied_decisions_are_acknowledged_and_not_run(redis: Any, keys: Keys) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    denied = decision("d1", Action.SCALE_OUT, vnf_target(vnf), approved=False, **SCALE)
    await StreamPublisher(redis, keys.stream("decisions")).publish(denied)
    actuator = world.actuator()

    async with running(actuator):
        await until(lambda: handled(actuator, 1))

    assert await world.pending_decisions() == 0
    assert await actuator.execute(denied) is None
    assert await world.actions(vnf.id) == []
    assert await world.results() == []
    assert len((await world.inventory.get(vnf.id)).vnfcs) == len(vnf.vnfcs)


async def test_a_decision_whose_vnf_or_vnfc_is_gone_fails_with_a_clear_error(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    gone_vnf = Target(kind=TargetKind.VNF, id="no-such-vnf", vnf="no-such-vnf")
    await StreamPublisher(redis, keys.stream("decisions")).publish_many(
        [
            decision("d1", Action.HEAL, vnfc_target(vnf, "no-such-vnfc"), level="hard_reboot"),
            decision("d2", Action.SCALE_OUT, gone_vnf, **SCALE),
            decision("d3", Action.SCALE_OUT, vnf_target(vnf), **SCALE),
        ]
    )

    async with running(world.actuator()):
        await until(lambda: has_results(world, 3))
        await until(lambda: no_pending(world))

    results = {r.decision_id: r for r in await world.results()}
    assert results["d1"].state is OpState.FAILED
    assert "no-such-vnfc" in (results["d1"].error or "")
    assert results["d2"].state is OpState.FAILED
    assert "no-such-vnf" in (results["d2"].error or "")
    assert results["d3"].state is OpState.COMPLETED, "a bad decision stopped the others"


async def test_heal_and_migrate_act_on_the_vnfc(redis: Any, keys: Keys) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    vnfc = vnf.vnfcs[0]
    await world.vim.crash_server(vnfc.server_id)
    actuator = world.actuator()

    healed = await actuator.execute(
        decision("d1", Action.HEAL, vnfc_target(vnf, vnfc.id), level="hard_reboot")
    )
    moved = await actuator.execute(
        decision("d2", Action.MIGRATE, vnfc_target(vnf, vnfc.id), destination=None, live=True)
    )

    assert healed is not None and (healed.operation, healed.state) == ("HEAL", OpState.COMPLETED)
    [server] = [s for s in (await world.vim.servers()) if s.id == vnfc.server_id]
    assert server.status == "ACTIVE"
    assert moved is not None and (moved.operation, moved.state) == ("MIGRATE", OpState.COMPLETED)
    after = (await world.inventory.get(vnf.id)).vnfc(vnfc.id)
    assert after is not None and after.host != vnfc.host
    assert len(await world.actions(vnf.id)) == 2
    assert [r.decision_id for r in await world.results()] == ["d1", "d2"]


async def test_change_flavour_resizes_every_vnfc_and_operate_stops_the_vnf(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    actuator = world.actuator()

    resized = await actuator.execute(
        decision("d1", Action.CHANGE_FLAVOUR, vnf_target(vnf), vdu="web", vcpus=2, ram_mb=1024,
                 disk_gb=0)
    )  # fmt: skip
    stopped = await actuator.execute(
        decision("d2", Action.OPERATE, vnf_target(vnf), state="STOPPED", graceful=True)
    )

    assert resized is not None, "approved"
    assert (resized.operation, resized.state) == ("CHANGE_FLAVOUR", OpState.COMPLETED)
    servers = {s.id: s for s in await world.vim.servers()}
    assert {(servers[c.server_id].flavor.vcpus, servers[c.server_id].flavor.ram_mb)
            for c in vnf.vnfcs} == {(2, 1024)}  # fmt: skip
    assert stopped is not None and (stopped.operation, stopped.state) == (
        "OPERATE", OpState.COMPLETED
    )  # fmt: skip
    assert (await world.inventory.get(vnf.id)).vnf_state.value == "STOPPED"
    assert {servers[c.server_id].id for c in vnf.vnfcs} <= {
        s.id for s in await world.vim.servers() if s.status == "SHUTOFF"
    }
    refused = await actuator.execute(decision("d3", Action.OPERATE, vnf_target(vnf), state="UP"))
    assert refused is not None and refused.state is OpState.FAILED
    assert "STARTED or STOPPED" in (refused.error or "")


async def heal_on_a_dead_host(world: World) -> tuple[VnfInstance, VnfcInstance]:
    """A VNF whose first VNFC's host died, and a decision to heal it by a reboot."""
    vnf = await world.vnf("lb-1")
    vnfc = vnf.vnfcs[0]
    # Its host dies: the server can be neither rebooted nor rebuilt in place.
    assert vnfc.host is not None
    await world.vim.fail_host(vnfc.host)
    await StreamPublisher(world.redis, world.keys.stream("decisions")).publish(
        decision("d1", Action.HEAL, vnfc_target(vnf, vnfc.id), level="hard_reboot")
    )
    return vnf, vnfc


async def test_a_heal_that_fails_runs_one_operation_and_reports_it_failed(
    redis: Any, keys: Keys
) -> None:
    # Climbing the recovery ladder is the policy stage's decision, taken from
    # this result: the actuator runs each decision as one operation.
    world = await make_world(redis, keys)
    vnf, _ = await heal_on_a_dead_host(world)

    async with running(world.actuator()):
        await until(lambda: has_results(world, 1))
        await until(lambda: no_pending(world))

    [result] = await world.results()
    assert result.state is OpState.FAILED and "is down" in (result.error or "")
    ops = await world.actions(vnf.id)
    assert [(op.operation.value, op.operation_params["level"], op.state) for op in ops] == [
        ("HEAL", "hard_reboot", OpState.FAILED)
    ]


async def test_an_operation_that_outlasts_its_decisions_timeout_is_failed(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    # A server boots in 20 s (clock): the scale-out cannot finish within 5 s.
    slow = decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    slow = _with_timeout(slow, 5.0)

    result = await world.actuator().execute(slow)

    assert result is not None and result.state is OpState.FAILED
    assert result.error == "timed out after 5 s"
    [op] = await world.actions(vnf.id)
    assert op.state is OpState.FAILED and op.error == "timed out after 5 s"


async def test_a_temporary_failure_waits_at_least_the_back_off_before_the_retry(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    await world.vim.fail_next("create", temporary=True, retry_after=0.0)

    result = await world.actuator(retry_base_s=30.0).execute(
        decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    )

    assert result is not None and result.state is OpState.COMPLETED
    [op] = await world.actions(vnf.id)
    failed = next(c.at for c in op.history if c.state is OpState.FAILED_TEMP)
    retried = next(c.at for c in op.history if c.state is OpState.PROCESSING and c.at > failed)
    assert retried - failed >= 30.0, "the VIM said retry at once; the back-off still applies"


def _with_timeout(d: Any, seconds: float) -> Any:
    import msgspec

    return msgspec.structs.replace(d, timeout_s=seconds)


async def test_a_decision_left_by_a_stopped_worker_is_taken_over_and_finishes_the_same_op(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    await StreamPublisher(redis, keys.stream("decisions")).publish(
        decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    )
    quick = dataclasses.replace(FAST, claim_idle_ms=200)
    await abandon_under_way(world, vnf.id, "d1", quick)
    assert await world.pending_decisions() == 1, "the unfinished decision was acknowledged"

    async with running(world.actuator(consumer="second", settings=quick)):
        await until(lambda: has_results(world, 1))
        await until(lambda: no_pending(world))

    [result] = await world.results()
    assert result.state is OpState.COMPLETED
    [op] = await world.actions(vnf.id)
    assert op.id == op_id_for("d1")
    assert "interrupted" in [c.detail.split(":")[0] for c in op.history]
    assert len((await world.inventory.get(vnf.id)).vnfcs) == len(vnf.vnfcs) + 1
    assert len(await world.vim.servers()) == len(vnf.vnfcs) + 1, "a server was leaked or doubled"


async def test_a_decision_under_way_is_not_taken_over_by_another_worker(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    # The operation waits out a temporary failure: 2.5 s of wall time, far
    # longer than the 600 ms after which an idle pending entry is taken over
    # (the keepalive re-claims it every 200 ms: roomy on a busy machine).
    await world.vim.fail_next("create", temporary=True, retry_after=500.0)
    await StreamPublisher(redis, keys.stream("decisions")).publish(
        decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
    )
    quick = dataclasses.replace(FAST, claim_idle_ms=600)
    a = world.actuator(consumer="a", settings=quick)
    b = world.actuator(consumer="b", settings=quick)

    async with running(a), running(b):
        await until(lambda: has_results(world, 1))
        await until(lambda: no_pending(world))

    assert a.consumer.handled + b.consumer.handled == 1, "the entry was delivered twice"
    assert [r.state for r in await world.results()] == [OpState.COMPLETED]


async def test_decisions_older_than_five_minutes_are_not_run_and_fail_expired(
    redis: Any, keys: Keys
) -> None:
    # A backlog: the actuator was down while these were decided.
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    now = world.clock.now()
    await StreamPublisher(redis, keys.stream("decisions")).publish_many(
        [
            decision("stale", Action.SCALE_OUT, vnf_target(vnf), decided_at=now - 400, **SCALE),
            decision("stale-note", Action.NOTIFY, vnf_target(vnf), decided_at=now - 400),
            decision("fresh", Action.SCALE_OUT, vnf_target(vnf), decided_at=now, **SCALE),
        ]
    )
    # The default limit, 300 s, as the platform runs it.
    actuator = Actuator(
        redis, keys, world.vnfm, world.clock, lease_ttl_s=LEASE_TTL_S, settings=FAST
    )

    async with running(actuator):
        await until(lambda: has_results(world, 3))
        await until(lambda: no_pending(world))

    results = {r.decision_id: r for r in await world.results()}
    for stale in (results["stale"], results["stale-note"]):
        assert stale.state is OpState.FAILED
        expired = re.fullmatch(
            r"expired: decided (\d+) s ago, older than the 300 s limit", stale.error or ""
        )
        assert expired is not None and int(expired[1]) >= 400, stale.error
    assert results["fresh"].state is OpState.COMPLETED
    [op] = await world.actions(vnf.id)
    assert op.decision_id == "fresh", "the stale decision ran an operation"
    assert len((await world.inventory.get(vnf.id)).vnfcs) == len(vnf.vnfcs) + 1


async def test_a_decision_that_grows_too_old_waiting_for_its_vnf_is_not_run(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    # Another worker holds the VNF for a whole lease TTL (120 s).
    busy = VnfLease(redis, keys, world.clock, vnf.id, ttl_s=LEASE_TTL_S, holder="other-worker")
    assert await busy.try_acquire()
    fresh = decision("d1", Action.SCALE_OUT, vnf_target(vnf), decided_at=world.clock.now(), **SCALE)

    result = await world.actuator(max_decision_age_s=60.0).execute(fresh)

    assert result is not None and result.state is OpState.FAILED
    assert result.error is not None and result.error.endswith("older than the 60 s limit")
    assert await world.actions(vnf.id) == []
    assert len((await world.inventory.get(vnf.id)).vnfcs) == len(vnf.vnfcs)
    assert [r.decision_id for r in await world.results()] == ["d1"]


async def test_an_operation_already_under_way_is_finished_however_old_its_decision(
    redis: Any, keys: Keys
) -> None:
    world = await make_world(redis, keys)
    vnf = await world.vnf("lb-1")
    d1 = decision("d1", Action.SCALE_OUT, vnf_target(vnf), decided_at=world.clock.now(), **SCALE)
    await StreamPublisher(redis, keys.stream("decisions")).publish(d1)
    quick = dataclasses.replace(FAST, claim_idle_ms=200)
    await abandon_under_way(world, vnf.id, "d1", quick)

    # The decision is older than the limit by the time another worker takes it over.
    late = world.actuator(consumer="second", settings=quick, max_decision_age_s=1.0)
    async with running(late):
        await until(lambda: has_results(world, 1))

    [result] = await world.results()
    assert result.state is OpState.COMPLETED, result.error
    assert result.finished_at is not None and result.finished_at - d1.decided_at > 1.0
    assert len((await world.inventory.get(vnf.id)).vnfcs) == len(vnf.vnfcs) + 1
    assert len(await world.vim.servers()) == len(vnf.vnfcs) + 1, "a server was leaked or doubled"


async def test_an_actuator_started_while_redis_is_down_waits_for_it_then_works(
    keys: Keys,
) -> None:
    async with restartable_redis() as redis:
        world = await make_world(redis.client, keys)
        redis.stop()
        stop = asyncio.Event()
        task = asyncio.create_task(world.actuator().run(stop))
        try:
            await asyncio.sleep(0.5)
            assert not task.done(), "the actuator ended while Redis was down"

            redis.start()  # back, and empty: onboard the VNFD (and its image) again
            await Catalogue(redis.client, keys).onboard(parse_vnfd(LB))
            await world.vim.add_image("web-image", "1")
            vnf = await world.vnf("lb-1")
            await StreamPublisher(redis.client, keys.stream("decisions")).publish(
                decision("d1", Action.SCALE_OUT, vnf_target(vnf), **SCALE)
            )
            await until(lambda: has_results(world, 1))
            [result] = await world.results()
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)

    assert result.state is OpState.COMPLETED, result.error


async def has_results(world: World, count: int) -> bool:
    return len(await world.results()) >= count


async def no_pending(world: World) -> bool:
    return await world.pending_decisions() == 0


async def handled(actuator: Any, count: int) -> bool:
    return bool(actuator.consumer.handled >= count)


async def abandon_under_way(
    world: World, vnf_id: str, decision_id: str, settings: ConsumerSettings
) -> None:
    """A first worker starts the decision's operation and stops half way (no cleanup).

    The VIM stops answering the operation's create call, so the operation
    stays under way until the worker is stopped, however slow the machine.
    """
    hung = await world.vim.hang_next("create")
    first = asyncio.create_task(
        world.actuator(consumer="first", settings=settings).run(asyncio.Event())
    )

    await asyncio.wait_for(hung.wait(), 5)
    op = await world.ops.find(vnf_id, op_id_for(decision_id))
    assert op is not None and op.state is OpState.PROCESSING, op
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
