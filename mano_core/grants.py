"""Grants: the VNFM asks before it takes resources, and is told where to put them.

Before an operation creates (or gives back) any resource, the VNFM sends a
:class:`GrantRequest` listing, per VNFC, what it will add, remove or
change, with its VDU and flavour. A :class:`Granter` (the NFVO's, or
:class:`~mano_core.granter.VimGranter` when there is no NFVO) answers
with a :class:`Grant`: the VIM the VNF's new VNFCs go to and, per new
VNFC, an optional placement (availability zone, host). It refuses by
raising :class:`~mano_core.errors.GrantRefused` with its reasons; the
operation then ends (ROLLED_BACK) before anything exists.

The grant is stored in the operation occurrence, so a resumed operation
keeps to the grant it got instead of asking again.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from mano_core.models import LcmOperation


class Resources(msgspec.Struct, frozen=True):
    """The compute resources of one VNFC's server."""

    vcpus: int
    ram_mb: int
    disk_gb: int = 0


class ResourceChange(msgspec.Struct, frozen=True):
    """One VNFC the operation adds, removes or changes."""

    vnfc: str
    vdu: str
    resources: Resources
    """For an addition or removal, what the VNFC holds; for a change, what it
    will hold afterwards."""
    previous: Resources | None = None
    """For a change, what it holds now."""
    flavour: str = ""
    """The flavour's name, when the VDU names one."""
    host: str | None = None
    """Where the VNFC is now (removals and changes)."""


class GrantRequest(msgspec.Struct, frozen=True):
    """What an operation on one VNF instance is about to take or give back."""

    vnf_id: str
    vnfd_id: str
    operation: LcmOperation
    op_id: str
    vim: str | None
    """The VIM the VNF runs on; None for an instantiation (the granter chooses)."""
    add: tuple[ResourceChange, ...] = ()
    remove: tuple[ResourceChange, ...] = ()
    change: tuple[ResourceChange, ...] = ()
    """VNFCs that stay but change size (a change of flavour)."""
    is_automatic: bool = False
    """True when the closed loop (not an operator) started the operation."""
    ns_id: str | None = None
    """The NS instance the VNF is (to be) a member of; its NSD's placement rules apply."""


class Placement(msgspec.Struct, frozen=True):
    """Where one new VNFC goes within the granted VIM; None fields: the VIM's choice."""

    zone: str | None = None
    host: str | None = None


class Grant(msgspec.Struct, frozen=True):
    """The answer to a :class:`GrantRequest` that was granted."""

    id: str
    vim: str
    """The VIM of the VNF's new VNFCs (the VNF's own VIM once it is instantiated)."""
    placements: dict[str, Placement] = {}
    """Per new VNFC id; a VNFC not named here: the VIM's choice."""

    def placement(self, vnfc_id: str) -> Placement:
        return self.placements.get(vnfc_id, Placement())


class Granter(Protocol):
    """Who decides whether an operation may take resources, and where."""

    async def grant(self, request: GrantRequest) -> Grant:
        """Grant ``request``, or raise :class:`~mano_core.errors.GrantRefused` saying why.

        The same ``op_id`` may be asked again when the VNFM stopped before
        it recorded the answer; answering afresh is fine (nothing was taken).
        Other failures (a VIM that cannot be read) are raised as they are
        (a temporary one lets the operation be retried).
        """
        ...
