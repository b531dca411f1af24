"""The per-VNF actuation lease: at most one operation at a time per VNF, across processes.

A :class:`~bus.lease.Lease` on ``keys.vnf_lease(vnf)`` whose TTL is longer
than an operation's timeout, so the lease of a worker that died expires by
itself and another worker proceeds; see :mod:`bus.lease` for how it is kept
and why it can never be released or extended by anyone but its holder.
"""

from __future__ import annotations

from typing import Any

from bus.clock import Clock
from bus.keys import Keys
from bus.lease import Lease, LeaseLost

__all__ = ["LeaseLost", "VnfLease"]


class VnfLease(Lease):
    """The lease on one VNF instance."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        clock: Clock,
        vnf_id: str,
        *,
        ttl_s: float,
        holder: str,
        poll_s: float = 1.0,
    ) -> None:
        super().__init__(
            redis,
            keys.vnf_lease(vnf_id),
            clock,
            ttl_s=ttl_s,
            holder=holder,
            poll_s=poll_s,
            name=f"VNF {vnf_id}",
        )
        self.vnf_id = vnf_id
