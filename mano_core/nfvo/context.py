"""What every NS operation shares: the NFVO's collaborators and how an operation is recorded.

An NS operation is an :class:`~mano_core.nfvo.records.NsOperation` in its
NS instance's record, PROCESSING while it runs, then COMPLETED, or (for
those that can be undone) ROLLING_BACK -> ROLLED_BACK, or FAILED. Only the
process holding the NS's lease writes the record meanwhile, so each step is
a plain read-modify-write.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from bus.clock import Clock
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.members import Members
from mano_core.nfvo.records import NsInstance, NsOperation, NsOpState
from mano_core.vim.registry import VimRegistry
from mano_core.vnfm import Vnfm


@dataclass
class NsContext:
    vims: VimRegistry
    ns_inventory: NsInventory
    inventory: Inventory
    catalogue: Catalogue
    members: Members
    clock: Clock

    @property
    def vnfm(self) -> Vnfm:
        return self.members.vnfm

    async def save(self, ns: NsInstance, op: NsOperation | None = None) -> NsInstance:
        """Save ``ns`` with ``op`` as it now stands (replacing its earlier state)."""
        if op is not None:
            ops = [o for o in ns.operations if o.id != op.id]
            ns = msgspec.structs.replace(ns, operations=[*ops, op])
        ns = msgspec.structs.replace(ns, updated_at=self.clock.now())
        await self.ns_inventory.save(ns)
        return ns

    async def move(
        self,
        ns: NsInstance,
        op: NsOperation,
        state: NsOpState,
        *,
        error: str | None = None,
    ) -> tuple[NsInstance, NsOperation]:
        """``op`` enters ``state`` (a final state stamps ``finished_at``), recorded in ``ns``."""
        op = msgspec.structs.replace(
            op,
            state=state,
            error=error if error is not None else op.error,
            finished_at=self.clock.now() if state.final else None,
        )
        return await self.save(ns, op), op


def with_vnf_op(op: NsOperation, vnf_id: str, vnf_op_id: str) -> NsOperation:
    """``op`` having run VNF operation ``vnf_op_id`` on ``vnf_id``."""
    return msgspec.structs.replace(op, vnf_ops=[*op.vnf_ops, f"{vnf_id}/{vnf_op_id}"])
