"""Configure: run the day-2 hook of each VNFC (of the VDUs that have one), with parameters.

The request's parameters are sent with the hook's own (the request's win).
A hook that fails fails the operation; there is nothing to roll back (a
configuration is changed again by configuring again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mano_core.errors import InvalidRequest
from mano_core.models import LcmOpOcc, VnfInstance
from mano_core.oprunner import Plan, Result, Run
from mano_core.vnfm.context import Context, vnfc_of


async def prepare(
    ctx: Context,
    vnf: VnfInstance,
    parameters: dict[str, Any],
    vnfc_ids: Sequence[str] | None,
) -> dict[str, Any]:
    vnfd = await ctx.catalogue.of(vnf)
    chosen = [vnfc_of(vnf, i) for i in vnfc_ids] if vnfc_ids else vnf.vnfcs
    targets = [c.id for c in chosen if vnfd.hook(c.vdu, "day2") is not None]
    if not targets:
        raise InvalidRequest(f"no VNFC of VNF instance {vnf.id} chosen has a day2 hook")
    return {"parameters": dict(parameters), "vnfcs": targets}


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params

    async def work(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vnfd = await ctx.catalogue.of(vnf)
        answers = {}
        for vnfc_id in params["vnfcs"]:
            await run.check_cancel()
            vnfc = vnfc_of(vnf, vnfc_id)
            hook = vnfd.hook(vnfc.vdu, "day2")
            assert hook is not None
            answers[vnfc_id] = await ctx.hooks.call("day2", hook, vnfc, params["parameters"])
        return {"configured": list(params["vnfcs"]), "answers": answers}

    return Plan(work)
