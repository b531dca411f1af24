"""Adding and removing VNFCs: their ports, servers and server groups, and the inventory.

Each change of a VNF's VNFCs is saved to the inventory at once: a new VNFC
is listed as soon as its server is ACTIVE (not while it boots, which would
look like a VNFC that stopped answering), and a VNFC is unlisted before its
server is deleted, so collectors and analytics follow without raising
false alarms. A server or port not (or no longer) listed is still found by
its metadata, so a rollback, a resumed operation or a terminate finds it
too, and a create whose answer was lost is never repeated.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import msgspec

from mano_core.errors import NotFound, VimError
from mano_core.models import VnfcInstance, VnfInstance
from mano_core.oprunner import Run
from mano_core.servers import active, server_spec, vnfc_on
from mano_core.vim.base import GroupPolicy, ServerInfo, ServerSpec, ServerStatus, VimDriver
from mano_core.vnfd import Vdu, Vnfd
from mano_core.vnfm.context import Context, Entry, vdu_of
from mano_core.vnfm.hooks import HookFailed
from mano_core.vnfm.networks import delete_ports, ensure_networks, ensure_ports

log = logging.getLogger(__name__)


async def add_vnfcs(
    ctx: Context, run: Run, vnf: VnfInstance, vnfd: Vnfd, add: Sequence[Entry]
) -> VnfInstance:
    """Create the ports and servers of ``add`` not made yet; list the VNFCs once ACTIVE,
    then run their VDUs' day-1 hooks."""
    vim = ctx.vim_of(vnf)
    found = await orphans(vim, vnf.id) if run.resumed else {}
    networks = await ensure_networks(vim, vnf, vnfd)
    booting: dict[str, str] = {}  # vnfc id -> server id, not listed yet
    for entry in add:
        vnfc_id = entry["vnfc"]
        if vnf.vnfc(vnfc_id) is not None:
            continue
        server = found.get(vnfc_id)
        if server is None:
            vdu = vdu_of(vnfd, entry["vdu"])
            spec = await spec_of(
                ctx, run, vim, vnf, vnfd=vnfd, vdu=vdu, vnfc_id=vnfc_id, networks=networks
            )
            server = await vim.create_server(spec)
        booting[vnfc_id] = server.id
    listed = [vnf.vnfc(e["vnfc"]) for e in add]
    servers = [c.server_id for c in listed if c is not None] + list(booting.values())
    ready = await ctx.wait(vim, servers, active, run)
    now = ctx.clock.now()
    vdus = {e["vnfc"]: vdu_of(vnfd, e["vdu"]) for e in add}
    new = [vnfc_on(ready[sid], vdus[vid], vid, now) for vid, sid in booting.items()]
    vnf = await ctx.save(msgspec.structs.replace(vnf, vnfcs=[*vnf.vnfcs, *new]))
    vnf = await ctx.refresh(vnf, ready)
    for vnfc in new:
        await day1(ctx, vnfd, vnfc)
    return vnf


async def day1(ctx: Context, vnfd: Vnfd, vnfc: VnfcInstance) -> None:
    hook = vnfd.hook(vnfc.vdu, "day1")
    if hook is not None:
        await ctx.hooks.call("day1", hook, vnfc)


async def spec_of(
    ctx: Context,
    run: Run,
    vim: VimDriver,
    vnf: VnfInstance,
    *,
    vnfd: Vnfd,
    vdu: Vdu,
    vnfc_id: str,
    networks: dict[str, str],
) -> ServerSpec:
    """The server of a new VNFC: its image, group, ports and granted placement."""
    image = await vim.find_image(vdu.image.name, vdu.image.version)
    group = await group_of(vim, vnf.id, vdu.id)
    ports = await ensure_ports(vim, vnf, vnfd, vdu=vdu, vnfc_id=vnfc_id, internal=networks)
    grant = run.grant
    placement = None if grant is None else grant.placement(vnfc_id)
    return server_spec(
        vnf,
        vdu,
        vnfc_id,
        image=image.id,
        server_group=group,
        ports=ports,
        zone=None if placement is None else placement.zone,
        host=None if placement is None else placement.host,
    )


