"""Operate: stop (gracefully: each VNFC's drain hook first) or start a VNF's servers.

A stopped VNF is recorded STOPPED (``VnfInstance.vnf_state``) and keeps
every resource; starting it brings its servers back to ACTIVE. There is
nothing to roll back: a failed stop or start is retried, or the operation
is failed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mano_core.errors import InvalidRequest
from mano_core.models import LcmOpOcc, VnfInstance, VnfState
from mano_core.oprunner import Plan, Result, Run
from mano_core.servers import active, shut_off
from mano_core.vim.base import ServerStatus
from mano_core.vnfm.context import Context
from mano_core.vnfm.vnfcs import drain


def prepare(vnf: VnfInstance, state: VnfState | str, graceful: bool) -> dict[str, Any]:
    try:
        wanted = VnfState(state)
    except ValueError:
        raise InvalidRequest(f"a VNF is STARTED or STOPPED, not {state!r}") from None
    if wanted is vnf.vnf_state:
        raise InvalidRequest(f"VNF instance {vnf.id} is {wanted} already")
    return {"change_state_to": wanted.value, "graceful": graceful}


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params
    wanted = VnfState(params["change_state_to"])

    async def work(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vim = ctx.vim_of(vnf)
        servers = [c.server_id for c in vnf.vnfcs]
        drained: list[str] = []
        if wanted is VnfState.STOPPED:
            if params["graceful"] and not run.resumed:
                drained = await drain(ctx, vnf, vnf.vnfcs)
            for server_id in servers:
                if (await vim.get_server(server_id)).status in (
                    ServerStatus.ACTIVE,
                    ServerStatus.ERROR,
                ):
                    await vim.stop_server(server_id)
            await ctx.wait(vim, servers, shut_off, run)
        else:
            for server_id in servers:
                if (await vim.get_server(server_id)).status is ServerStatus.SHUTOFF:
                    await vim.start_server(server_id)
            vnf = await ctx.refresh(vnf, await ctx.wait(vim, servers, active, run))
        await ctx.save(msgspec.structs.replace(await ctx.vnf(op.vnf_id), vnf_state=wanted))
        result: Result = {"vnf_state": wanted.value, "vnfcs": [c.id for c in vnf.vnfcs]}
        if drained:
            result["drain_failed"] = drained
        return result

    return Plan(work)
