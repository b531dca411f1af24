"""LCM operation occurrences: the SOL003 state machine, stored on a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bus.clock import ScaledClock
from bus.contracts import OpState
from bus.keys import Keys
from mano_core.errors import InvalidRequest, NotFound
from mano_core.lcm import OpOccStore
from mano_core.models import LcmOperation


@pytest.fixture
def ops(redis: Any, keys: Keys) -> OpOccStore:
    return OpOccStore(redis, keys, ScaledClock(speed=200))


async def test_a_new_occurrence_starts_and_reads_back(ops: OpOccStore) -> None:
    op = await ops.create("vnf-1", LcmOperation.SCALE, {"aspect_id": "fw-scale"}, decision_id="d1")
    assert op.state is OpState.STARTING
    assert [h.state for h in op.history] == [OpState.STARTING]
    assert await ops.get("vnf-1", op.id) == op
    assert op.decision_id == "d1"


async def test_creating_with_an_existing_op_id_returns_the_existing_one(ops: OpOccStore) -> None:
    first = await ops.create("vnf-1", LcmOperation.HEAL, {"level": "reboot"}, op_id="op-1")
    first = await ops.transition(first, OpState.PROCESSING)
    again = await ops.create("vnf-1", LcmOperation.HEAL, {"level": "other"}, op_id="op-1")
    assert again == first
    assert len(await ops.list("vnf-1")) == 1


async def test_the_happy_path_records_every_state(ops: OpOccStore) -> None:
    op = await ops.create("vnf-1", LcmOperation.SCALE, {})
    op = await ops.transition(op, OpState.PROCESSING)
    op = await ops.transition(op, OpState.COMPLETED, result={"added": ["c1"]})
    stored = await ops.get("vnf-1", op.id)
    assert stored.state is OpState.COMPLETED and stored.state.final
    assert stored.result == {"added": ["c1"]}
    assert [h.state for h in stored.history] == [
        OpState.STARTING,
        OpState.PROCESSING,
        OpState.COMPLETED,
    ]
    assert stored.state_entered_at >= stored.started_at


async def test_a_temporary_failure_carries_retry_after_and_can_be_retried(
    ops: OpOccStore,
) -> None:
    op = await ops.create("vnf-1", LcmOperation.SCALE, {})
    op = await ops.transition(op, OpState.PROCESSING)
    op = await ops.transition(op, OpState.FAILED_TEMP, error="VIM busy", retry_after=5.0)
    assert (op.error, op.retry_after) == ("VIM busy", 5.0)
    op = await ops.transition(op, OpState.PROCESSING, detail="retry")
    # A retry starts clean: the old error no longer describes the operation.
    assert (op.error, op.retry_after) == (None, None)
    op = await ops.transition(op, OpState.COMPLETED)
    assert (await ops.get("vnf-1", op.id)).state is OpState.COMPLETED


async def test_rollback_keeps_the_error_that_caused_it(ops: OpOccStore) -> None:
    op = await ops.create("vnf-1", LcmOperation.SCALE, {})
    op = await ops.transition(op, OpState.PROCESSING)
    op = await ops.transition(op, OpState.FAILED_TEMP, error="no valid host")
    op = await ops.transition(op, OpState.ROLLING_BACK)
    op = await ops.transition(op, OpState.ROLLED_BACK)
    assert (op.state, op.error) == (OpState.ROLLED_BACK, "no valid host")


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], OpState.COMPLETED),
        ([], OpState.FAILED),
        ([OpState.PROCESSING], OpState.FAILED),
        ([OpState.PROCESSING], OpState.ROLLING_BACK),
        ([OpState.PROCESSING, OpState.COMPLETED], OpState.PROCESSING),
        ([OpState.PROCESSING, OpState.FAILED_TEMP, OpState.FAILED], OpState.PROCESSING),
        ([OpState.PROCESSING, OpState.FAILED_TEMP, OpState.ROLLING_BACK], OpState.FAILED),
    ],
)
async def test_illegal_transitions_are_refused_and_leave_the_record_alone(
    ops: OpOccStore, path: list[OpState], illegal: OpState
) -> None:
    op = await ops.create("vnf-1", LcmOperation.SCALE, {})
    for state in path:
        op = await ops.transition(op, state)
    with pytest.raises(InvalidRequest, match=f"to {illegal}"):
        await ops.transition(op, illegal)
    assert await ops.get("vnf-1", op.id) == op


async def test_a_stale_copy_cannot_move_an_occurrence_twice(ops: OpOccStore) -> None:
    # Two workers hold the same PROCESSING occurrence; only the first move wins.
    op = await ops.create("vnf-1", LcmOperation.HEAL, {})
    op = await ops.transition(op, OpState.PROCESSING)
    await ops.transition(op, OpState.COMPLETED)
    with pytest.raises(InvalidRequest, match="moved by someone else"):
        await ops.transition(op, OpState.FAILED_TEMP, error="late")
    assert (await ops.get("vnf-1", op.id)).state is OpState.COMPLETED


async def test_an_unknown_occurrence_is_not_found(ops: OpOccStore) -> None:
    assert await ops.find("vnf-1", "nope") is None
    with pytest.raises(NotFound):
        await ops.get("vnf-1", "nope")


async def test_list_is_newest_first_per_vnf_and_overall(ops: OpOccStore) -> None:
    created = []
    for vnf_id in ("a", "b", "a", "b", "a"):
        created.append(await ops.create(vnf_id, LcmOperation.HEAL, {}))
    newest_first = list(reversed(created))
    assert [o.id for o in await ops.list()] == [o.id for o in newest_first]
    assert [o.id for o in await ops.list("a")] == [o.id for o in newest_first if o.vnf_id == "a"]
    assert [o.id for o in await ops.list(limit=2)] == [o.id for o in newest_first[:2]]
    assert await ops.list("nobody") == []


async def test_finished_occurrences_expire_after_the_retention_and_leave_the_index(
    redis: Any, keys: Keys
) -> None:
    clock = ScaledClock(speed=1000.0)
    store = OpOccStore(redis, keys, clock, retention_s=100.0)  # 0.1 s of wall time
    done = await store.create("v1", LcmOperation.SCALE, {})
    done = await store.transition(done, OpState.PROCESSING)
    running = await store.create("v1", LcmOperation.HEAL, {})
    await store.transition(done, OpState.COMPLETED)
    assert 0 < await redis.pttl(keys.op("v1", done.id)) <= 100
    assert await redis.pttl(keys.op("v1", running.id)) == -1, "unfinished ones never expire"
    await asyncio.sleep(0.3)
    later = await store.create("v1", LcmOperation.MIGRATE, {})
    assert await redis.exists(keys.op("v1", done.id)) == 0, "the finished one expired"
    assert await store.find("v1", running.id) is not None, "the unfinished one is kept"
    # The indexes list what started within the retention.
    assert [op.id for op in await store.list("v1")] == [later.id]
    assert await redis.zrange(keys.op_index(), 0, -1) == [f"v1/{later.id}".encode()]


async def test_the_index_of_a_retired_vnf_expires_after_the_retention(
    redis: Any, keys: Keys
) -> None:
    clock = ScaledClock(speed=1000.0)
    store = OpOccStore(redis, keys, clock, retention_s=100.0)  # 0.1 s of wall time
    op = await store.create("v1", LcmOperation.TERMINATE, {})
    op = await store.transition(op, OpState.PROCESSING)
    await store.retire("v1")
    await store.transition(op, OpState.COMPLETED)
    assert [o.id for o in await store.list("v1")] == [op.id], "listable while kept"
    await store.retire("never-had-ops")  # nothing to retire: no error
    await asyncio.sleep(0.3)
    assert await redis.exists(keys.vnf_ops("v1"), keys.op("v1", op.id)) == 0
    assert await store.list("v1") == []
