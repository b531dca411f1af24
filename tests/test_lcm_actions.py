"""LCM operation occurrences: notifications, the operator's retry/rollback/fail/cancel, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bus.contracts import OpState
from bus.keys import Keys
from mano_core.errors import InvalidRequest
from mano_core.models import ComputeFlavour, LcmOperation
from mano_core.vim.base import ServerStatus
from tests.vnfm_support import World, eventually, make_world, states


@pytest.fixture
async def world(redis: Any, keys: Keys) -> AsyncIterator[World]:
    async with make_world(redis, keys) as w:
        yield w


async def test_every_transition_is_notified_with_who_started_it(world: World) -> None:
    vnf = await world.deploy()
    op = await world.vnfm.scale(vnf.id, "web-scale", "out", decision_id="d-1")
    assert op.is_automatic and op.state == "COMPLETED"
    notes = [n for n in await world.notifications() if n.op_id == op.id]
    assert [n.state for n in notes] == ["STARTING", "PROCESSING", "COMPLETED"]
    assert all(n.is_automatic and n.operation == "SCALE" and n.vnf == vnf.id for n in notes)
    assert notes[1].detail == "granted"
    manual = [n for n in await world.notifications() if n.operation == "INSTANTIATE"]
    assert manual and not any(n.is_automatic for n in manual)


async def test_the_notification_stream_is_bounded(redis: Any, keys: Keys) -> None:
    async with make_world(redis, keys) as w:
        store = type(w.ops)(redis, keys, w.clock, notifications_maxlen=10)
        for i in range(300):
            await store.create("vnf-x", LcmOperation.HEAL, {}, op_id=f"o{i}")
        assert await redis.xlen(keys.stream("lcm_notifications")) < 300


async def test_retry_takes_a_failed_temp_operation_to_completed(world: World) -> None:
    vnf = await world.deploy()
    await world.sim.fail_next("create", temporary=True, retry_after=7.0)
    op = await world.vnfm.scale(vnf.id, "web-scale", "out")
    assert (op.state, op.retry_after) == ("FAILED_TEMP", 7.0)
    done = await world.vnfm.retry(op.id)
    assert done.state == "COMPLETED", done.error
    assert states(done)[-3:] == ["FAILED_TEMP", "PROCESSING", "COMPLETED"]
    assert len((await world.vnf(vnf.id)).vnfcs_of("web")) == 3
    with pytest.raises(InvalidRequest, match="only FAILED_TEMP is retried"):
        await world.vnfm.retry(op.id)


async def test_rollback_undoes_exactly_what_a_scale_out_added(world: World) -> None:
    vnf = await world.deploy()
    await world.sim.fail_next("create", temporary=True, after=1)
    op = await world.vnfm.scale(vnf.id, "web-scale", "out", 2)
    assert op.state == "FAILED_TEMP"
    assert len(await world.servers(vnf.id)) == len(vnf.vnfcs) + 1
    back = await world.vnfm.rollback(op.id)
    assert back.state == "ROLLED_BACK", back.error
    assert {s.id for s in await world.servers(vnf.id)} == {c.server_id for c in vnf.vnfcs}
    assert (await world.vnf(vnf.id)).vnfcs == vnf.vnfcs


async def test_rollback_of_an_instantiation_leaves_nothing(world: World) -> None:
    await world.sim.fail_next("create", temporary=True, after=2)
    vnf, op = await world.vnfm.instantiate("app", "app-1")
    assert op.state == "FAILED_TEMP"
    back = await world.vnfm.rollback(op.id)
    assert back.state == "ROLLED_BACK", back.error
    assert await world.leftovers(vnf.id) == {
        "servers": [], "ports": [], "networks": [], "groups": []
    }  # fmt: skip
    assert await world.inventory.find(vnf.id) is None


async def test_rollback_of_a_change_of_flavour_resizes_back(world: World) -> None:
    vnf = await world.deploy()
    await world.sim.fail_next("resize", temporary=True, after=1)
    op = await world.vnfm.change_flavour(vnf.id, "web", ComputeFlavour(2, 1024))
    assert op.state == "FAILED_TEMP"
    back = await world.vnfm.rollback(op.id)
    assert back.state == "ROLLED_BACK", back.error
    for vnfc in vnf.vnfcs_of("web"):
        server = await world.sim.get_server(vnfc.server_id)
        assert (server.status, server.flavor.vcpus) == (ServerStatus.ACTIVE, 1)


async def test_rollback_of_an_upgrade_rebuilds_from_the_old_images(world: World) -> None:
    vnf = await world.deploy()
    await world.sim.fail_next("rebuild", temporary=True, after=2)
    op = await world.vnfm.change_package(vnf.id, "2.0")
    assert op.state == "FAILED_TEMP"
    back = await world.vnfm.rollback(op.id)
    assert back.state == "ROLLED_BACK", back.error
    images = {i.id: i.version for i in await world.sim.images()}
    assert {images[s.image] for s in await world.servers(vnf.id)} == {"1"}


async def test_an_operation_that_cannot_be_undone_is_not_rolled_back(world: World) -> None:
    vnf = await world.deploy()
    await world.sim.fail_next("reboot", temporary=True)
    op = await world.vnfm.heal(vnf.id, vnf.vnfcs[0].id, "hard_reboot")
    assert op.state == "FAILED_TEMP"
    with pytest.raises(InvalidRequest, match="cannot be rolled back"):
        await world.vnfm.rollback(op.id)


async def test_fail_gives_a_failed_temp_operation_up(world: World) -> None:
    vnf = await world.deploy()
    await world.sim.fail_next("create", temporary=True)
    op = await world.vnfm.scale(vnf.id, "web-scale", "out")
    failed = await world.vnfm.fail(op.id)
    assert failed.state == "FAILED"
    assert states(failed)[-2:] == ["FAILED_TEMP", "FAILED"]
    with pytest.raises(InvalidRequest, match="only FAILED_TEMP is failed"):
        await world.vnfm.fail(op.id)


async def test_cancel_stops_a_running_operation_at_its_next_step(redis: Any, keys: Keys) -> None:
    async with make_world(redis, keys, boot_s=400.0, timeout_s=4000.0) as w:  # 1 s wall a boot
        vnf = await w.deploy()
        running = asyncio.create_task(w.vnfm.scale(vnf.id, "web-scale", "out", op_id="s-1"))

        async def started() -> Any:
            ops = await w.ops.list(vnf.id)
            return next((o for o in ops if o.id == "s-1" and o.state == "PROCESSING"), None)

        op = await eventually(started)
        asked = await w.vnfm.cancel(op.id)
        assert asked.is_cancel_pending
        cancelled = await asyncio.wait_for(running, 10)
        assert cancelled.state == "FAILED_TEMP"
        assert cancelled.history[-1].detail == "cancelled"
        back = await w.vnfm.rollback(cancelled.id)
        assert back.state == "ROLLED_BACK", back.error
        assert {s.id for s in await w.servers(vnf.id)} == {c.server_id for c in vnf.vnfcs}


async def test_cancel_settles_an_occurrence_nobody_runs(world: World) -> None:
    starting = await world.ops.create("vnf-1", LcmOperation.SCALE, {}, op_id="a")
    assert (await world.vnfm.cancel(starting.id)).state == "ROLLED_BACK"
    processing = await world.ops.create("vnf-1", LcmOperation.SCALE, {}, op_id="b")
    processing = await world.ops.transition(processing, OpState.PROCESSING)
    assert (await world.vnfm.cancel(processing.id)).state == "FAILED_TEMP"
    with pytest.raises(InvalidRequest, match="only a running one is cancelled"):
        await world.vnfm.cancel(processing.id)


async def test_start_up_recovery_settles_what_stopped_workers_left(world: World) -> None:
    ops = world.ops
    starting = await ops.create("vnf-1", LcmOperation.INSTANTIATE, {}, op_id="s")
    processing = await ops.transition(
        await ops.create("vnf-1", LcmOperation.SCALE, {}, op_id="p"), OpState.PROCESSING
    )
    rolling = await ops.create("vnf-1", LcmOperation.SCALE, {}, op_id="r")
    for state in (OpState.PROCESSING, OpState.FAILED_TEMP, OpState.ROLLING_BACK):
        rolling = await ops.transition(rolling, state)
    alive = await ops.transition(
        await ops.create("vnf-1", LcmOperation.HEAL, {}, op_id="a"), OpState.PROCESSING
    )
    lease = ops.runner_lease(alive.vnf_id, alive.id)
    assert await lease.try_acquire()  # a live worker runs this one
    try:
        recovered = {op.id: op.state for op in await ops.recover()}
    finally:
        await lease.release()
    assert recovered == {"s": "ROLLED_BACK", "p": "FAILED_TEMP", "r": "FAILED_TEMP"}
    assert (await ops.get("vnf-1", "a")).state == "PROCESSING"
    for op in (starting, processing, rolling):
        last = (await ops.get("vnf-1", op.id)).history[-1]
        assert last.detail == "found abandoned at start-up"


async def test_an_operation_is_located_by_its_id_alone(world: World) -> None:
    vnf = await world.deploy()
    [op] = await world.ops.list(vnf.id)
    assert (await world.ops.locate(op.id)).vnf_id == vnf.id
    with pytest.raises(Exception, match="does not exist"):
        await world.ops.locate("nope")
