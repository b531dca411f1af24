"""Where the new VNFCs of an NS member go within its VIM: the NSD's VDU rules.

A placement rule of scope ``host`` or ``zone`` binds the VNFCs of some VDUs
within each VNF instance of its members (see ``docs/nsd.md``):

- ``affinity``: all of them on one host (zone): a new one joins those there
  are, or, when there are none yet, all the new ones go to one host (zone)
  with room for all of them together;
- ``anti_affinity``: each on a host (zone) of its own: a new one goes where
  none of the others (those that stay) is.

Each chosen host or zone takes the VNFC's room in a working copy of the
VIM's :class:`~mano_core.capacity.Room`, so the next choice counts it. A
rule that cannot be kept is a reason to refuse the grant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mano_core.capacity import Room, no_room
from mano_core.grants import GrantRequest, Placement, ResourceChange, Resources
from mano_core.models import VnfInstance
from mano_core.nsd import PlacementRule


@dataclass
class VduPlacements:
    placements: dict[str, Placement] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def vdu_placements(
    rules: Sequence[tuple[int, PlacementRule]],
    request: GrantRequest,
    vnf: VnfInstance | None,
    room: Room,
) -> VduPlacements:
    """The placement of each new VNFC the ``rules`` (index, rule) bind, and what cannot be kept.

    ``vnf``: the instance as it is (None before it exists); ``room`` is not changed.
    """
    out = VduPlacements()
    work = room.copy()
    removed = {c.vnfc for c in request.remove}
    for i, rule in rules:
        if rule.scope == "vim":
            continue
        added = [c for c in request.add if c.vdu in rule.vdus]
        if not added:
            continue
        staying = [
            c.host
            for c in (vnf.vnfcs if vnf is not None else [])
            if c.vdu in rule.vdus and c.id not in removed and c.host is not None
        ]
        scope = _Scope(rule.scope, work)
        where = [scope.of(h) for h in staying]
        if rule.type == "affinity":
            _together(out, i, scope, added, where[0] if where else None)
        else:
            _apart(out, i, scope, added, {w for w in where if w is not None}, rule.vdus)
    return out


class _Scope:
    """Hosts, or zones, of a room."""

    def __init__(self, scope: str, room: Room) -> None:
        self.scope = scope
        self.room = room

    def of(self, host: str) -> str | None:
        return host if self.scope == "host" else self.room.zones.get(host)

    def roomiest(self) -> list[str]:
        """The hosts (zones) with room, most free vCPUs first, as a VIM's scheduler picks."""
        free: dict[str, int] = {}
        for host, (vcpus, _ram, _disk) in self.room.free.items():
            unit = self.of(host)
            if unit is not None:
                free[unit] = free.get(unit, 0) + vcpus
        return sorted(free, key=lambda u: (-free[u], u))

    def take(self, needed: Resources, unit: str) -> bool:
        if self.scope == "host":
            return self.room.take_host(needed, host=unit) is not None
        return self.room.take_host(needed, zone=unit) is not None

    def placement(self, unit: str) -> Placement:
        return Placement(host=unit) if self.scope == "host" else Placement(zone=unit)

    def fits_all(self, added: Sequence[ResourceChange], unit: str) -> bool:
        trial = _Scope(self.scope, self.room.copy())
        return all(trial.take(c.resources, unit) for c in added)


def _together(
    out: VduPlacements,
    i: int,
    scope: _Scope,
    added: Sequence[ResourceChange],
    there: str | None,
) -> None:
    if there is None:
        there = next((u for u in scope.roomiest() if scope.fits_all(added, u)), None)
        if there is None:
            total = Resources(
                sum(c.resources.vcpus for c in added),
                sum(c.resources.ram_mb for c in added),
                sum(c.resources.disk_gb for c in added),
            )
            vnfcs = ", ".join(c.vnfc for c in added)
            out.problems.append(
                f"placement[{i}]: no {scope.scope} has room for VNFCs {vnfcs} together "
                f"({total.vcpus} vCPU, {total.ram_mb} MB RAM, {total.disk_gb} GB disk)"
            )
            return
    for change in added:
        if not scope.take(change.resources, there):
            out.problems.append(
                f"placement[{i}]: "
                + no_room(change.resources, f"VNFC {change.vnfc} on {scope.scope} {there}, "
                          "with the other VNFCs of its VDUs")
            )  # fmt: skip
            continue
        _put(out, change.vnfc, scope.placement(there))


def _apart(  # noqa: PLR0917 - what the rule binds, then where the others are
    out: VduPlacements,
    i: int,
    scope: _Scope,
    added: Sequence[ResourceChange],
    used: set[str],
    vdus: Sequence[str],
) -> None:
    for change in added:
        free = [u for u in scope.roomiest() if u not in used]
        chosen = next((u for u in free if scope.take(change.resources, u)), None)
        if chosen is None:
            out.problems.append(
                f"placement[{i}]: no {scope.scope} apart from the other VNFCs of VDUs "
                f"{', '.join(vdus)} has room for VNFC {change.vnfc} "
                f"({change.resources.vcpus} vCPU, {change.resources.ram_mb} MB RAM)"
            )
            continue
        used.add(chosen)
        _put(out, change.vnfc, scope.placement(chosen))


def _put(out: VduPlacements, vnfc: str, placement: Placement) -> None:
    before = out.placements.get(vnfc, Placement())
    out.placements[vnfc] = Placement(
        zone=placement.zone or before.zone, host=placement.host or before.host
    )
