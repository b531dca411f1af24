"""What an alert is about, from its labels, checked against the inventory.

The label conventions (see ``deploy/README.md``), most specific first:

- ``vnfc_id``: a VNFC instance (``vnf_instance_id`` or ``vnf``, if also
  given, must be its VNF);
- ``vnf_instance_id``, or ``vnf`` with the VNF instance's name: a VNF;
- ``host``: a compute host of the VIM.

A ``ns_instance_id`` alone names a network service, which no policy action
acts on (scale, heal and migrate act on VNFs, VNFCs and hosts): such an
alert is refused, as is one whose VNF, VNFC or host does not exist.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bus.contracts import Target, TargetKind
from mano_core.inventory import Inventory
from mano_core.models import VnfcInstance, VnfInstance
from mano_core.vim.base import VimDriver

TARGET_LABELS = ("vnfc_id", "vnf_instance_id", "vnf", "host", "ns_instance_id")


class UnknownTarget(ValueError):
    """The alert's labels name nothing the platform knows; the message says what."""


@dataclass(frozen=True)
class InventoryView:
    """The inventory's VNF instances as read once, indexed the ways alert labels name them,
    so that resolving an alert costs the same with ten VNFs as with ten thousand."""

    vnfs: dict[str, VnfInstance]
    """By VNF instance id."""
    named: dict[str, list[VnfInstance]]
    """By VNF instance name (names need not be unique)."""
    vnfcs: dict[str, tuple[VnfInstance, VnfcInstance]]
    """By VNFC instance id: its VNF and itself."""
    hosts: frozenset[str]
    """The compute hosts some VNFC runs on."""

    @classmethod
    def of(cls, vnfs: Sequence[VnfInstance]) -> InventoryView:
        named: dict[str, list[VnfInstance]] = {}
        vnfcs: dict[str, tuple[VnfInstance, VnfcInstance]] = {}
        for vnf in vnfs:
            named.setdefault(vnf.name, []).append(vnf)
            for vnfc in vnf.vnfcs:
                vnfcs[vnfc.id] = (vnf, vnfc)
        hosts = frozenset(c.host for _, c in vnfcs.values() if c.host)
        return cls({v.id: v for v in vnfs}, named, vnfcs, hosts)


class InventorySnapshot:
    """The inventory's VNF instances, read at most once per ``max_age_s`` (wall seconds).

    A burst of notifications shares one read instead of each reading every
    VNF record; a lookup that misses reads again (:meth:`fresh`), so a VNFC
    created a moment ago is found all the same.
    """

    def __init__(self, inventory: Inventory, max_age_s: float = 1.0) -> None:
        self._inventory = inventory
        self._max_age_s = max_age_s
        self._view = InventoryView.of([])
        self._read_at = -math.inf
        self._reading: asyncio.Task[InventoryView] | None = None

    async def view(self) -> InventoryView:
        if time.monotonic() - self._read_at <= self._max_age_s:
            return self._view
        return await self.fresh()

    async def fresh(self) -> InventoryView:
        """Read the inventory now (one read for all who ask at once)."""
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
        reading = self._reading
        try:
            return await asyncio.shield(reading)
        finally:
            if self._reading is reading and reading.done():
                self._reading = None

    async def _read(self) -> InventoryView:
        view = InventoryView.of(await self._inventory.list())
        self._view, self._read_at = view, time.monotonic()
        return view


class AlertTargets:
    """Resolves alert labels to a :class:`~bus.contracts.Target`."""

    def __init__(self, snapshot: InventorySnapshot, vims: Sequence[VimDriver]) -> None:
        self._snapshot = snapshot
        self._vims = vims

    async def resolve(self, labels: dict[str, str]) -> Target:
        """The target the labels name; raises :class:`UnknownTarget`."""
        try:
            return await self._resolve(labels, await self._snapshot.view())
        except UnknownTarget:
            return await self._resolve(labels, await self._snapshot.fresh())

    async def _resolve(self, labels: dict[str, str], inventory: InventoryView) -> Target:
        vnf = _named_vnf(inventory, labels)
        vnfc_id = labels.get("vnfc_id")
        if vnfc_id:
            found = inventory.vnfcs.get(vnfc_id)
            if found is None:
                raise UnknownTarget(f"no VNFC instance {vnfc_id!r} (label vnfc_id)")
            owner, vnfc = found
            if vnf is not None and vnf.id != owner.id:
                raise UnknownTarget(f"VNFC {vnfc_id} belongs to VNF {owner.id}, not {vnf.id}")
            return Target(TargetKind.VNFC, vnfc.id, vnf=owner.id, vnfd=owner.vnfd_id,
                          host=vnfc.host)  # fmt: skip
        if vnf is not None:
            return Target(TargetKind.VNF, vnf.id, vnf=vnf.id, vnfd=vnf.vnfd_id)
        host = labels.get("host")
        if host:
            if not await self._host_exists(host, inventory):
                raise UnknownTarget(f"no compute host {host!r} (label host)")
            return Target(TargetKind.HOST, host, host=host)
        if labels.get("ns_instance_id"):
            raise UnknownTarget(
                "a network service alone (ns_instance_id) is no target of an action: "
                "add vnf_instance_id, vnfc_id or host"
            )
        raise UnknownTarget(f"the alert names no target: give one of {', '.join(TARGET_LABELS)}")

    async def _host_exists(self, host: str, inventory: InventoryView) -> bool:
        if host in inventory.hosts:
            return True
        for vim in self._vims:
            if any(h.name == host for h in await vim.list_hosts()):
                return True
        return False


def _named_vnf(inventory: InventoryView, labels: dict[str, str]) -> VnfInstance | None:
    vnf_id = labels.get("vnf_instance_id")
    name = labels.get("vnf")
    if vnf_id:
        found = inventory.vnfs.get(vnf_id)
        if found is None:
            raise UnknownTarget(f"no VNF instance {vnf_id!r} (label vnf_instance_id)")
        if name and found.name != name:
            raise UnknownTarget(f"VNF {vnf_id} is named {found.name!r}, not {name!r}")
        return found
    if name:
        named = inventory.named.get(name, [])
        if not named:
            raise UnknownTarget(f"no VNF instance named {name!r} (label vnf)")
        if len(named) > 1:
            ids = ", ".join(v.id for v in named)
            raise UnknownTarget(f"{len(named)} VNF instances are named {name!r} ({ids}): "
                                "use vnf_instance_id")  # fmt: skip
        return named[0]
    return None
