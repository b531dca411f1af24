"""What a step of an NS scaling action means for one network service now.

``scale_ns_out`` / ``scale_ns_in`` / ``scale_ns_to_level`` are planned on
the NS instance's loop record (:func:`policy.state.ns_loop_id`) against its
NSD's scaling aspect, as :meth:`mano_core.nfvo.lcm.NsLcm.scale` will run
it: one NS step scales every instance of every member the aspect lists by
that member's ``steps`` of its own VNF aspect. Scaling to a level becomes a
scale-out or scale-in by the steps it needs.

The bounds are final, as for a VNF: the steps are cut to what the NS
aspect's levels allow (``max_instances`` when none is left up,
``min_instances`` when none is left down), and every member VNF must stay
within its own aspect's levels and its VDUs' bounds for its share of the
steps. A scale-out lists what it adds to each member VNF, for the capacity
pre-check.
"""

from __future__ import annotations

from collections.abc import Mapping

from bus.contracts import Action, GuardResult, Target, TargetKind
from mano_core.errors import InvalidRequest
from mano_core.models import VnfInstance
from mano_core.nfvo.records import NsInstance
from mano_core.nfvo.scale import aspect_of
from mano_core.nsd import Nsd
from mano_core.vnfd import Vnfd
from policy.guards import MAX_INSTANCES, MIN_INSTANCES, TARGET, Check, deny, ok, scale_guard
from policy.plans import CapacityAsk, Direction, Plan, aspect_vdu
from policy.schema import ScaleNsAction, ScaleNsToLevelAction

Members = Mapping[str, tuple[VnfInstance, Vnfd | None]]
"""The NS's member VNF instances the loop could read, by VNF instance id, with their VNFDs."""


def ns_target(ns_id: str) -> Target:
    return Target(TargetKind.NS, ns_id)


def plan_ns_step(
    action: ScaleNsAction | ScaleNsToLevelAction,
    ns: NsInstance | None,
    nsd: Nsd | None,
    members: Members,
    *,
    ns_id: str,
    key: str,
) -> Plan:
    """The decision the step takes on NS ``ns_id`` now (its checks say if it can)."""
    plan = Plan(Action.SCALE_NS_OUT, ns_target(ns_id), {}, cooldown_key=key)
    if ns is None or nsd is None:
        what = "NS instance" if ns is None else "NSD"
        plan.checks.append(deny(TARGET, f"nothing to do: the {what} of ns:{ns_id} is gone"))
        return plan
    try:
        aspect = aspect_of(nsd, action.aspect)
    except InvalidRequest as exc:
        plan.checks.append(deny(TARGET, str(exc)))
        return plan
    level = ns.scale_levels.get(aspect.id, 0)
    if isinstance(action, ScaleNsAction):
        direction: Direction = "out" if action.type == "scale_ns_out" else "in"
        steps = action.steps
    elif action.level == level:
        plan.checks.append(
            deny(TARGET, f"nothing to do: NS aspect {aspect.id} is at level {level}")
        )
        return plan
    else:
        direction = "out" if action.level > level else "in"
        steps = abs(action.level - level)
    plan.action = Action.SCALE_NS_OUT if direction == "out" else Action.SCALE_NS_IN
    guard = MAX_INSTANCES if direction == "out" else MIN_INSTANCES
    room = aspect.max_scale_level - level if direction == "out" else level
    steps = min(steps, room)
    if steps < 1:
        plan.checks.append(
            deny(
                guard,
                f"NS aspect {aspect.id} is at scale level {level} of {aspect.max_scale_level}",
            )
        )
        return plan
    after = level + steps if direction == "out" else level - steps
    details = [f"NS aspect {aspect.id} level {level} -> {after} of {aspect.max_scale_level}"]
    for member in aspect.members:
        for ns_vnf in ns.member_vnfs(member.vnf):
            vnf, vnfd = members.get(ns_vnf.vnf_id or "", (None, None))
            if vnf is None or vnfd is None:
                what = "VNF instance" if vnf is None else "VNFD"
                plan.checks.append(deny(TARGET, f"the {what} of member {ns_vnf.key} is gone"))
                return plan
            try:
                vnf_aspect = vnfd.aspect(member.aspect)
            except KeyError:
                plan.checks.append(
                    deny(TARGET, f"VNFD {vnfd.id} has no scaling aspect {member.aspect!r}")
                )
                return plan
            more = member.steps * steps
            bounds = scale_guard(vnfd, vnf, vnf_aspect, direction, more)
            if not bounds.passed:
                plan.checks.append(
                    Check(GuardResult(guard, False, f"member {ns_vnf.key}: {bounds.detail}"))
                )
                return plan
            details.append(f"member {ns_vnf.key}: {bounds.detail}")
            if direction == "out":
                vdu, per_step = aspect_vdu(vnf_aspect)
                plan.capacity.append(CapacityAsk(vnf, vnfd, vdu, more * per_step))
    plan.checks.append(ok(guard, "; ".join(details)))
    plan.parameters = {"aspect": aspect.id, "steps": steps}
    return plan
