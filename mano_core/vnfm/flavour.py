"""Change flavour: resize every VNFC of one VDU, one at a time, each confirmed or reverted.

Each server is resized, waits in VERIFY_RESIZE, is health-checked, and the
resize is confirmed; a server that fails its check is reverted and the
operation fails. One VNFC at a time is unavailable. Once all are done the
VNF records the VDU's new flavour (later VNFCs of the VDU get it too). A
rollback resizes back, the same way, every VNFC the operation resized.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mano_core.errors import InvalidRequest, PermanentVimError
from mano_core.grants import GrantRequest, ResourceChange
from mano_core.models import ComputeFlavour, LcmOpOcc, VnfInstance
from mano_core.oprunner import Plan, Result, Run
from mano_core.servers import active, flavor_of, resized
from mano_core.vim.base import Flavor, ServerStatus, VimDriver
from mano_core.vnfm.context import Context, vdu_of
from mano_core.vnfm.resources import resources


async def prepare(
    ctx: Context, vnf: VnfInstance, vdu_id: str, flavour: ComputeFlavour
) -> dict[str, Any]:
    vdu = vdu_of(await ctx.catalogue.of(vnf), vdu_id)
    if min(flavour.vcpus, flavour.ram_mb) < 1 or flavour.disk_gb < 0:
        raise InvalidRequest(f"flavour {flavour} needs at least 1 vCPU and 1 MB of RAM")
    before = flavor_of(vnf, vdu)
    after = _flavor(flavour)
    if (before.vcpus, before.ram_mb, before.disk_gb) == (after.vcpus, after.ram_mb, after.disk_gb):
        raise InvalidRequest(f"VDU {vdu_id} has flavour {before.name} already")
    return {
        "vdu": vdu_id,
        "flavour": msgspec.to_builtins(flavour),
        "previous": msgspec.to_builtins(
            vnf.flavours.get(vdu_id)
            or ComputeFlavour(before.vcpus, before.ram_mb, before.disk_gb, before.name)
        ),
        "had_override": vdu_id in vnf.flavours,
        "vnfcs": [{"vnfc": c.id, "server": c.server_id} for c in vnf.vnfcs_of(vdu_id)],
    }


def _flavor(flavour: ComputeFlavour) -> Flavor:
    return Flavor(flavour.flavour_name(), flavour.vcpus, flavour.ram_mb, flavour.disk_gb)


def _same(a: Flavor, b: Flavor) -> bool:
    return (a.vcpus, a.ram_mb, a.disk_gb) == (b.vcpus, b.ram_mb, b.disk_gb)


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params
    vdu_id: str = params["vdu"]
    new = msgspec.convert(params["flavour"], ComputeFlavour)
    old = msgspec.convert(params["previous"], ComputeFlavour)
    vnfcs: list[dict[str, str]] = params["vnfcs"]

    async def grant() -> GrantRequest:
        vnf = await ctx.vnf(op.vnf_id)
        changes = tuple(
            ResourceChange(
                entry["vnfc"],
                vdu_id,
                resources(_flavor(new)),
                previous=resources(_flavor(old)),
                flavour=_flavor(new).name,
                host=_host(vnf, entry["vnfc"]),
            )
            for entry in vnfcs
        )
        return GrantRequest(
            vnf_id=vnf.id,
            vnfd_id=vnf.vnfd_id,
            operation=op.operation,
            op_id=op.id,
            vim=vnf.vim,
            change=changes,
            is_automatic=op.is_automatic,
            ns_id=vnf.ns_id,
        )

    async def work(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vim = ctx.vim_of(vnf)
        for entry in vnfcs:
            await _resize(
                ctx, run, vim, vnf, server_id=entry["server"], flavor=_flavor(new), check=True
            )
        vnf = await ctx.vnf(op.vnf_id)
        await ctx.save(msgspec.structs.replace(vnf, flavours={**vnf.flavours, vdu_id: new}))
        return {"vdu": vdu_id, "flavour": _flavor(new).name, "resized": [e["vnfc"] for e in vnfcs]}

    async def undo(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vim = ctx.vim_of(vnf)
        back = []
        for entry in vnfcs:
            if await _resize(
                ctx, run, vim, vnf, server_id=entry["server"], flavor=_flavor(old), check=False
            ):
                back.append(entry["vnfc"])
        flavours = dict(vnf.flavours)
        if params["had_override"]:
            flavours[vdu_id] = old
        else:
            flavours.pop(vdu_id, None)
        await ctx.save(msgspec.structs.replace(vnf, flavours=flavours))
        return {"vdu": vdu_id, "resized_back": back}

    return Plan(work, undo, grant=grant)


def _host(vnf: VnfInstance, vnfc_id: str) -> str | None:
    vnfc = vnf.vnfc(vnfc_id)
    return None if vnfc is None else vnfc.host


async def _resize(
    ctx: Context,
    run: Run,
    vim: VimDriver,
    vnf: VnfInstance,
    *,
    server_id: str,
    flavor: Flavor,
    check: bool,
) -> bool:
    """Bring one server to ``flavor`` (confirmed); False when it had it already.

    With ``check``, a server that fails its health check in VERIFY_RESIZE is
    reverted and :class:`PermanentVimError` raised. Without it (a rollback),
    a server waiting in VERIFY_RESIZE for this very flavour is confirmed, one
    waiting with another flavour is reverted.
    """
    server = await vim.get_server(server_id)
    if server.status is ServerStatus.VERIFY_RESIZE and not _same(server.flavor, flavor):
        await vim.revert_resize(server_id)  # an interrupted resize the other way
        server = (await ctx.wait(vim, [server_id], active, run))[server_id]
    if _same(server.flavor, flavor) and server.status is ServerStatus.ACTIVE:
        return False
    if server.status is not ServerStatus.VERIFY_RESIZE:
        await vim.resize_server(server_id, flavor)
        server = (await ctx.wait(vim, [server_id], resized(flavor), run))[server_id]
    if server.status is ServerStatus.VERIFY_RESIZE:
        problem = await ctx.healthy(vim, vnf, server) if check else None
        if problem is not None:
            await vim.revert_resize(server_id)
            back = await ctx.wait(vim, [server_id], active, run)
            await ctx.refresh(await ctx.vnf(vnf.id), back)
            raise PermanentVimError(f"resize to {flavor.name} reverted: {problem}")
        await vim.confirm_resize(server_id)
        # A cloud that does not resize on the same host moved the server: record where.
        done = await ctx.wait(vim, [server_id], active, run)
        await ctx.refresh(await ctx.vnf(vnf.id), done)
    return True
