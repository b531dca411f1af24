"""Change current package: move a VNF to another version of its VNFD, image by image.

Every VNFC whose VDU boots another image in the new version is rebuilt
from that image, one VNFC of a VDU at a time (so at most one is
unavailable), and health-checked before the next one starts. When all
have, the VNF runs the new version. A VNFC that fails its check fails the
operation, and the rollback rebuilds every VNFC the operation changed from
its previous image. Versions that differ in more than images (VDUs,
flavours) are refused: change the flavour on its own.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mano_core.errors import InvalidRequest, PermanentVimError
from mano_core.models import LcmOpOcc, VnfInstance
from mano_core.oprunner import Plan, Result, Run
from mano_core.servers import recovered
from mano_core.vim.base import TASK_STATES, VimDriver
from mano_core.vnfm.context import Context


async def prepare(ctx: Context, vnf: VnfInstance, version: str) -> dict[str, Any]:
    current = await ctx.catalogue.of(vnf)
    entry = await ctx.catalogue.entry("vnfd", vnf.vnfd_id, version)
    target = await ctx.catalogue.get(vnf.vnfd_id, entry.version)
    if target.version == current.version:
        raise InvalidRequest(f"VNF instance {vnf.id} runs {vnf.vnfd_id}@{version} already")
    if sorted(v.id for v in target.vdus) != sorted(v.id for v in current.vdus):
        raise InvalidRequest(
            f"{vnf.vnfd_id}@{target.version} has other VDUs than @{current.version}"
        )
    steps = []
    for vdu in current.vdus:
        new = target.vdu(vdu.id)
        if new.flavour != vdu.flavour:
            raise InvalidRequest(
                f"VDU {vdu.id} has another flavour in {vnf.vnfd_id}@{target.version}: "
                "change the flavour first"
            )
        if new.image == vdu.image:
            continue
        steps += [
            {
                "vnfc": c.id,
                "vdu": vdu.id,
                "server": c.server_id,
                "from": vdu.image.model_dump(),
                "to": new.image.model_dump(),
            }
            for c in vnf.vnfcs_of(vdu.id)
        ]
    return {"from_version": current.version, "to_version": target.version, "steps": steps}


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params
    steps: list[dict[str, Any]] = params["steps"]

    async def work(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vim = ctx.vim_of(vnf)
        for step in steps:
            image = await _image(vim, step["to"])
            if await _rebuild(ctx, run, vim, step["server"], image) or run.resumed:
                server = await vim.get_server(step["server"])
                problem = await ctx.healthy(vim, vnf, server)
                if problem is not None:
                    raise PermanentVimError(
                        f"VNFC {step['vnfc']} on image {step['to']['name']} "
                        f"{step['to']['version']} failed its check: {problem}"
                    )
        vnf = await ctx.vnf(op.vnf_id)
        await ctx.save(msgspec.structs.replace(vnf, vnfd_version=params["to_version"]))
        return {
            "from_version": params["from_version"],
            "to_version": params["to_version"],
            "rebuilt": [s["vnfc"] for s in steps],
        }

    async def undo(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vim = ctx.vim_of(vnf)
        back = []
        for step in reversed(steps):
            if await _rebuild(ctx, run, vim, step["server"], await _image(vim, step["from"])):
                back.append(step["vnfc"])
        return {"version": params["from_version"], "rebuilt_back": back}

    return Plan(work, undo)


async def _image(vim: VimDriver, image: dict[str, str]) -> str:
    return (await vim.find_image(image["name"], image["version"])).id


async def _rebuild(ctx: Context, run: Run, vim: VimDriver, server_id: str, image: str) -> bool:
    """Rebuild the server from ``image`` unless it runs it already, and wait until it is
    back (also when an earlier attempt's rebuild is under way); True when rebuilt now."""
    server = await vim.get_server(server_id)
    changed = server.image != image
    if changed:
        await vim.rebuild_server(server_id, image=image)
    if changed or server.status in TASK_STATES:
        await ctx.wait(vim, [server_id], recovered(), run)
    return changed
