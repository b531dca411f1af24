"""The topology conditions are evaluated against: VNF instances, their VNFCs, their VNFDs.

VNF and VNFC targets come from the inventory (a VNFC added by a scale-out
counts at once, a removed one stops counting; a VNF with no data is still
a target, whose value is unknown). The topology is kept in memory and
changed one VNF at a time (:meth:`Topology.apply`), as the inventory's
change notifications say, never read whole on each evaluation.
``generation`` changes with every change, so evaluators rebuild their
target lists only then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from analytics.codes import Codes
from bus.contracts import Target, TargetKind
from mano_core.models import VnfcInstance, VnfInstance
from mano_core.nfvo.records import NsInstance


def vnf_target(vnf: VnfInstance) -> Target:
    return Target(kind=TargetKind.VNF, id=vnf.id, vnf=vnf.id, vnfd=vnf.vnfd_id)


def vnfc_target(vnf: VnfInstance, vnfc: VnfcInstance) -> Target:
    return Target(kind=TargetKind.VNFC, id=vnfc.id, vnf=vnf.id, vnfd=vnf.vnfd_id, host=vnfc.host)


def host_target(host: str) -> Target:
    return Target(kind=TargetKind.HOST, id=host, host=host)


def ns_target(ns: NsInstance) -> Target:
    return Target(kind=TargetKind.NS, id=ns.id)


class Topology:
    """The VNF instances analytics knows of, by id."""

    def __init__(self, codes: Codes, vnfs: Iterable[VnfInstance] = ()) -> None:
        self.codes = codes
        self._vnfs: dict[str, VnfInstance] = {}
        self.network_services: list[NsInstance] = []
        """The NS instances (for NS-scope conditions), oldest first."""
        self.generation = 0
        self.replace(vnfs)

    def __len__(self) -> int:
        return len(self._vnfs)

    def replace(self, vnfs: Iterable[VnfInstance]) -> None:
        """Take ``vnfs`` as the whole inventory."""
        self._vnfs = {vnf.id: vnf for vnf in vnfs}
        self.generation += 1

    def apply(self, changes: Mapping[str, VnfInstance | None]) -> None:
        """Apply changed records (None: the VNF instance was deleted)."""
        if not changes:
            return
        for vnf_id, vnf in changes.items():
            if vnf is None:
                self._vnfs.pop(vnf_id, None)
            else:
                self._vnfs[vnf_id] = vnf
        self.generation += 1

    def replace_ns(self, instances: Iterable[NsInstance]) -> None:
        """Take ``instances`` as every NS instance."""
        self.network_services = sorted(instances, key=lambda n: (n.created_at, n.id))
        self.generation += 1

    def vnfs(self, vnfd: str | None = None) -> list[VnfInstance]:
        """The VNF instances (of ``vnfd`` only, when given), oldest first."""
        found = [v for v in self._vnfs.values() if vnfd is None or v.vnfd_id == vnfd]
        return sorted(found, key=lambda v: (v.created_at, v.id))

    def find(self, vnf_id: str) -> VnfInstance | None:
        return self._vnfs.get(vnf_id)

    def vnfc_hosts(self) -> dict[str, str | None]:
        """The host of every VNFC, by VNFC id."""
        return {c.id: c.host for v in self._vnfs.values() for c in v.vnfcs}
