"""What the closed loop needs to know about the world, and the few things it claims in it.

The loop (:mod:`policy.loop`) decides from a VNF's record and from these
facts only, so the same decisions are taken live (:class:`RedisFacts`,
in :mod:`policy.store`), in a backtest and in the closed-loop benchmark
(in-memory facts with simulated time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bus.contracts import GuardResult
from mano_core.models import VnfInstance
from mano_core.nfvo.records import NsInstance
from mano_core.nsd import Nsd
from mano_core.vnfd import Vnfd
from policy.schema import KpiPolicy, Mode


def hosts_of(vnf: VnfInstance) -> list[str]:
    """The hosts the VNF's VNFCs run on, sorted."""
    return sorted({c.host for c in vnf.vnfcs if c.host})


class Facts(Protocol):
    async def vnf(self, vnf_id: str) -> VnfInstance | None:
        """The VNF instance as the inventory has it now (None: gone)."""
        ...

    async def vnfd_of(self, vnf: VnfInstance) -> Vnfd | None:
        """The descriptor version ``vnf`` runs (None: not in the catalogue)."""
        ...

    async def ns(self, ns_id: str) -> NsInstance | None:
        """The NS instance as the NFVO has it now (None: gone, or no NFVO here)."""
        ...

    async def nsd_of(self, ns: NsInstance) -> Nsd | None:
        """The NSD version ``ns`` was instantiated from (None: not in the catalogue)."""
        ...

    async def busy(self, loop_id: str) -> str | None:
        """The decision in flight in another loop record (a VNF's, an NS's); None: none."""
        ...

    async def mode(self, policy: KpiPolicy) -> Mode:
        """The policy's mode now: an operator's override, else the file's."""
        ...

    async def opted_out(self, vnf: str, hosts: Sequence[str]) -> str | None:
        """Why automation is off for this VNF or one of these hosts (None: it is on)."""
        ...

    async def approval(self, decision_id: str) -> tuple[str, str] | None:
        """An operator's answer to a decision (``approve`` or ``reject``, and who gave it);
        None while nobody has answered."""
        ...

    async def onsets_since(self, since: float) -> int:
        """How many ONSETs (any policy, any target) arrived since ``since``."""
        ...

    async def failing_host_share(self) -> float:
        """The share of known hosts with an open host violation (0..1)."""
        ...

    async def capacity(self, vnf: VnfInstance, vnfd: Vnfd, vdu: str, count: int) -> GuardResult:
        """Whether ``count`` more VNFCs of ``vdu`` can be placed (the scale-out pre-check)."""
        ...

    async def claim_slot(self, decision_id: str, host: str | None, now: float) -> GuardResult:
        """Take one of the concurrent-operation slots (global and per host), or say why not.

        Claiming again for the same decision passes (idempotent).
        """
        ...

    async def release_slot(self, decision_id: str) -> None:
        """Give the decision's slot back (no error when it holds none)."""
        ...
