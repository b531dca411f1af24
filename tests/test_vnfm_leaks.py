"""Leak check: random sequences of operations with injected VIM failures, then a terminate,
leave nothing of the VNF on any VIM (servers, ports, networks, server groups)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.keys import Keys
from bus.redis import connect
from mano_core.errors import InvalidRequest, NotFound
from mano_core.models import ComputeFlavour, LcmOpOcc
from mano_core.vnfd import RecoveryLevel
from tests.vnfm_support import World, make_world

OPERATIONS = (
    "scale_out",
    "scale_in",
    "scale_to_big",
    "recreate",
    "rebuild",
    "migrate_live",
    "migrate_cold",
    "bigger",
    "upgrade",
    "downgrade",
    "stop",
    "start",
)
FAULTS = (
    None,
    ("create", True),
    ("create", False),
    ("delete", True),
    ("delete", False),
    ("delete_port", False),
    ("resize", False),
    ("rebuild", True),
    ("migrate", False),
    ("create_port", True),
)
AFTERMATH = ("retry", "rollback", "fail", "leave")
"""What the operator does with an occurrence left FAILED_TEMP."""

Step = tuple[str, tuple[str, bool] | None, int, str]


async def run_step(world: World, vnf_id: str, step: Step) -> LcmOpOcc | None:
    operation, fault, after, aftermath = step
    if fault is not None:
        name, temporary = fault
        await world.sim.fail_next(name, temporary=temporary, after=after)
    vnfm = world.vnfm
    vnf = await world.vnf(vnf_id)
    vnfc = vnf.vnfcs[after % len(vnf.vnfcs)] if vnf.vnfcs else None
    try:
        if operation == "scale_out":
            op = await vnfm.scale(vnf_id, "web-scale", "out", 1 + after % 2)
        elif operation == "scale_in":
            op = await vnfm.scale(vnf_id, "web-scale", "in")
        elif operation == "scale_to_big":
            op = await vnfm.scale_to_level(vnf_id, instantiation_level="big")
        elif operation in ("recreate", "rebuild") and vnfc is not None:
            level = RecoveryLevel.RECREATE if operation == "recreate" else RecoveryLevel.REBUILD
            op = await vnfm.heal(vnf_id, vnfc.id, level)
        elif operation.startswith("migrate") and vnfc is not None:
            op = await vnfm.migrate(vnf_id, vnfc.id, live=operation == "migrate_live")
        elif operation == "bigger":
            op = await vnfm.change_flavour(vnf_id, "web", ComputeFlavour(2 + after, 512 + after))
        elif operation in ("upgrade", "downgrade"):
            op = await vnfm.change_package(vnf_id, "2.0" if operation == "upgrade" else "1.0")
        elif operation in ("stop", "start"):
            op = await vnfm.operate(vnf_id, "STOPPED" if operation == "stop" else "STARTED")
        else:
            return None
    except (InvalidRequest, NotFound):
        return None  # a request that cannot be made now (bounds, state): nothing ran
    finally:
        await world.sim.clear_failures()
    if op.state == "FAILED_TEMP":
        if aftermath == "retry":
            op = await vnfm.retry(op.id)
        elif aftermath == "rollback":
            try:
                op = await vnfm.rollback(op.id)
            except InvalidRequest:
                op = await vnfm.fail(op.id)
        elif aftermath == "fail":
            op = await vnfm.fail(op.id)
    return op


async def scenario(redis_url: str, steps: list[Step], fault_at_start: bool) -> None:
    redis = connect(redis_url)
    keys = Keys(prefix=f"leak{uuid.uuid4().hex[:8]}")
    try:
        async with make_world(redis, keys, hosts=4) as world:
            if fault_at_start:
                await world.sim.fail_next("create", temporary=False, after=2)
            vnf, op = await world.vnfm.instantiate("app", "app-1", version="1.0")
            await world.sim.clear_failures()
            if op.state != "COMPLETED":
                assert await world.leftovers(vnf.id) == _nothing()
                return
            for step in steps:
                await run_step(world, vnf.id, step)
            for _ in range(3):  # an operator terminates until it completes
                if await world.inventory.find(vnf.id) is None:
                    break
                end = await world.vnfm.terminate(vnf.id)
                if end.state == "FAILED_TEMP":
                    end = await world.vnfm.retry(end.id)
                if end.state == "COMPLETED":
                    break
            assert await world.inventory.find(vnf.id) is None
            assert await world.leftovers(vnf.id) == _nothing(), steps
    finally:
        async for key in redis.scan_iter(match=f"{keys.prefix}:*"):
            await redis.delete(key)
        await redis.aclose()


def _nothing() -> dict[str, list[str]]:
    return {"servers": [], "ports": [], "networks": [], "groups": []}


steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(OPERATIONS),
        st.sampled_from(FAULTS),
        st.integers(min_value=0, max_value=2),
        st.sampled_from(AFTERMATH),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps_strategy, fault_at_start=st.booleans())
def test_no_sequence_of_operations_and_failures_leaks_a_resource(
    redis_url: str, steps: list[Step], fault_at_start: bool
) -> None:
    asyncio.run(scenario(redis_url, steps, fault_at_start))


def test_the_leak_check_sees_a_leak(redis_url: str) -> None:
    """The check is not vacuous: a port left behind is reported."""

    async def leak() -> dict[str, list[str]]:
        redis = connect(redis_url)
        keys = Keys(prefix=f"leak{uuid.uuid4().hex[:8]}")
        try:
            async with make_world(redis, keys) as world:
                vnf, _ = await world.vnfm.instantiate("app", "app-1")
                [network] = await world.sim.list_networks(metadata={"vnf": vnf.id})
                from mano_core.vim.base import PortSpec

                await world.sim.create_port(PortSpec("stray", network.id, {"vnf": vnf.id}))
                await world.sim.fail_next("delete_port", temporary=False, count=10)
                await world.vnfm.terminate(vnf.id)
                await world.sim.clear_failures()
                return await world.leftovers(vnf.id)
        finally:
            await redis.aclose()

    left: Any = asyncio.run(leak())
    assert left["ports"], "a port that could not be deleted went unnoticed"
