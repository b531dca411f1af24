"""Terminate: drain (gracefully), then release every resource of the VNF, and forget it.

Each VNFC's drain hook runs first (a failed drain is reported, not fatal),
then every server of the VNF, listed or only found by its metadata (left by
a crash), is deleted, then its ports, networks and subnets, and its server
groups; the instance record goes last. It cannot be undone.
"""

from __future__ import annotations

from typing import Any

from mano_core.grants import GrantRequest
from mano_core.models import LcmOpOcc, VnfInstance
from mano_core.oprunner import Plan, Result, Run
from mano_core.vnfm.context import Context, Entry, ref, vdu_of
from mano_core.vnfm.networks import delete_networks
from mano_core.vnfm.resources import vnfc_change
from mano_core.vnfm.vnfcs import delete_groups, drain, remove_vnfcs


def prepare(vnf: VnfInstance, graceful: bool) -> dict[str, Any]:
    return {"remove": [ref(c) for c in vnf.vnfcs], "graceful": graceful, "vim": vnf.vim}


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params
    remove: list[Entry] = params["remove"]

    async def grant() -> GrantRequest | None:
        vnf = await ctx.inventory.find(op.vnf_id)
        if vnf is None:
            return None  # gone already: nothing is given back
        vnfd = await ctx.catalogue.of(vnf)
        return GrantRequest(
            vnf_id=vnf.id,
            vnfd_id=vnf.vnfd_id,
            operation=op.operation,
            op_id=op.id,
            vim=vnf.vim,
            remove=tuple(
                vnfc_change(vnf, vdu_of(vnfd, c.vdu), c.id, host=c.host) for c in vnf.vnfcs
            ),
            is_automatic=op.is_automatic,
            ns_id=vnf.ns_id,
        )

    async def work(run: Run) -> Result:
        vim = ctx.vim(params.get("vim") or ctx.vims.default)
        vnf = await ctx.inventory.find(op.vnf_id)
        drained: list[str] = []
        if vnf is not None and params.get("graceful", True) and not run.resumed:
            drained = await drain(ctx, vnf, vnf.vnfcs)
        # Also sweep servers of this VNF that no record names (left by a crash).
        known = {r["server"] for r in remove}
        strays = [
            {"vnfc": s.metadata.get("vnfc", ""), "server": s.id}
            for s in await vim.list_servers(metadata={"vnf": op.vnf_id})
            if s.id not in known
        ]
        await remove_vnfcs(ctx, vim, op.vnf_id, [*remove, *strays])
        networks = await delete_networks(vim, op.vnf_id)
        await delete_groups(vim, op.vnf_id)
        await ctx.inventory.delete(op.vnf_id)
        await ctx.ops.retire(op.vnf_id)
        result: Result = {
            "removed": [r["vnfc"] for r in remove],
            "servers": sorted({*known, *(s["server"] for s in strays)}),
            "networks": networks,
        }
        if drained:
            result["drain_failed"] = drained
        return result

    return Plan(work, grant=grant)
