"""Following the inventory: the topology kept in memory, changed one VNF at a time.

The first refresh reads the whole inventory (after noting the newest
change, so nothing saved meanwhile is missed); every later one reads only
the change notifications since (:meth:`mano_core.inventory.Inventory.changes_since`)
and the records of the VNFs they name. When the change stream no longer
reaches back that far (a worker that was away long), it reads the whole
inventory again. NS instances (for NS-scope conditions) are read again
whenever the NS inventory's change counter moved.
"""

from __future__ import annotations

import logging
from typing import Protocol

from analytics.topology import Topology
from mano_core.models import VnfInstance
from mano_core.nfvo.records import NsInstance

log = logging.getLogger(__name__)


class InventoryReader(Protocol):
    """The part of :class:`mano_core.inventory.Inventory` analytics reads."""

    async def list(self) -> list[VnfInstance]: ...

    async def last_change(self) -> str: ...

    async def changes_since(
        self, after: str, *, count: int = 1000
    ) -> tuple[str, dict[str, VnfInstance | None]] | None: ...


class NsReader(Protocol):
    """The part of :class:`mano_core.nfvo.inventory.NsInventory` analytics reads."""

    async def list(self) -> list[NsInstance]: ...

    async def version(self) -> int: ...


class TopologyFollower:
    """Keeps a :class:`Topology` in step with the inventory (and the NS inventory)."""

    def __init__(
        self, inventory: InventoryReader, topology: Topology, ns: NsReader | None = None
    ) -> None:
        self._inventory = inventory
        self._ns = ns
        self._ns_version: int | None = None
        self.topology = topology
        self._after: str | None = None
        self.reloads = 0
        """Whole reads of the inventory so far (the first one included)."""

    async def refresh(self) -> None:
        """Bring the topology up to date (a round trip or two when nothing changed)."""
        if self._ns is not None:
            version = await self._ns.version()
            if version != self._ns_version:
                self.topology.replace_ns(await self._ns.list())
                self._ns_version = version
        if self._after is None:
            await self._reload()
            return
        while True:
            found = await self._inventory.changes_since(self._after)
            if found is None:
                log.warning("inventory changes were trimmed before they were read: reloading")
                await self._reload()
                return
            after, changed = found
            self.topology.apply(changed)
            if after == self._after or not changed:
                self._after = after
                return
            self._after = after

    async def _reload(self) -> None:
        after = await self._inventory.last_change()
        self.topology.replace(await self._inventory.list())
        self._after = after
        self.reloads += 1
