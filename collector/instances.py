"""Which VNF or VNFC a pushed or queried series is about, by the labels it carries.

Samples that arrive from elsewhere (remote_write, VES, an existing
Prometheus) carry their sender's labels. A series is taken to be about a
VNFC when one of these labels names it, first match wins:

- ``vnfc``, ``vnfc_id`` or ``vnfc_instance_id``: the VNFC instance id;
- ``server`` or ``server_id``: the id of the VIM server the VNFC runs on,
  or that server's name (``<VNF name>-<VNFC id>``, what an agent on it
  takes for its hostname);
- ``instance``: ``host:port`` whose host is the VNFC's address (what a
  Prometheus scraping the VNFC's exporter calls its target).

Such a series gets the labels a scraped one has (``vnf``, ``vnfc``,
``vnfd``, ``host``), which win over the sender's own (a clashing one is
kept as ``exported_<name>``). Otherwise ``vnf`` or ``vnf_instance_id``
naming a VNF (its instance id, or its name when no other VNF has it) gives
it ``vnf`` and ``vnfd``: a VNF-level series, which conditions of scope
``vnf`` and ``ns`` count as one more object of that VNF. A series naming
nothing known keeps its labels as they are (a host series, or one no
condition uses).

The inventory is read at most every ``refresh_s`` (wall seconds), so a
VNFC added by a scale-out is recognised within that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from collector.exposition import merge_labels
from collector.targets import InventoryReader, vnfc_labels
from mano_core.servers import server_name

VNFC_LABELS = ("vnfc", "vnfc_id", "vnfc_instance_id")
SERVER_LABELS = ("server", "server_id")
VNF_LABELS = ("vnf", "vnf_instance_id")


class InstanceLabels:
    """Maps sender labels onto the inventory's VNF and VNFC instances."""

    def __init__(
        self,
        inventory: InventoryReader,
        *,
        refresh_s: float = 5.0,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inventory = inventory
        self.refresh_s = refresh_s
        self._wall = wall
        self._read_at: float | None = None
        self._by_vnfc: dict[str, dict[str, str]] = {}
        self._by_server: dict[str, dict[str, str]] = {}
        self._by_address: dict[str, dict[str, str]] = {}
        self._by_vnf: dict[str, dict[str, str]] = {}
        self.generation = 0
        """Bumped by each read of the inventory: what was mapped before may map otherwise."""

    async def refresh(self, *, force: bool = False) -> None:
        """Read the inventory again if it is older than ``refresh_s`` (or ``force``)."""
        now = self._wall()
        if not force and self._read_at is not None and now - self._read_at < self.refresh_s:
            return
        by_vnfc: dict[str, dict[str, str]] = {}
        by_server: dict[str, dict[str, str]] = {}
        by_address: dict[str, dict[str, str]] = {}
        by_vnf: dict[str, dict[str, str]] = {}
        by_name: dict[str, dict[str, str] | None] = {}
        for vnf in await self._inventory.list():
            own = {"vnf": vnf.id, "vnfd": vnf.vnfd_id}
            by_vnf[vnf.id] = own
            # A name two VNFs share names neither.
            by_name[vnf.name] = None if vnf.name in by_name else own
            for vnfc in vnf.vnfcs:
                labels = vnfc_labels(vnf, vnfc)
                by_vnfc[vnfc.id] = labels
                by_server[vnfc.server_id] = labels
                by_server.setdefault(server_name(vnf, vnfc.id), labels)
                if vnfc.address:
                    by_address[vnfc.address] = labels
        for name, named in by_name.items():
            if named is not None:
                by_vnf.setdefault(name, named)
        self._by_vnfc, self._by_server = by_vnfc, by_server
        self._by_address, self._by_vnf = by_address, by_vnf
        self._read_at = now
        self.generation += 1

    def instance_of(self, labels: Mapping[str, str]) -> dict[str, str] | None:
        """The inventory labels of what ``labels`` name, if anything known."""
        for name in VNFC_LABELS:
            found = self._by_vnfc.get(labels.get(name, ""))
            if found is not None:
                return found
        for name in SERVER_LABELS:
            found = self._by_server.get(labels.get(name, ""))
            if found is not None:
                return found
        instance = labels.get("instance")
        if instance:
            host = instance.rsplit(":", 1)[0].strip("[]") if ":" in instance else instance
            found = self._by_address.get(host)
            if found is not None:
                return found
        for name in VNF_LABELS:
            found = self._by_vnf.get(labels.get(name, ""))
            if found is not None:
                return found
        return None

    def label(self, labels: Mapping[str, str]) -> dict[str, str]:
        """``labels`` with those of the instance they name (see the module docstring)."""
        instance = self.instance_of(labels)
        if instance is None:
            return dict(labels)
        return merge_labels(labels, instance)
