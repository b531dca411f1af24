"""NS heal: the member VNFs' VNFCs that need it, each up its VDU's recovery ladder.

Which VNFCs: those named; else, in the named member VNFs (default: every
member), each whose server the VIM does not see running well (not ACTIVE,
or on a host that is down or degraded:
:func:`~mano_core.vnfm.context.vim_health`). Each is healed through the
VNFM under its VNF's lease, at the level asked, or else step by step up
its VDU's ladder until one step brings it back. A heal is not undone: the
operation ends COMPLETED when every VNFC was healed, FAILED (saying which
were not) otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from bus.contracts import OpState
from mano_core.errors import InvalidRequest, ManoError, NotFound
from mano_core.models import VnfInstance
from mano_core.nfvo.context import NsContext, with_vnf_op
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState, NsVnf
from mano_core.vim.registry import VimRegistry
from mano_core.vnfd import RecoveryLevel
from mano_core.vnfm.context import vim_health


@dataclass(frozen=True)
class HealTarget:
    vnf: NsVnf
    vnf_id: str
    vnfc_id: str
    levels: tuple[RecoveryLevel, ...]
    """The levels to try, in order."""


def members_named(ns: NsInstance, refs: Sequence[str] | None) -> list[NsVnf]:
    """The member VNFs of ``ns`` that ``refs`` name by VNF id or name (None: all of them)."""
    members = [v for v in ns.vnfs if v.vnf_id is not None]
    if refs is None:
        return members
    chosen = []
    for ref in refs:
        found = next((v for v in members if ref in (v.vnf_id, v.name)), None)
        if found is None:
            names = ", ".join(v.name for v in members) or "none"
            raise InvalidRequest(f"NS {ns.name} has no member VNF {ref!r} (members: {names})")
        chosen.append(found)
    return chosen


async def prepare(
    ctx: NsContext,
    ns: NsInstance,
    vnf_refs: Sequence[str] | None,
    vnfc_ids: Sequence[str] | None,
    level: RecoveryLevel | None,
) -> list[HealTarget]:
    """The VNFCs to heal and the levels to try; raises :class:`InvalidRequest`."""
    targets: list[HealTarget] = []
    wanted = set(vnfc_ids or ())
    for member in members_named(ns, vnf_refs):
        assert member.vnf_id is not None
        vnf = await ctx.inventory.get(member.vnf_id)
        vnfd = await ctx.catalogue.of(vnf)
        sick = (
            [c.id for c in vnf.vnfcs if c.id in wanted]
            if vnfc_ids is not None
            else await _unhealthy(ctx.vims, vnf)
        )
        wanted -= set(sick)
        for vnfc_id in sick:
            vnfc = vnf.vnfc(vnfc_id)
            assert vnfc is not None
            ladder = tuple(s.level for s in vnfd.ladder(vnfc.vdu))
            if level is not None and level not in ladder:
                raise InvalidRequest(
                    f"recovery level {level} is not in the ladder of VDU {vnfc.vdu} of {vnfd.id}"
                )
            levels = (level,) if level is not None else ladder
            targets.append(HealTarget(member, member.vnf_id, vnfc_id, levels))
    if wanted:
        raise InvalidRequest(
            f"no member VNF of NS {ns.name} (of those named) has VNFC {', '.join(sorted(wanted))}"
        )
    return targets


async def _unhealthy(vims: VimRegistry, vnf: VnfInstance) -> list[str]:
    vim = vims.get_vim(vnf.vim)
    sick = []
    for vnfc in vnf.vnfcs:
        try:
            server = await vim.get_server(vnfc.server_id)
        except NotFound:
            sick.append(vnfc.id)
            continue
        if await vim_health(vim, vnf, server) is not None:
            sick.append(vnfc.id)
    return sick


async def run(
    ctx: NsContext, ns: NsInstance, op: NsOperation, targets: list[HealTarget]
) -> tuple[NsInstance, NsOperation]:
    problems = []
    for target in targets:
        healed = False
        tried = []
        for level in target.levels:
            try:
                ended = await ctx.members.run(
                    target.vnf_id,
                    functools.partial(ctx.vnfm.heal, target.vnf_id, target.vnfc_id, level),
                )
            except ManoError as exc:
                tried.append(f"{level}: {exc}")
                continue
            op = with_vnf_op(op, ended.vnf_id, ended.id)
            ns = await ctx.save(ns, op)
            if ended.state is OpState.COMPLETED:
                healed = True
                break
            tried.append(f"{level}: {ended.state} ({ended.error})")
        if not healed:
            problems.append(f"VNFC {target.vnfc_id} of {target.vnf.name}: " + "; ".join(tried))
    if problems:
        return await ctx.move(ns, op, NsOpState.FAILED, error="; ".join(problems))
    return await ctx.move(ns, op, NsOpState.COMPLETED)
