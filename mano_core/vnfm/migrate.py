"""Migrate one VNFC's server to another host: live, else cold.

A live migration keeps the server running and needs no confirmation. When
the VIM refuses to migrate it live (other than for want of a host), or the
request asks for a cold one, the server is cold-migrated: it reaches
VERIFY_RESIZE on its new host, the health check runs there, and the move
is confirmed, or reverted (the server goes back to its old host) when the
check fails, which fails the operation.
"""

from __future__ import annotations

from typing import Any

from mano_core.errors import InvalidRequest, NoValidHost, PermanentVimError
from mano_core.models import LcmOpOcc, VnfInstance
from mano_core.oprunner import Plan, Result, Run, nothing_to_undo
from mano_core.servers import active, moved_from
from mano_core.vim.base import TASK_STATES, ServerStatus
from mano_core.vnfm.context import Context, vnfc_of


def prepare(vnf: VnfInstance, vnfc_id: str, destination: str | None, live: bool) -> dict[str, Any]:
    vnfc = vnfc_of(vnf, vnfc_id)
    if destination is not None and destination == vnfc.host:
        raise InvalidRequest(f"VNFC {vnfc_id} is already on host {destination}")
    return {
        "vnfc_id": vnfc_id,
        "server": vnfc.server_id,
        "from_host": vnfc.host,
        "destination": destination,
        "live": live,
    }


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params
    vnfc_id: str = params["vnfc_id"]
    server_id: str = params["server"]
    from_host: str | None = params["from_host"]
    destination: str | None = params["destination"]

    async def work(run: Run) -> Result:
        vnf = await ctx.vnf(op.vnf_id)
        vim = ctx.vim_of(vnf)
        current = await vim.get_server(server_id)
        mode = "live" if params["live"] else "cold"
        # A resumed migration that is under way, or done, just waits for it.
        under_way = run.resumed and (
            current.status in TASK_STATES or current.status is ServerStatus.VERIFY_RESIZE
        )
        if current.host == from_host and not under_way:
            if params["live"]:
                try:
                    await vim.live_migrate_server(server_id, host=destination)
                except NoValidHost:
                    raise
                except PermanentVimError:
                    mode = "cold"  # live refused: the server moves stopped instead
                    await vim.migrate_server(server_id, host=destination)
            else:
                await vim.migrate_server(server_id, host=destination)
        infos = await ctx.wait(vim, [server_id], moved_from(from_host), run)
        server = infos[server_id]
        if server.status is ServerStatus.VERIFY_RESIZE:
            mode = "cold"
            problem = await ctx.healthy(vim, vnf, server)
            if problem is not None:
                await vim.revert_resize(server_id)
                back = await ctx.wait(vim, [server_id], active, run)
                await ctx.refresh(vnf, back)
                raise PermanentVimError(f"migration reverted: {problem}")
            await vim.confirm_resize(server_id)
            infos = await ctx.wait(vim, [server_id], active, run)
        vnf = await ctx.refresh(vnf, infos)
        return {
            "vnfc": vnfc_id,
            "from_host": from_host,
            "to_host": vnfc_of(vnf, vnfc_id).host,
            "mode": mode,
        }

    async def still_in_place() -> bool:
        vnf = await ctx.vnf(op.vnf_id)
        server = await ctx.vim_of(vnf).get_server(server_id)
        return server.host == from_host and server.status is ServerStatus.ACTIVE

    return Plan(work, nothing_to_undo, still_in_place)
