"""A small MANO world for actuator tests: real Redis, SimulatedVim, Vnfm, a fast clock."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from actuator.service import Actuator
from bus.clock import ScaledClock
from bus.contracts import Action, Decision, OpResult, Target, TargetKind
from bus.keys import Keys
from bus.redis import connect
from bus.streams import ConsumerSettings, read_all
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import LcmOperation, LcmOpOcc, VnfInstance
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vnfd import parse_vnfd
from mano_core.vnfm import Vnfm
from tests.redis_server import RedisServer

SPEED = 200.0
VNFM_TIMEOUT_S = 100.0
LEASE_TTL_S = 120.0
"""Clock seconds: 0.6 s of wall time at SPEED, longer than the VNFM's timeout."""

FAST = ConsumerSettings(batch=1, block_ms=20, claim_idle_ms=2_000, max_deliveries=5)

LB = """
apiVersion: assure/v1
kind: Vnfd
id: lb
vdus:
  - id: web
    image: {name: web-image, version: "1"}
    flavour: {vcpus: 1, ram_mb: 512}
    min_instances: 1
    max_instances: 4
scaling_aspects:
  - {id: web-scale, deltas: {web: 1}, max_scale_level: 3}
"""


@dataclass
class World:
    redis: Any
    keys: Keys
    clock: ScaledClock
    vim: SimulatedVim
    inventory: Inventory
    ops: OpOccStore
    vnfm: Vnfm

    async def vnf(self, name: str) -> VnfInstance:
        vnf, op = await self.vnfm.instantiate("lb", name)
        assert op.state.final and op.error is None, op
        return vnf

    def actuator(self, **options: Any) -> Actuator:
        options.setdefault("lease_ttl_s", LEASE_TTL_S)
        options.setdefault("settings", FAST)
        # decision() dates decisions at 0.0 unless told: no age limit unless a test sets one.
        options.setdefault("max_decision_age_s", math.inf)
        return Actuator(self.redis, self.keys, self.vnfm, self.clock, **options)

    async def actions(self, vnf_id: str) -> list[LcmOpOcc]:
        """The VNF's operations other than its instantiation, oldest first."""
        ops = await self.ops.list(vnf_id)
        return sorted(
            (op for op in ops if op.operation is not LcmOperation.INSTANTIATE),
            key=lambda op: op.started_at,
        )

    async def results(self) -> list[OpResult]:
        entries = await read_all(self.redis, self.keys.stream("op_results"))
        return [m for _, m in entries if isinstance(m, OpResult)]

    async def pending_decisions(self, group: str = "actuator") -> int:
        summary = await self.redis.xpending(self.keys.stream("decisions"), group)
        return int(summary["pending"])


async def make_world(redis: Any, keys: Keys) -> World:
    clock = ScaledClock(speed=SPEED)
    vim = SimulatedVim(
        clock,
        redis,
        keys,
        [SimHost("h1", vcpus=16, ram_mb=16_384), SimHost("h2", vcpus=16, ram_mb=16_384)],
    )
    await vim.add_image("web-image", "1")
    inventory = Inventory(redis, keys)
    catalogue = Catalogue(redis, keys)
    ops = OpOccStore(redis, keys, clock)
    vnfm = Vnfm(vim, inventory, catalogue, ops, clock, poll_s=1.0, timeout_s=VNFM_TIMEOUT_S)
    await catalogue.onboard(parse_vnfd(LB))
    return World(redis, keys, clock, vim, inventory, ops, vnfm)


def decision(
    decision_id: str,
    action: Action,
    target: Target,
    *,
    approved: bool = True,
    decided_at: float = 0.0,
    **parameters: Any,
) -> Decision:
    return Decision(
        id=decision_id,
        violation_id=f"v-{decision_id}",
        policy="test-policy",
        action=action,
        target=target,
        parameters=parameters,
        guards=[],
        approved=approved,
        reason="test",
        decided_at=decided_at,
        request_id=f"r-{decision_id}",
    )


def vnf_target(vnf: VnfInstance) -> Target:
    return Target(kind=TargetKind.VNF, id=vnf.id, vnf=vnf.id, vnfd=vnf.vnfd_id)


def vnfc_target(vnf: VnfInstance, vnfc_id: str) -> Target:
    return Target(kind=TargetKind.VNFC, id=vnfc_id, vnf=vnf.id, vnfd=vnf.vnfd_id)


@contextlib.asynccontextmanager
async def running(actuator: Actuator) -> AsyncIterator[None]:
    """The actuator consuming its stream in the background for the body's duration."""
    stop = asyncio.Event()
    task = asyncio.create_task(actuator.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def until(
    check: Callable[[], Awaitable[bool]], wall_s: float = 5.0, what: str = "condition"
) -> None:
    """Wait until ``check`` holds; fail the test, naming ``what``, if not within ``wall_s``."""
    deadline = asyncio.get_running_loop().time() + wall_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"no {what} within {wall_s:g} s"
        await asyncio.sleep(0.01)


class RestartableRedis:
    """A private redis-server that a test stops and starts again, empty, on the same port."""

    def __init__(self) -> None:
        self.server: RedisServer | None = RedisServer()
        self.port = self.server.port
        self.client = connect(self.server.url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def start(self) -> None:
        if self.server is None:
            self.server = RedisServer(port=self.port)


@contextlib.asynccontextmanager
async def restartable_redis() -> AsyncIterator[RestartableRedis]:
    redis = RestartableRedis()
    try:
        yield redis
    finally:
        await redis.client.aclose()
        redis.stop()
