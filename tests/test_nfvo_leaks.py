"""Leak check for network services: random NS operations with injected VIM failures on
either site, then a terminate, leave nothing of the NS on any VIM (servers, ports,
networks, subnets, server groups)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assure.settings import load_settings
from bus.redis import connect
from mano_core.errors import InvalidRequest
from mano_core.nfvo.records import NsOpState
from tests.nfvo_support import nfvo_world
from tests.test_nfvo_rollback import THREE

OPERATIONS = ("scale_out", "scale_in", "heal_fw", "heal_all", "recreate_lb")
FAULTS = (
    None,
    ("site-a", "create", True),
    ("site-a", "create", False),
    ("site-b", "create", False),
    ("site-b", "delete", True),
    ("site-a", "delete", False),
    ("site-b", "rebuild", False),
    ("site-a", "create_port", True),
)
Step = tuple[str, tuple[str, str, bool] | None, int]


async def scenario(redis_url: str, steps: list[Step], fault_at_start: bool) -> None:
    defaults = load_settings()
    prefix = f"nsleak{uuid.uuid4().hex[:8]}"
    config = dataclasses.replace(
        defaults, redis=dataclasses.replace(defaults.redis, url=redis_url, prefix=prefix)
    )
    try:
        async with nfvo_world(config) as world:
            await world.onboard_nsd(THREE)
            ns = await world.nslcm.create("three", "svc")
            if fault_at_start:
                await world.sims["site-a"].fail_next("create", temporary=False, after=2)
            first = await world.nslcm.instantiate(ns.id)
            for sim in world.sims.values():
                await sim.clear_failures()
            if first.state is not NsOpState.COMPLETED:
                assert await world.empty(), await world.cloud()
                return
            for operation, fault, after in steps:
                if fault is not None:
                    site, call, temporary = fault
                    await world.sims[site].fail_next(call, temporary=temporary, after=after)
                try:
                    if operation in ("scale_out", "scale_in"):
                        await world.nslcm.scale(
                            ns.id, "capacity", "out" if operation == "scale_out" else "in"
                        )
                    elif operation == "heal_fw":
                        await world.nslcm.heal(ns.id, vnfs=["svc-fw-1"], level="rebuild")
                    elif operation == "heal_all":
                        await world.nslcm.heal(ns.id)
                    else:
                        await world.nslcm.heal(ns.id, vnfs=["svc-lb-1"], level="recreate")
                except InvalidRequest:
                    pass  # not possible now (bounds, state): nothing ran
                finally:
                    for sim in world.sims.values():
                        await sim.clear_failures()
            for _ in range(3):  # an operator terminates until it completes
                end = await world.nslcm.terminate(ns.id)
                if end.state is NsOpState.COMPLETED:
                    break
            assert end.state is NsOpState.COMPLETED, (steps, end.error)
            assert await world.platform.inventory.list() == []
            assert await world.empty(), (steps, await world.cloud())
    finally:
        redis = connect(redis_url)
        try:
            async for key in redis.scan_iter(match=f"{prefix}:*"):
                await redis.delete(key)
        finally:
            await redis.aclose()


steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(OPERATIONS),
        st.sampled_from(FAULTS),
        st.integers(min_value=0, max_value=2),
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps_strategy, fault_at_start=st.booleans())
def test_no_sequence_of_ns_operations_and_failures_leaks_a_resource(
    redis_url: str, steps: list[Step], fault_at_start: bool
) -> None:
    asyncio.run(scenario(redis_url, steps, fault_at_start))
