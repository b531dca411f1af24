"""What a policy's action applies to: from a violation's target to the objects to act on.

Scale acts on a VNF instance (the VNF of a VNFC target too), heal on a VNFC,
migrate on a VNFC or on every VNFC of the policy's VNFD on a host. Each
resolved object becomes a :class:`Plan`: the target and parameters of one
decision and the guards checked so far. When nothing matches, the plan
carries a failed ``target`` guard saying why there is nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bus.contracts import GuardResult, Target, TargetKind, Violation
from mano_core.catalogue import Catalogue
from mano_core.errors import NotFound
from mano_core.inventory import Inventory
from mano_core.models import VnfcInstance, VnfInstance
from policy.guards import TARGET, scale_guard
from policy.schema import HealAction, KpiPolicy, MigrateAction, NotifyAction, ScaleAction


@dataclass(frozen=True)
class Plan:
    """One decision to be: what it acts on, with which parameters, and the guards so far."""

    target: Target
    parameters: dict[str, Any]
    guards: list[GuardResult] = field(default_factory=list)

    @property
    def resolved(self) -> bool:
        """False when the target guard failed (there is nothing to act on)."""
        return all(g.passed for g in self.guards if g.guard == TARGET)


def unresolved(target: Target, why: str) -> Plan:
    """A plan denied by the ``target`` guard."""
    return Plan(target, {}, [GuardResult(TARGET, False, why)])


def nothing_to_do(target: Target, why: str) -> Plan:
    """A plan denied because what the action would act on is not there."""
    return unresolved(target, f"nothing to do: {why}")


class TargetResolver:
    """Resolves violations to plans through the inventory and the catalogue."""

    def __init__(self, inventory: Inventory, catalogue: Catalogue) -> None:
        self._inventory = inventory
        self._catalogue = catalogue

    async def plans(self, policy: KpiPolicy, violation: Violation) -> list[Plan]:
        """The plans of ``policy``'s action for ``violation`` (at least one)."""
        action = policy.spec.action
        if isinstance(action, ScaleAction):
            return [await self._scale(policy, action, violation.target)]
        if isinstance(action, HealAction):
            return [await self._heal(policy, action, violation.target)]
        if isinstance(action, MigrateAction):
            return await self._migrate(policy, action, violation.target)
        assert isinstance(action, NotifyAction)
        return [Plan(violation.target, {"message": action.message})]

    async def _scale(self, policy: KpiPolicy, action: ScaleAction, target: Target) -> Plan:
        vnf = await self._vnf_of(target)
        if vnf is None:
            return nothing_to_do(target, f"no VNF instance for {target.key()}")
        if vnf.vnfd_id != policy.vnfd:
            return _other_vnfd(target, vnf, policy)
        try:
            vnfd = await self._catalogue.of(vnf)
        except NotFound as exc:
            return unresolved(target, str(exc))
        try:
            aspect = vnfd.aspect(action.aspect)
        except KeyError:
            return unresolved(target, f"VNFD {vnfd.id} has no scaling aspect {action.aspect!r}")
        direction = "out" if action.type == "scale_out" else "in"
        return Plan(
            Target(TargetKind.VNF, vnf.id, vnf=vnf.id, vnfd=vnf.vnfd_id),
            {"aspect": action.aspect, "steps": action.steps},
            [scale_guard(vnfd, vnf, aspect, direction, action.steps)],
        )

    async def _heal(self, policy: KpiPolicy, action: HealAction, target: Target) -> Plan:
        if target.kind is not TargetKind.VNFC:
            return nothing_to_do(target, f"heal acts on a VNFC, the target is {target.key()}")
        found = await self._inventory.find_vnfc(target.id)
        if found is None:
            return nothing_to_do(target, f"VNFC {target.id} no longer exists")
        vnf, vnfc = found
        if vnf.vnfd_id != policy.vnfd:
            return _other_vnfd(target, vnf, policy)
        return Plan(_vnfc_target(vnf, vnfc), {"level": action.level.value})

    async def _migrate(
        self, policy: KpiPolicy, action: MigrateAction, target: Target
    ) -> list[Plan]:
        parameters = {"destination": action.destination, "live": action.live}
        if target.kind is TargetKind.HOST:
            found = [
                (vnf, vnfc)
                for vnf, vnfc in await self._inventory.vnfcs_on_host(target.id)
                if vnf.vnfd_id == policy.vnfd
            ]
            if not found:
                return [nothing_to_do(target, f"no VNFC of VNFD {policy.vnfd} on {target.id}")]
            return [Plan(_vnfc_target(vnf, vnfc), dict(parameters)) for vnf, vnfc in found]
        if target.kind is TargetKind.VNFC:
            one = await self._inventory.find_vnfc(target.id)
            if one is None:
                return [nothing_to_do(target, f"VNFC {target.id} no longer exists")]
            if one[0].vnfd_id != policy.vnfd:
                return [_other_vnfd(target, one[0], policy)]
            return [Plan(_vnfc_target(*one), parameters)]
        return [nothing_to_do(target, f"migrate acts on a VNFC or host, not {target.key()}")]

    async def _vnf_of(self, target: Target) -> VnfInstance | None:
        if target.kind is TargetKind.VNF:
            return await self._inventory.find(target.id)
        if target.kind is TargetKind.VNFC:
            if target.vnf is not None:
                return await self._inventory.find(target.vnf)
            found = await self._inventory.find_vnfc(target.id)
            return None if found is None else found[0]
        return None


def _vnfc_target(vnf: VnfInstance, vnfc: VnfcInstance) -> Target:
    return Target(TargetKind.VNFC, vnfc.id, vnf=vnf.id, vnfd=vnf.vnfd_id, host=vnfc.host)


def _other_vnfd(target: Target, vnf: VnfInstance, policy: KpiPolicy) -> Plan:
    return unresolved(
        target, f"VNF {vnf.id} is of VNFD {vnf.vnfd_id}, the policy targets {policy.vnfd}"
    )
