"""NS instantiate: place every member VNF, make the links' networks, instantiate the members.

1. Each member's VNFD (its version pinned now) says what its instances
   start with; :func:`~mano_core.nfvo.placement.place` chooses the VIM of
   every VNF instance. The choices are recorded in the NS instance before
   anything is created, with the op id each instantiation will carry, so
   the NFVO's granter answers the VNFM's grant requests with them.
2. The network of each virtual link on each VIM used
   (:mod:`mano_core.nfvo.networks`).
3. The members, in dependency order: those of one step of the order at
   once, each through the VNFM under its lease
   (:class:`~mano_core.nfvo.members.Members`), its external connection
   points on the links' networks.

When anything fails, the whole NS is rolled back: every member that exists
is terminated (or its instantiation rolled back), then the networks are
deleted on every VIM, and the operation ends ROLLED_BACK, the NS as it was
before (NOT_INSTANTIATED, nothing on any VIM). If the rollback itself
fails, the operation ends FAILED, what is left still recorded in the NS so
that a terminate can remove it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Iterable

import msgspec

from bus.contracts import OpState
from mano_core.capacity import Room
from mano_core.errors import ManoError
from mano_core.grants import Resources
from mano_core.models import LcmOpOcc
from mano_core.nfvo.context import NsContext, with_vnf_op
from mano_core.nfvo.networks import delete_networks, ensure_networks, ext_networks
from mano_core.nfvo.placement import Unit, place
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState, NsState, NsVnf
from mano_core.nsd import Nsd
from mano_core.vnfd import Vnfd
from mano_core.vnfm.instantiate import vnf_id_for

log = logging.getLogger(__name__)


class MemberFailed(ManoError):
    """A member VNF's operation did not complete; the message says which and why."""


def vnf_name(ns: NsInstance, member: str, index: int) -> str:
    """The name of VNF instance ``index`` (from 1) of member ``member``: ``NS-MEMBER-N``."""
    return f"{ns.name}-{member}-{index}"


async def run(ctx: NsContext, ns: NsInstance, op: NsOperation) -> tuple[NsInstance, NsOperation]:
    nsd = await ctx.catalogue.get_nsd(ns.nsd_id, ns.nsd_version)
    try:
        vnfds = await _vnfds(ctx, nsd)
        rooms = {name: await Room.read(ctx.vims.get_vim(name)) for name in ctx.vims}
        units = _units(nsd, vnfds)
        chosen = place(nsd, units, rooms)
    except ManoError as exc:
        return await ctx.move(ns, op, NsOpState.ROLLED_BACK, error=f"placement: {exc}")
    vnfs = [
        NsVnf(u.member, u.index, chosen[u.key], str(uuid.uuid4()), name=vnf_name(ns, *u.id))
        for u in units
    ]
    ns = await ctx.save(msgspec.structs.replace(ns, vnfs=vnfs), op)
    try:
        networks = await ensure_networks(ctx.vims, ns.id, ns.name, nsd, vnfs)
        ns = await ctx.save(msgspec.structs.replace(ns, networks=networks), op)
        for group in nsd.start_order():
            ids = {m.id for m in group}
            batch = [v for v in ns.vnfs if v.member in ids]
            # Each ends on its own (a refusal is its outcome), so none still
            # runs while the rollback of the others starts.
            outcomes = await asyncio.gather(
                *(_instantiate(ctx, ns, nsd, vnfds[v.member], v) for v in batch)
            )
            done = {v.key: o for v, o in zip(batch, outcomes, strict=True)}
            for v in batch:
                if isinstance(done[v.key], LcmOpOcc):
                    op = with_vnf_op(op, vnf_id_for(v.op_id), v.op_id)
            ns = msgspec.structs.replace(
                ns,
                vnfs=[
                    msgspec.structs.replace(v, vnf_id=vnf_id_for(v.op_id))
                    if _completed(done.get(v.key))
                    else v
                    for v in ns.vnfs
                ],
            )
            ns = await ctx.save(ns, op)
            failed = [f"VNF {v.name}: {_outcome(done[v.key])}"
                      for v in batch if not _completed(done[v.key])]  # fmt: skip
            if failed:
                raise MemberFailed("; ".join(failed))
    except ManoError as exc:
        return await roll_back(ctx, ns, op, str(exc))
    ns = msgspec.structs.replace(
        ns, state=NsState.INSTANTIATED, scale_levels={a.id: 0 for a in nsd.scaling_aspects}
    )
    return await ctx.move(ns, op, NsOpState.COMPLETED)


