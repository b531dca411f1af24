"""Heal one VNFC by one step of its VDU's recovery ladder, within the step's timeout.

``soft_reboot`` asks the guest to restart (a server in ERROR refuses it),
``hard_reboot`` power-cycles it, ``rebuild`` re-images it in place (same id,
ports and address) from its VDU's image, ``recreate`` replaces the server:
the old one is deleted, a new one (granted, and attached to the VNFC's own
ports, so it keeps its addresses on the VNF's networks) takes its place,
and the VNFC keeps its id and age; the record names the new server only
once it is ACTIVE, and its day-1 hook runs. Climbing the ladder when a step
fails is the caller's (the actuator's): each step is an operation of its
own. A heal changes a broken VNFC in place: there is nothing to roll back.
"""

from __future__ import annotations

from typing import Any

from mano_core.errors import InvalidRequest
from mano_core.grants import GrantRequest
from mano_core.models import LcmOpOcc, VnfcInstance, VnfInstance, VnfState
from mano_core.oprunner import Plan, Result, Run
from mano_core.servers import active, recovered, vnfc_on
from mano_core.vim.base import TASK_STATES
from mano_core.vnfd import RecoveryLevel
from mano_core.vnfm.context import Context, vdu_of, vnfc_of, with_vnfc
from mano_core.vnfm.networks import vnf_networks
from mano_core.vnfm.resources import vnfc_change
from mano_core.vnfm.vnfcs import day1, spec_of


async def prepare(
    ctx: Context, vnf: VnfInstance, vnfc_id: str, level: RecoveryLevel | str
) -> dict[str, Any]:
    vnfc = vnfc_of(vnf, vnfc_id)
    if vnf.vnf_state is VnfState.STOPPED:
        raise InvalidRequest(f"VNF instance {vnf.id} is STOPPED: start it rather than heal it")
    vnfd = await ctx.catalogue.of(vnf)
    try:
        step = RecoveryLevel(level)
    except ValueError:
        raise InvalidRequest(f"unknown recovery level {level!r}") from None
    heal_step = vnfd.heal_step(vnfc.vdu, step)
    if heal_step is None:
        raise InvalidRequest(
            f"recovery level {step} is not in the ladder of VDU {vnfc.vdu} of {vnfd.id}"
        )
    return {
        "vnfc_id": vnfc_id,
        "level": step.value,
        "server": vnfc.server_id,
        "timeout_s": heal_step.timeout,
    }


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params
    level = RecoveryLevel(params["level"])
    vnfc_id: str = params["vnfc_id"]
    old_server: str = params["server"]
    timeout_s = float(params.get("timeout_s", ctx.timeout_s))

    async def grant() -> GrantRequest | None:
        if level is not RecoveryLevel.RECREATE:
            return None  # in place: nothing taken or given back
        vnf = await ctx.vnf(op.vnf_id)
        vnfc = vnfc_of(vnf, vnfc_id)
        vdu = vdu_of(await ctx.catalogue.of(vnf), vnfc.vdu)
        return GrantRequest(
            vnf_id=vnf.id,
            vnfd_id=vnf.vnfd_id,
            operation=op.operation,
            op_id=op.id,
            vim=vnf.vim,
            add=(vnfc_change(vnf, vdu, vnfc_id),),
            remove=(vnfc_change(vnf, vdu, vnfc_id, host=vnfc.host),),
            is_automatic=op.is_automatic,
            ns_id=vnf.ns_id,
        )

    async def work(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vnfc = vnfc_of(vnf, vnfc_id)
        vim = ctx.vim_of(vnf)
        if level is RecoveryLevel.RECREATE:
            vnf = await _recreate(ctx, run, vnf, vnfc, old_server=old_server, timeout_s=timeout_s)
        else:
            current = await vim.get_server(vnfc.server_id)
            # A resumed heal whose reboot/rebuild is under way just waits for it.
            if not run.resumed or current.status not in TASK_STATES:
                if level is RecoveryLevel.SOFT_REBOOT:
                    await vim.reboot_server(vnfc.server_id, hard=False)
                elif level is RecoveryLevel.HARD_REBOOT:
                    await vim.reboot_server(vnfc.server_id, hard=True)
                else:
                    vdu = vdu_of(await ctx.catalogue.of(vnf), vnfc.vdu)
                    image = await vim.find_image(vdu.image.name, vdu.image.version)
                    await vim.rebuild_server(vnfc.server_id, image=image.id)
            infos = await ctx.wait(vim, [vnfc.server_id], recovered(), run, timeout_s)
            vnf = await ctx.refresh(vnf, infos)
        healed = vnfc_of(vnf, vnfc_id)
        return {
            "vnfc": vnfc_id,
            "level": level.value,
            "server": healed.server_id,
            "from_server": old_server,
            "host": healed.host,
        }

    return Plan(work, grant=grant)


async def _recreate(
    ctx: Context,
    run: Run,
    vnf: VnfInstance,
    vnfc: VnfcInstance,
    *,
    old_server: str,
    timeout_s: float,
) -> VnfInstance:
    """Replace the VNFC's server by a new one on the same ports; the VNFC keeps its id and age.

    Until the record names it, a resumed attempt finds the new server by its metadata.
    """
    vim = ctx.vim_of(vnf)
    if vnfc.server_id != old_server:  # swapped by an earlier attempt: just wait
        waited = await ctx.wait(vim, [vnfc.server_id], active, run, timeout_s)
        return await ctx.refresh(vnf, waited)
    vnfd = await ctx.catalogue.of(vnf)
    vdu = vdu_of(vnfd, vnfc.vdu)
    await ctx.delete_server(vim, old_server)
    # Unlisted servers of this VNFC: a resumed attempt's own replacement, or
    # one left by an earlier recreate that failed (deleted: this attempt
    # starts afresh).
    unlisted = [
        s
        for s in await vim.list_servers(metadata={"vnf": vnf.id, "vnfc": vnfc.id})
        if s.id != old_server
    ]
    replacement = max(unlisted, key=lambda s: s.created_at) if run.resumed and unlisted else None
    for stray in unlisted:
        if stray is not replacement:
            await ctx.delete_server(vim, stray.id)
    if replacement is None:
        networks = await vnf_networks(vim, vnf.id)
        spec = await spec_of(
            ctx, run, vim, vnf, vnfd=vnfd, vdu=vdu, vnfc_id=vnfc.id, networks=networks
        )
        replacement = await vim.create_server(spec)
    ready = (await ctx.wait(vim, [replacement.id], active, run, timeout_s))[replacement.id]
    renewed = vnfc_on(ready, vdu, vnfc.id, vnfc.created_at)
    vnf = await ctx.save(with_vnfc(vnf, renewed))
    await day1(ctx, vnfd, renewed)
    return vnf