async def drain(ctx: Context, vnf: VnfInstance, vnfcs: Sequence[VnfcInstance]) -> list[str]:
    """Run the drain hook of each VNFC (that has one); returns what failed, each said why.

    A drain that fails does not stop the removal: the VNFC goes anyway.
    """
    vnfd = await ctx.catalogue.of(vnf)
    failed = []
    for vnfc in vnfcs:
        hook = vnfd.hook(vnfc.vdu, "drain")
        if hook is None:
            continue
        try:
            await ctx.hooks.call("drain", hook, vnfc)
        except HookFailed as exc:
            log.warning("%s; removing VNFC %s anyway", exc, vnfc.id)
            failed.append(str(exc))
    return failed


async def remove_vnfcs(ctx: Context, vim: VimDriver, vnf_id: str, remove: Sequence[Entry]) -> None:
    """Unlist the VNFCs of ``remove`` (at once), then delete their servers and ports."""
    vnf = await ctx.inventory.find(vnf_id)
    gone = {r["vnfc"] for r in remove}
    if vnf is not None and any(c.id in gone for c in vnf.vnfcs):
        await ctx.save(
            msgspec.structs.replace(vnf, vnfcs=[c for c in vnf.vnfcs if c.id not in gone])
        )
    for entry in remove:
        await ctx.delete_server(vim, entry["server"])
        if entry["vnfc"]:
            await delete_ports(vim, vnf_id, entry["vnfc"])


async def relist(ctx: Context, vim: VimDriver, vnf_id: str, remove: Sequence[Entry]) -> list[str]:
    """List again the VNFCs of ``remove`` whose servers still exist; returns their ids."""
    vnf = await ctx.inventory.get(vnf_id)
    vnfd = await ctx.catalogue.of(vnf)
    back: list[VnfcInstance] = []
    for entry in remove:
        if vnf.vnfc(entry["vnfc"]) is not None:
            continue
        try:
            server = await vim.get_server(entry["server"])
        except NotFound:
            continue  # deleted after all
        except VimError:
            continue  # cannot tell: left unlisted (a terminate still finds it)
        if server.status is ServerStatus.DELETED:
            continue
        created_at = float(entry.get("created_at", server.created_at))
        back.append(vnfc_on(server, vdu_of(vnfd, entry["vdu"]), entry["vnfc"], created_at))
    if back:
        await ctx.save(msgspec.structs.replace(vnf, vnfcs=[*vnf.vnfcs, *back]))
    return [c.id for c in back]


async def remove_added(
    ctx: Context, vim: VimDriver, vnf_id: str, vnfc_ids: Sequence[str]
) -> list[str]:
    """Undo additions: every server and port of these VNFCs, listed or not, is deleted."""
    vnf = await ctx.inventory.find(vnf_id)
    listed = [] if vnf is None else [c for c in vnf.vnfcs if c.id in vnfc_ids]
    entries: list[Entry] = [{"vnfc": c.id, "server": c.server_id} for c in listed]
    known = {c.server_id for c in listed}
    for vnfc_id, server in (await orphans(vim, vnf_id)).items():
        if vnfc_id in vnfc_ids and server.id not in known:
            entries.append({"vnfc": vnfc_id, "server": server.id})
    await remove_vnfcs(ctx, vim, vnf_id, entries)
    for vnfc_id in vnfc_ids:  # ports made before their server was
        await delete_ports(vim, vnf_id, vnfc_id)
    return sorted({e["vnfc"] for e in entries})


async def orphans(vim: VimDriver, vnf_id: str) -> dict[str, ServerInfo]:
    """Servers of the VNF by VNFC id, as the VIM knows them (found by metadata)."""
    return {
        s.metadata["vnfc"]: s
        for s in await vim.list_servers(metadata={"vnf": vnf_id})
        if "vnfc" in s.metadata
    }


def _group_name(vnf_id: str, vdu_id: str) -> str:
    return f"{vnf_id}/{vdu_id}"


async def group_of(vim: VimDriver, vnf_id: str, vdu_id: str) -> str:
    """The VDU's server group (found by name, else created): VNFCs apart where possible."""
    name = _group_name(vnf_id, vdu_id)
    for group in await vim.list_server_groups():
        if group.name == name:
            return group.id
    return (await vim.create_server_group(name, GroupPolicy.SOFT_ANTI_AFFINITY)).id


async def delete_groups(vim: VimDriver, vnf_id: str) -> None:
    prefix = _group_name(vnf_id, "")
    for group in await vim.list_server_groups():
        if group.name.startswith(prefix):
            with contextlib.suppress(NotFound):
                await vim.delete_server_group(group.id)
