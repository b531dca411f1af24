"""NS scale: one NS scaling aspect's steps, as scale operations of its member VNFs.

Each NS step scales every instance of every member the aspect lists by
``steps`` of that member's own aspect (``docs/nsd.md``). Out goes in the
members' dependency order, in in the reverse order. Before anything runs,
every member VNF is checked to have room for its steps (within its
aspect's levels), so a request that cannot succeed is refused whole.

When a member's scale does not complete (the VNFM has already rolled that
one back, or it is left FAILED_TEMP and is rolled back now), the members
already scaled are scaled back the other way and the operation ends
ROLLED_BACK with the NS's scale level unchanged; FAILED when that undoing
fails too.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from bus.contracts import OpState
from mano_core.errors import InvalidRequest, ManoError
from mano_core.models import LcmOpOcc
from mano_core.nfvo.context import NsContext, with_vnf_op
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState, NsVnf
from mano_core.nsd import Nsd, NsScalingAspect
from mano_core.vnfm import Direction


@dataclass(frozen=True)
class MemberStep:
    """One member VNF instance and how many steps of which of its aspects it takes."""

    vnf: NsVnf
    vnf_id: str
    aspect: str
    steps: int


def aspect_of(nsd: Nsd, aspect_id: str) -> NsScalingAspect:
    try:
        return nsd.aspect(aspect_id)
    except KeyError:
        known = ", ".join(a.id for a in nsd.scaling_aspects) or "none"
        raise InvalidRequest(
            f"NSD {nsd.id} has no scaling aspect {aspect_id!r} (aspects: {known})"
        ) from None


async def prepare(  # noqa: PLR0917 - the NS, then the request
    ctx: NsContext, ns: NsInstance, nsd: Nsd, aspect_id: str, direction: Direction, steps: int
) -> list[MemberStep]:
    """The member scale operations of the request, in order; raises :class:`InvalidRequest`."""
    aspect = aspect_of(nsd, aspect_id)
    if steps < 1:
        raise InvalidRequest(f"steps must be at least 1, got {steps}")
    level = ns.scale_levels.get(aspect_id, 0)
    target = level + steps if direction == "out" else level - steps
    if not 0 <= target <= aspect.max_scale_level:
        raise InvalidRequest(
            f"NS aspect {aspect_id} is at level {level} of 0..{aspect.max_scale_level}: "
            f"{steps} step(s) {direction} would take it to {target}"
        )
    order = [m.id for group in nsd.start_order() for m in group]
    if direction == "in":
        order.reverse()
    by_member = {s.vnf: s for s in aspect.members}
    plan: list[MemberStep] = []
    for member in order:
        step = by_member.get(member)
        if step is None:
            continue
        for vnf in ns.member_vnfs(member):
            if vnf.vnf_id is None:
                raise InvalidRequest(f"member VNF {vnf.name} of NS {ns.name} is not instantiated")
            record = await ctx.inventory.get(vnf.vnf_id)
            vnf_aspect = (await ctx.catalogue.of(record)).aspect(step.aspect)
            now = record.scale_levels.get(step.aspect, 0)
            more = step.steps * steps
            after = now + more if direction == "out" else now - more
            if not 0 <= after <= vnf_aspect.max_scale_level:
                raise InvalidRequest(
                    f"member VNF {vnf.name} is at level {now} of its aspect {step.aspect} "
                    f"(0..{vnf_aspect.max_scale_level}): {more} step(s) {direction} "
                    "do not fit"
                )
            plan.append(MemberStep(vnf, vnf.vnf_id, step.aspect, more))
    return plan


async def run(  # noqa: PLR0917 - the NS, then the request
    ctx: NsContext,
    ns: NsInstance,
    op: NsOperation,
    aspect_id: str,
    direction: Direction,
    steps: int,
    plan: list[MemberStep],
) -> tuple[NsInstance, NsOperation]:
    done: list[MemberStep] = []
    failure = ""
    for step in plan:
        try:
            ended = await _scale(ctx, step, direction)
        except ManoError as exc:
            failure = f"VNF {step.vnf.name}: {exc}"
            break
        op = with_vnf_op(op, ended.vnf_id, ended.id)
        if ended.state is not OpState.COMPLETED:
            failure = f"VNF {step.vnf.name}: scale {ended.state} ({ended.error})"
            if ended.state is OpState.FAILED_TEMP:
                undone = await ctx.members.roll_back(ended)
                op = with_vnf_op(op, undone.vnf_id, undone.id)
            break
        done.append(step)
        ns = await ctx.save(ns, op)
    if not failure:
        level = ns.scale_levels.get(aspect_id, 0)
        level = level + steps if direction == "out" else level - steps
        ns = msgspec.structs.replace(ns, scale_levels={**ns.scale_levels, aspect_id: level})
        return await ctx.move(ns, op, NsOpState.COMPLETED)
    ns, op = await ctx.move(ns, op, NsOpState.ROLLING_BACK, error=failure)
    back: Direction = "in" if direction == "out" else "out"
    problems = []
    for step in reversed(done):
        try:
            undone = await _scale(ctx, step, back)
        except ManoError as exc:
            problems.append(f"VNF {step.vnf.name}: {exc}")
            continue
        op = with_vnf_op(op, undone.vnf_id, undone.id)
        if undone.state is not OpState.COMPLETED:
            problems.append(f"VNF {step.vnf.name}: scale {back} {undone.state}")
    if problems:
        return await ctx.move(
            ns, op, NsOpState.FAILED, error=f"{failure}; rolling back: {'; '.join(problems)}"
        )
    return await ctx.move(ns, op, NsOpState.ROLLED_BACK)


async def _scale(ctx: NsContext, step: MemberStep, direction: Direction) -> LcmOpOcc:
    return await ctx.members.run(
        step.vnf_id,
        lambda: ctx.vnfm.scale(step.vnf_id, step.aspect, direction, step.steps),
    )