async def _vnfds(ctx: NsContext, nsd: Nsd) -> dict[str, Vnfd]:
    vnfds = {}
    for member in nsd.vnfs:
        entry = await ctx.catalogue.entry("vnfd", member.vnfd, member.vnfd_version)
        vnfds[member.id] = await ctx.catalogue.get(member.vnfd, entry.version)
    return vnfds


def _units(nsd: Nsd, vnfds: dict[str, Vnfd]) -> list[Unit]:
    units: list[Unit] = []
    for group in nsd.start_order():
        for member in group:
            vnfd = vnfds[member.id]
            servers = tuple(
                Resources(vdu.flavour.vcpus, vdu.flavour.ram_mb, vdu.flavour.disk_gb)
                for vdu_id, count in vnfd.initial_instances(member.instantiation_level).items()
                for vdu in [vnfd.vdu(vdu_id)]
                for _ in range(count)
            )
            units.extend(Unit(member.id, i + 1, servers) for i in range(member.count))
    return units


def _completed(outcome: LcmOpOcc | str | None) -> bool:
    return isinstance(outcome, LcmOpOcc) and outcome.state is OpState.COMPLETED


def _outcome(outcome: LcmOpOcc | str) -> str:
    return outcome if isinstance(outcome, str) else f"{outcome.state} ({outcome.error})"


async def _instantiate(
    ctx: NsContext, ns: NsInstance, nsd: Nsd, vnfd: Vnfd, vnf: NsVnf
) -> LcmOpOcc | str:
    """The member's instantiation as it ended, or why it was refused before it began."""
    member = nsd.member(vnf.member)

    async def start() -> LcmOpOcc:
        _, op = await ctx.vnfm.instantiate(
            vnfd.id,
            vnf.name,
            version=vnfd.version,
            level=member.instantiation_level,
            ns_id=ns.id,
            labels=ns.labels,
            ext_networks=ext_networks(nsd, vnf, ns.networks),
            op_id=vnf.op_id,
        )
        return op

    try:
        return await ctx.members.run(vnf_id_for(vnf.op_id), start)
    except ManoError as exc:
        return str(exc)


async def roll_back(
    ctx: NsContext, ns: NsInstance, op: NsOperation, error: str
) -> tuple[NsInstance, NsOperation]:
    """Remove every member and network the NS has; ROLLED_BACK, or FAILED if something stays."""
    ns, op = await ctx.move(ns, op, NsOpState.ROLLING_BACK, error=error)
    problems, ran = await remove_members(ctx, reversed(ns.vnfs), graceful=False)
    for vnf_op in ran:
        op = with_vnf_op(op, vnf_op.vnf_id, vnf_op.id)
    try:
        await delete_networks(ctx.vims, ns.id)
    except ManoError as exc:
        problems.append(f"networks: {exc}")
    if problems:
        left = [v for v in ns.vnfs if await ctx.inventory.find(vnf_id_for(v.op_id)) is not None]
        ns = msgspec.structs.replace(ns, vnfs=left)
        return await ctx.move(
            ns, op, NsOpState.FAILED, error=f"{error}; rolling back: {'; '.join(problems)}"
        )
    ns = msgspec.structs.replace(ns, state=NsState.NOT_INSTANTIATED, vnfs=[], networks=[])
    return await ctx.move(ns, op, NsOpState.ROLLED_BACK)


async def remove_members(
    ctx: NsContext, vnfs: Iterable[NsVnf], *, graceful: bool
) -> tuple[list[str], list[LcmOpOcc]]:
    """Terminate each member VNF that exists (rolling back a FAILED_TEMP instantiation first).

    Returns what could not be removed (each said why) and the VNF operations it ran.
    """
    problems: list[str] = []
    ran: list[LcmOpOcc] = []
    for vnf in list(vnfs):
        vnf_id = vnf_id_for(vnf.op_id)
        try:
            instantiation = await ctx.vnfm.ops.find(vnf_id, vnf.op_id)
            if instantiation is not None and instantiation.state is OpState.FAILED_TEMP:
                ran.append(await ctx.members.roll_back(instantiation))
            if await ctx.inventory.find(vnf_id) is None:
                continue
            ended = await ctx.members.run(
                vnf_id, functools.partial(ctx.vnfm.terminate, vnf_id, graceful=graceful)
            )
            ran.append(ended)
            if ended.state is not OpState.COMPLETED:
                problems.append(f"VNF {vnf.name}: terminate {ended.state} ({ended.error})")
        except ManoError as exc:
            problems.append(f"VNF {vnf.name}: {exc}")
    return problems, ran
