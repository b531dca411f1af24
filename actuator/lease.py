"""The per-VNF actuation lease: at most one operation at a time per VNF, across processes.

It is :class:`bus.lease.VnfLease` (the NFVO and the API take the same
lease); see :mod:`bus.lease` for how it is kept and why it can never be
released or extended by anyone but its holder.
"""

from __future__ import annotations

from bus.lease import LeaseLost, VnfLease

__all__ = ["LeaseLost", "VnfLease"]
