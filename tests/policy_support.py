"""A policy engine on a real Redis, driven event by event on a clock the test moves.

The engine is the one that runs live; the test plays the analytics stage
(ONSET and ABATED) and the actuator (operation results), and moves time
with :meth:`World.advance`, which also runs the engine's follow-ups that
are due (``engine.tick()``), as its background loop would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from bus.contracts import (
    Action,
    Decision,
    Evidence,
    OpResult,
    OpState,
    Target,
    TargetKind,
    Violation,
    ViolationStatus,
)
from bus.keys import Keys
from bus.streams import read_all
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.vnfd import load_vnfd
from policy.engine import PolicyEngine
from policy.loader import load_policies, parse_text
from policy.schema import KpiPolicy

DEFAULTS = Path(__file__).resolve().parents[1] / "assure" / "defaults"
START = 1_700_000_000.0


class ManualClock:
    """Time that moves only when the test says so."""

    speed = 1.0

    def __init__(self, start: float = START) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)

    def to_wall(self, seconds: float) -> float:
        return seconds


def policies_from(text: str) -> list[KpiPolicy]:
    parsed = parse_text(text, "<test>")
    assert not parsed.problems, [p.format() for p in parsed.problems]
    return [p for p, _ in parsed.policies]


def shipped_policies(*names: str) -> list[KpiPolicy]:
    result = load_policies(DEFAULTS / "policies")
    assert result.ok, result.problems
    return [p for p in result.policies if not names or p.name in names]


def vnf_target(vnf_id: str) -> Target:
    return Target(TargetKind.VNF, vnf_id, vnf=vnf_id, vnfd="vfw")


def vnfc_target(vnfc_id: str, vnf_id: str = "fw1") -> Target:
    return Target(TargetKind.VNFC, vnfc_id, vnf=vnf_id, vnfd="vfw")


def host_target(host: str) -> Target:
    return Target(TargetKind.HOST, host)


@dataclass
class World:
    """The engine over the shipped vfw VNFD, and what it reads and writes."""

    redis: Any
    keys: Keys
    inventory: Inventory
    catalogue: Catalogue
    clock: ManualClock
    engine: PolicyEngine

    async def add_vnf(
        self,
        vnf_id: str,
        placement: list[tuple[str, str]],
        *,
        vnfd: str = "vfw",
        level: int | None = None,
        ns: str | None = None,
        labels: dict[str, str] | None = None,
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
                created_at=START + i,
            )
            for i, (vnfc_id, host) in enumerate(placement)
        ]
        vnf = VnfInstance(
            id=vnf_id,
            name=vnf_id,
            vnfd_id=vnfd,
            vim="sim",
            state=InstantiationState.INSTANTIATED,
            scale_levels={"fw-scale": max(0, len(placement) - 2) if level is None else level},
            vnfcs=vnfcs,
            created_at=START,
            updated_at=START,
            ns_id=ns,
            labels=labels or {},
        )
        await self.inventory.save(vnf)
        return vnf

    async def resize(self, vnf_id: str, count: int) -> None:
        """The VNF now runs ``count`` VNFCs (as a scale operation left it)."""
        await self.add_vnf(vnf_id, [(f"{vnf_id}-c{i}", f"h{i % 3}") for i in range(count)])

    def onset(
        self,
        policy: str,
        target: Target,
        violation_id: str = "v-1",
        *,
        condition: str = "c",
        value: float | None = 82.0,
        **extra: Any,
    ) -> Violation:
        now = self.clock.now()
        return Violation(
            id=violation_id,
            status=ViolationStatus.ONSET,
            policy=policy,
            condition=condition,
            target=target,
            evidence=Evidence(
                value=value, values={}, window_s=30.0, threshold=75.0, description="avg(cpu) high"
            ),
            started_at=now - 30.0,
            at=now,
            request_id=f"req-{violation_id}",
            **extra,
        )

    @staticmethod
    def abated(onset: Violation) -> Violation:
        return msgspec.structs.replace(onset, status=ViolationStatus.ABATED)

    async def published(self) -> list[Decision]:
        entries = await read_all(self.redis, self.keys.stream("decisions"))
        return [m for _, m in entries if isinstance(m, Decision)]

    async def approved(self) -> list[Decision]:
        return [d for d in await self.published() if d.approved]

    async def advance(self, seconds: float) -> list[Decision]:
        """Move time on and run the follow-ups that are due; returns what they decided."""
        self.clock.t += seconds
        return await self.engine.tick()

    async def finish(
        self,
        decision: Decision,
        *,
        after_s: float = 10.0,
        state: OpState = OpState.COMPLETED,
        error: str | None = None,
    ) -> list[Decision]:
        """The decision's operation ends ``after_s`` from now; returns what the engine decided."""
        started = self.clock.now()
        self.clock.t += after_s
        result = OpResult(
            op_id=f"op-{decision.id}",
            decision_id=decision.id,
            vnf=decision.target.vnf or decision.target.id,
            operation="SCALE" if decision.action.value.startswith("scale") else "HEAL",
            action=decision.action,
            target=decision.target,
            state=state,
            started_at=started,
            finished_at=self.clock.now(),
            error=error,
            request_id=decision.request_id,
        )
        return await self.engine.handle_result(result)


async def world_with(redis: Any, keys: Keys, policies: list[KpiPolicy], **options: Any) -> World:
    inventory, catalogue = Inventory(redis, keys), Catalogue(redis, keys)
    await catalogue.onboard(load_vnfd(DEFAULTS / "vnfds" / "vfw.yaml"))
    clock = ManualClock()
    engine = PolicyEngine(redis, keys, inventory, catalogue, clock, policies, **options)
    return World(redis, keys, inventory, catalogue, clock, engine)


def one(decisions: list[Decision], action: Action | None = None) -> Decision:
    """The one decision (of ``action``) in ``decisions``."""
    found = [d for d in decisions if action is None or d.action is action]
    assert len(found) == 1, [(d.action.value, d.verdict, d.reason) for d in decisions]
    return found[0]


def guard(decision: Decision, name: str) -> tuple[bool, str]:
    [result] = [g for g in decision.guards if g.guard == name]
    return result.passed, result.detail
