"""The NFVO's granter: NS members stay where the NFVO placed them, and keep their VDU rules.

:class:`NfvoGranter` answers the VNFM's grant requests. A request for a VNF
that is no NS member (no ``ns_id``) is answered as
:class:`~mano_core.granter.VimGranter` answers it. For an NS member:

- the VIM is the one the NFVO chose for it when it placed the NS
  (:mod:`mano_core.nfvo.placement`), recorded in the NS instance before the
  member was instantiated; afterwards, the VNF's own VIM;
- each new VNFC bound by a rule of scope ``host`` or ``zone`` of the NSD
  gets its host or zone (:mod:`mano_core.nfvo.vdus`);
- the quotas and hosts of that VIM must take it all, as with the VIM
  granter, the chosen hosts counted where they were chosen.

Everything it reads (NS instances, NSDs, VNF records, the VIMs) is shared
in Redis, so the granter of every process (the actuator's scaling an NS
member out, say) answers alike.
"""

from __future__ import annotations

import uuid

from mano_core.capacity import Room
from mano_core.catalogue import Catalogue
from mano_core.errors import GrantRefused
from mano_core.granter import VimGranter, room_problems
from mano_core.grants import Grant, GrantRequest
from mano_core.inventory import Inventory
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.vdus import vdu_placements
from mano_core.vim.registry import VimRegistry


class NfvoGranter:
    """Implements :class:`~mano_core.grants.Granter` for NS members (others: as the VIMs say)."""

    def __init__(
        self,
        vims: VimRegistry,
        ns_inventory: NsInventory,
        inventory: Inventory,
        catalogue: Catalogue,
    ) -> None:
        self._vims = vims
        self._ns = ns_inventory
        self._inventory = inventory
        self._catalogue = catalogue
        self._plain = VimGranter(vims)

    async def grant(self, request: GrantRequest) -> Grant:
        if request.ns_id is None:
            return await self._plain.grant(request)
        ns = await self._ns.find(request.ns_id)
        if ns is None:
            raise GrantRefused([f"NS instance {request.ns_id} does not exist"])
        member = next(
            (v for v in ns.vnfs if v.vnf_id == request.vnf_id or v.op_id == request.op_id), None
        )
        if member is None:
            raise GrantRefused(
                [f"VNF {request.vnf_id} is not a member the NFVO placed in NS {ns.name}"]
            )
        vim = request.vim or member.vim
        room = await Room.read(self._vims.get_vim(vim))
        nsd = await self._catalogue.get_nsd(ns.nsd_id, ns.nsd_version)
        rules = [(i, r) for i, r in enumerate(nsd.placement) if member.member in r.members]
        vnf = await self._inventory.find(request.vnf_id)
        chosen = vdu_placements(rules, request, vnf, room)
        problems = [*chosen.problems, *room_problems(room, request, chosen.placements)]
        if problems:
            raise GrantRefused([f"VIM {vim}: {p}" for p in problems])
        return Grant(id=str(uuid.uuid4()), vim=vim, placements=chosen.placements)
