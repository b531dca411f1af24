"""Coordination between a network service's decisions and its member VNFs' own.

An NS scale runs member VNF operations; a member's own decision (a heal, a
VNF-level scale) runs one on the same VNF. The NFVO and the actuator take
each VNF's lease, so two operations never run on one VNF at once, but one
would wait for the other and then act on what the other left. So, before
either starts, the ``coordination`` guard holds back:

- an NS decision while any member VNF has a decision in flight (its loop
  record's ``inflight``);
- a member VNF's decision while its NS has one in flight;
- an NS scale-in while a condition of another policy is open on the NS.

Each is queued and looked at again every ``requeue_s`` (the other record's
end does not wake this one). Two records decided at the very same moment
can both pass; the leases then run their operations one after the other.

Once an NS scale completed, each member VNF it scaled counts it as a scale
of its own aspect (:func:`scaled_members`): the member's KPIs settle, and
its own scaling of that aspect waits out its cooldown, so a VNF-level
policy does not add a second step for the same load.
"""

from __future__ import annotations

from bus.contracts import Action, OpResult, OpState, TargetKind
from mano_core.models import VnfInstance
from mano_core.nfvo.records import NsInstance
from policy.facts import Facts
from policy.guards import COORDINATION, WHEN_FREED, Check, deny, ok
from policy.plans import Plan
from policy.state import Episode, VnfLoop, ns_loop_id


async def ns_coordination_check(
    facts: Facts, state: VnfLoop, episode: Episode, plan: Plan, ns: NsInstance
) -> Check:
    """Hold an NS decision while a member VNF has one in flight (and a scale-in while
    another policy's condition is open on the NS)."""
    for ns_vnf in ns.vnfs:
        if ns_vnf.vnf_id is None:
            continue
        running = await facts.busy(ns_vnf.vnf_id)
        if running is not None:
            return deny(
                COORDINATION,
                f"decision {running} runs on member {ns_vnf.key} (VNF {ns_vnf.vnf_id}); "
                "the NS waits for its members",
                WHEN_FREED,
            )
    if plan.action is Action.SCALE_NS_IN:
        for other in state.conditions.values():
            if other.violation_id == episode.opened_by or other.policy == episode.policy:
                continue
            return deny(
                COORDINATION,
                f"no scale-in while {other.policy}/{other.condition} is open on NS {ns.name}",
                WHEN_FREED,
            )
    return ok(COORDINATION, f"no member of NS {ns.name} has a decision in flight")


async def member_coordination_check(facts: Facts, vnf: VnfInstance) -> Check | None:
    """Hold a member VNF's decision while its NS has one in flight (None: it has none)."""
    if vnf.ns_id is None:
        return None
    running = await facts.busy(ns_loop_id(vnf.ns_id))
    if running is None:
        return None
    return deny(
        COORDINATION,
        f"decision {running} runs on NS {vnf.ns_id}, of which VNF {vnf.id} is a member",
        WHEN_FREED,
    )


async def scaled_members(facts: Facts, result: OpResult) -> list[tuple[str, str]]:
    """The member VNFs a completed NS scale scaled, each with the aspect of its own it
    stepped (none for any other result)."""
    if result.target.kind is not TargetKind.NS or result.state is not OpState.COMPLETED:
        return []
    ns = await facts.ns(result.target.id)
    nsd = None if ns is None else await facts.nsd_of(ns)
    if ns is None or nsd is None:
        return []
    op = next((o for o in ns.operations if o.id == result.op_id), None)
    try:
        aspect = nsd.aspect(str(op.params.get("aspect_id"))) if op is not None else None
    except KeyError:
        aspect = None
    if aspect is None:
        return []
    return [
        (ns_vnf.vnf_id, member.aspect)
        for member in aspect.members
        for ns_vnf in ns.member_vnfs(member.vnf)
        if ns_vnf.vnf_id is not None
    ]
