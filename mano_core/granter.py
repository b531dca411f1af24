"""The granter used without an NFVO: capacity and quota checked on the VIMs themselves.

:class:`VimGranter` grants a request when one VIM can take it: the VNF's
own VIM once it runs somewhere, else the first configured VIM that can
(in the registry's order). "Can take it" (:func:`room_problems`) means the
project's quotas allow the added instances, vCPUs and RAM, and every added
(or resized) VNFC fits on some schedulable host, counting what the earlier
ones of the same request take. It leaves placement within the VIM to the
VIM's scheduler. Removals are not counted as freeing anything: an
operation may hold both for a while (a recreate, a resize waiting in
VERIFY_RESIZE).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from mano_core.capacity import Room, no_room
from mano_core.errors import GrantRefused
from mano_core.grants import Grant, GrantRequest, Placement, Resources
from mano_core.vim.registry import VimRegistry


class VimGranter:
    """Implements :class:`~mano_core.grants.Granter` by asking the VIMs."""

    def __init__(self, vims: VimRegistry) -> None:
        self._vims = vims

    async def grant(self, request: GrantRequest) -> Grant:
        names = [request.vim] if request.vim is not None else list(self._vims)
        reasons: list[str] = []
        for name in names:
            vim = self._vims.get_vim(name)
            problems = room_problems(await Room.read(vim), request) if _takes(request) else []
            if not problems:
                return Grant(id=str(uuid.uuid4()), vim=name)
            reasons.extend(f"VIM {name}: {p}" for p in problems)
        raise GrantRefused(reasons)


def _takes(request: GrantRequest) -> bool:
    return bool(request.add or request.change)


def room_problems(
    room: Room, request: GrantRequest, placements: Mapping[str, Placement] | None = None
) -> list[str]:
    """Why the VIM of ``room`` cannot take what ``request`` adds and grows (nothing: it can).

    ``placements``: hosts (or zones) chosen for some VNFCs, whose room is taken there.
    What fits is taken from ``room``.
    """
    added = [c.resources for c in request.add]
    grown = [
        Resources(
            max(0, c.resources.vcpus - c.previous.vcpus),
            max(0, c.resources.ram_mb - c.previous.ram_mb),
        )
        for c in request.change
        if c.previous is not None
    ]
    problems = room.quota_problems(
        len(added),
        sum(r.vcpus for r in [*added, *grown]),
        sum(r.ram_mb for r in [*added, *grown]),
    )
    for change in [*request.add, *request.change]:
        where = (placements or {}).get(change.vnfc, Placement())
        if room.take_host(change.resources, where.host, where.zone) is None:
            what = f"VNFC {change.vnfc} of VDU {change.vdu}"
            if where.host or where.zone:
                what += f" on {where.host or 'zone ' + str(where.zone)}"
            problems.append(no_room(change.resources, what))
    return problems
