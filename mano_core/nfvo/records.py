"""Records of network service (NS) instances, as JSON in Redis (see :mod:`.inventory`).

An NS instance lists the VNF instances it is made of (one per instance of
each NSD member, with the VIM the NFVO placed it on), the networks it made
for its virtual links, its NS scale levels, its labels, and its recent
lifecycle operations.
"""

from __future__ import annotations

import enum

import msgspec


class NsState(enum.StrEnum):
    """After SOL005 ``nsState``."""

    NOT_INSTANTIATED = "NOT_INSTANTIATED"
    INSTANTIATED = "INSTANTIATED"


class NsOpState(enum.StrEnum):
    """The states an NS lifecycle operation goes through."""

    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"

    @property
    def final(self) -> bool:
        return self in (NsOpState.COMPLETED, NsOpState.ROLLED_BACK, NsOpState.FAILED)


class NsOperation(msgspec.Struct):
    """One lifecycle operation of an NS instance."""

    id: str
    operation: str
    """INSTANTIATE, SCALE, HEAL or TERMINATE."""
    state: NsOpState
    started_at: float
    params: dict[str, object] = {}
    finished_at: float | None = None
    error: str | None = None
    vnf_ops: list[str] = []
    """``vnf_id/op_id`` of the VNF operations it ran, in order."""


class NsVnf(msgspec.Struct):
    """One VNF instance of the NS: instance ``index`` of NSD member ``member``."""

    member: str
    index: int
    vim: str
    """The VIM the NFVO placed it on."""
    op_id: str
    """The id of its instantiate operation (which the VNFM's grant request carries)."""
    vnf_id: str | None = None
    """Set once the VNFM has created it."""
    name: str = ""

    @property
    def key(self) -> str:
        return f"{self.member}-{self.index}"


class NsNetwork(msgspec.Struct):
    """A network the NFVO made on one VIM for one NS virtual link."""

    link: str
    vim: str
    network_id: str
    subnet_id: str | None = None


class NsInstance(msgspec.Struct):
    """One network service instance."""

    id: str
    name: str
    nsd_id: str
    nsd_version: str
    state: NsState
    created_at: float
    updated_at: float
    description: str = ""
    labels: dict[str, str] = {}
    vnfs: list[NsVnf] = []
    networks: list[NsNetwork] = []
    scale_levels: dict[str, int] = {}
    """Current level of each NS scaling aspect."""
    operations: list[NsOperation] = []
    """Its lifecycle operations, oldest first (the most recent few)."""

    def vnf_ids(self) -> list[str]:
        return [v.vnf_id for v in self.vnfs if v.vnf_id is not None]

    def member_vnfs(self, member: str) -> list[NsVnf]:
        return [v for v in self.vnfs if v.member == member]

    @property
    def last_operation(self) -> NsOperation | None:
        return self.operations[-1] if self.operations else None
