"""Instantiate: a new VNF instance with the VNFCs of an instantiation level, all ACTIVE.

The grant names the VIM (and, per VNFC, where in it); the VNF's internal
networks, its VDUs' server groups, each VNFC's ports and server are then
created, VDU group by VDU group in start order (a group's servers are all
ACTIVE before the next group's are created), and each new VNFC's day-1
hook runs. A rollback deletes exactly that: servers, ports, networks,
groups, and the instance record.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec

from mano_core.errors import InvalidRequest
from mano_core.grants import GrantRequest
from mano_core.models import InstantiationState, LcmOperation, LcmOpOcc, VnfInstance
from mano_core.oprunner import Plan, Result, Run
from mano_core.vnfm.context import Context, new_vnfc, vdu_of
from mano_core.vnfm.networks import delete_networks
from mano_core.vnfm.resources import vnfc_change
from mano_core.vnfm.vnfcs import add_vnfcs, delete_groups, remove_added

log = logging.getLogger(__name__)


def vnf_id_for(op_id: str | None) -> str:
    """With an op_id, the VNF id follows from it, so a retry finds its occurrence."""
    if op_id is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"nfv-assure:instantiate:{op_id}"))


async def prepare(
    ctx: Context,
    vnfd_id: str,
    name: str,
    *,
    version: str | None,
    level: str | None,
    ns_id: str | None,
    labels: dict[str, str] | None,
    ext_networks: dict[str, str] | None,
) -> dict[str, Any]:
    """Everything the instantiation will do, decided once; raises :class:`InvalidRequest`."""
    entry = await ctx.catalogue.entry("vnfd", vnfd_id, version)
    vnfd = await ctx.catalogue.get(vnfd_id, entry.version)
    if not name:
        raise InvalidRequest("a VNF instance needs a name")
    try:
        counts = vnfd.initial_instances(level)
    except KeyError:
        raise InvalidRequest(f"VNFD {vnfd_id} has no instantiation level {level!r}") from None
    known = {ext.id for ext in vnfd.external_connection_points}
    unknown = sorted(set(ext_networks or {}) - known)
    if unknown:
        raise InvalidRequest(
            f"VNFD {vnfd_id} has no external connection point {', '.join(unknown)}"
        )
    if entry.acceptance != "validated":
        log.warning(
            "instantiating %s, which onboarding acceptance has %s",
            entry.ref,
            "rejected" if entry.acceptance == "rejected" else "not validated",
        )
    return {
        "vnfd_id": vnfd_id,
        "vnfd_version": entry.version,
        "level": level,
        "name": name,
        "ns_id": ns_id,
        "labels": dict(labels or {}),
        "ext_networks": dict(ext_networks or {}),
        # In start order (the VDUs' start_order).
        "add": [new_vnfc(vdu_id) for vdu_id, count in counts.items() for _ in range(count)],
    }


def not_instantiated(ctx: Context, op: LcmOpOcc) -> VnfInstance:
    """The instance as a rolled-back instantiation leaves it: it never came to be."""
    params = op.operation_params
    grant = params.get("grant") or {}
    return VnfInstance(
        id=op.vnf_id,
        name=str(params["name"]),
        vnfd_id=str(params["vnfd_id"]),
        vim=str(grant.get("vim") or ctx.vims.default),
        state=InstantiationState.NOT_INSTANTIATED,
        scale_levels={},
        vnfcs=[],
        created_at=op.started_at,
        updated_at=op.state_entered_at,
        vnfd_version=params.get("vnfd_version"),
        ns_id=params.get("ns_id"),
        labels=dict(params.get("labels") or {}),
        ext_networks=dict(params.get("ext_networks") or {}),
    )


def plan(ctx: Context, op: LcmOpOcc) -> Plan:
    params = op.operation_params
    add: list[dict[str, str]] = params["add"]

    async def grant() -> GrantRequest:
        vnfd = await ctx.catalogue.get(params["vnfd_id"], params.get("vnfd_version"))
        blank = not_instantiated(ctx, op)
        changes = [vnfc_change(blank, vdu_of(vnfd, a["vdu"]), a["vnfc"]) for a in add]
        return GrantRequest(
            vnf_id=op.vnf_id,
            vnfd_id=vnfd.id,
            operation=LcmOperation.INSTANTIATE,
            op_id=op.id,
            vim=None,
            add=tuple(changes),
            is_automatic=op.is_automatic,
            ns_id=blank.ns_id,
        )

    async def work(run: Run) -> Result:
        vnfd = await ctx.catalogue.get(params["vnfd_id"], params.get("vnfd_version"))
        vnf = await ctx.inventory.find(op.vnf_id)
        if vnf is None:
            now = ctx.clock.now()
            granted = run.grant
            vnf = msgspec.structs.replace(
                not_instantiated(ctx, op),
                vim=granted.vim if granted is not None else ctx.vims.default,
                scale_levels=vnfd.initial_scale_levels(params.get("level")),
                created_at=now,
                updated_at=now,
                vnfd_version=vnfd.version,
            )
            ctx.vim_of(vnf)  # the granted VIM is one this VNFM manages
            await ctx.inventory.save(vnf)
        for group in vnfd.vdus_in_start_order():
            ids = {vdu.id for vdu in group}
            vnf = await add_vnfcs(ctx, run, vnf, vnfd, [a for a in add if a["vdu"] in ids])
        await ctx.save(msgspec.structs.replace(vnf, state=InstantiationState.INSTANTIATED))
        return {"added": [a["vnfc"] for a in add], "vim": vnf.vim}

    async def undo(run: Run) -> Result:
        vnf = await ctx.inventory.find(op.vnf_id)
        granted = run.grant
        name = vnf.vim if vnf is not None else (granted.vim if granted else ctx.vims.default)
        vim = ctx.vim(name)
        removed = await remove_added(ctx, vim, op.vnf_id, [a["vnfc"] for a in add])
        networks = await delete_networks(vim, op.vnf_id)
        await delete_groups(vim, op.vnf_id)
        await ctx.inventory.delete(op.vnf_id)
        await ctx.ops.retire(op.vnf_id)
        return {"removed": removed, "networks": networks}

    return Plan(work, undo, grant=grant)
