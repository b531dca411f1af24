"""NS terminate: the members in reverse dependency order, then the links' networks.

The members of one step of the NSD's dependency order are terminated at
once, each through the VNFM under its lease; the steps go last to first.
When every member is gone, the networks of the NS's virtual links are
deleted on every VIM and the NS is NOT_INSTANTIATED again (it can be
instantiated anew, or deleted). When a member cannot be terminated, the
operation ends FAILED with the members that remain still listed: a
terminate can be asked again.
"""

from __future__ import annotations

import asyncio

import msgspec

from mano_core.errors import ManoError
from mano_core.nfvo.context import NsContext, with_vnf_op
from mano_core.nfvo.instantiate import remove_members
from mano_core.nfvo.networks import delete_networks
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState, NsState
from mano_core.vnfm.instantiate import vnf_id_for


async def run(
    ctx: NsContext, ns: NsInstance, op: NsOperation, *, graceful: bool
) -> tuple[NsInstance, NsOperation]:
    nsd = await ctx.catalogue.get_nsd(ns.nsd_id, ns.nsd_version)
    problems: list[str] = []
    for group in reversed(nsd.start_order()):
        ids = {m.id for m in group}
        batch = [v for v in ns.vnfs if v.member in ids]
        found = await asyncio.gather(*(remove_members(ctx, [v], graceful=graceful) for v in batch))
        for said, ran in found:
            problems.extend(said)
            for vnf_op in ran:
                op = with_vnf_op(op, vnf_op.vnf_id, vnf_op.id)
        if problems:
            break  # the members that depend on those left stay up with them
    left = [v for v in ns.vnfs if await ctx.inventory.find(vnf_id_for(v.op_id)) is not None]
    ns = msgspec.structs.replace(ns, vnfs=left)
    if problems:
        return await ctx.move(ns, op, NsOpState.FAILED, error="; ".join(problems))
    try:
        await delete_networks(ctx.vims, ns.id)
    except ManoError as exc:
        return await ctx.move(ns, op, NsOpState.FAILED, error=f"networks: {exc}")
    ns = msgspec.structs.replace(
        ns, state=NsState.NOT_INSTANTIATED, vnfs=[], networks=[], scale_levels={}
    )
    return await ctx.move(ns, op, NsOpState.COMPLETED)
