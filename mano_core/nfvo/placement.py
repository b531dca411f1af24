"""Which VIM each VNF instance of an NS goes to: the NSD's VIM rules, then capacity.

The NSD's placement rules of scope ``vim`` bind members (see ``docs/nsd.md``):

- ``affinity`` without ``vims``: every instance of the members on one VIM;
- ``anti_affinity`` without ``vims``: every instance of the members on a VIM
  of its own;
- ``affinity`` with ``vims``: the members only on those VIMs;
- ``anti_affinity`` with ``vims``: the members never on them.

Beyond the rules a VNF instance goes to the first VIM (in the registry's
order) whose quotas and hosts can take all of its initial VNFCs, counting
what the instances placed before it take (:class:`~mano_core.capacity.Room`).
When a choice made early leaves a later instance nowhere to go, the search
goes back and tries the next VIM for the earlier one, so a placement is
found whenever one exists. Rules of scope ``zone`` and ``host`` place VNFCs
within a VIM; the NFVO's granter applies them (:mod:`mano_core.nfvo.vdus`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mano_core.capacity import Room
from mano_core.errors import GrantRefused
from mano_core.grants import Resources
from mano_core.nsd import Nsd

MAX_STEPS = 10_000
"""Tries the search makes before it gives up (a guard; real NSDs need a handful)."""


@dataclass(frozen=True)
class Unit:
    """One VNF instance to place: instance ``index`` of member ``member``, and its servers."""

    member: str
    index: int
    servers: tuple[Resources, ...]

    @property
    def key(self) -> str:
        return f"{self.member}-{self.index}"

    @property
    def id(self) -> tuple[str, int]:
        return self.member, self.index


@dataclass(frozen=True)
class _Rules:
    allowed: dict[str, list[str]]
    """Per member, the VIMs it may use, in the registry's order."""
    together: list[tuple[int, set[str]]]
    """(rule index, members) kept on one VIM."""
    apart: list[tuple[int, set[str]]]
    """(rule index, members) whose instances each need a VIM of their own."""


def place(nsd: Nsd, units: Sequence[Unit], rooms: Mapping[str, Room]) -> dict[str, str]:
    """The VIM of each unit (by :attr:`Unit.key`); raises :class:`GrantRefused` saying why not.

    ``rooms``: each VIM's room, in the registry's order; they are not changed.
    """
    rules = _rules(nsd, list(rooms))
    for member, vims in rules.allowed.items():
        if not vims:
            raise GrantRefused([f"member {member}: its placement rules allow no configured VIM"])
    search = _Search(units, rules)
    chosen = search.run(0, {name: room.copy() for name, room in rooms.items()}, {})
    if chosen is None:
        raise GrantRefused(search.reasons())
    return chosen


def _rules(nsd: Nsd, vims: list[str]) -> _Rules:
    allowed = {m.id: list(vims) for m in nsd.vnfs}
    together: list[tuple[int, set[str]]] = []
    apart: list[tuple[int, set[str]]] = []
    for i, rule in enumerate(nsd.placement):
        if rule.scope != "vim":
            continue
        for member in rule.members:
            if rule.vims and rule.type == "affinity":
                allowed[member] = [v for v in allowed[member] if v in rule.vims]
            elif rule.vims:
                allowed[member] = [v for v in allowed[member] if v not in rule.vims]
        if not rule.vims:
            (together if rule.type == "affinity" else apart).append((i, set(rule.members)))
    return _Rules(allowed, together, apart)


class _Search:
    """Depth-first search over the units' VIMs, keeping why the deepest unit found none."""

    def __init__(self, units: Sequence[Unit], rules: _Rules) -> None:
        self._units = units
        self._rules = rules
        self._steps = 0
        self._deepest = -1
        self._why: dict[str, str] = {}

    def run(self, i: int, rooms: dict[str, Room], chosen: dict[str, str]) -> dict[str, str] | None:
        if i == len(self._units):
            return dict(chosen)
        unit = self._units[i]
        why: dict[str, str] = {}
        for vim in self._rules.allowed[unit.member]:
            self._steps += 1
            if self._steps > MAX_STEPS:
                break
            conflict = self._conflict(unit, vim, chosen)
            if conflict:
                why[vim] = conflict
                continue
            room = rooms[vim].copy()
            problems = room.take_servers(list(unit.servers))
            if problems:
                why[vim] = "; ".join(problems)
                continue
            found = self.run(i + 1, {**rooms, vim: room}, {**chosen, unit.key: vim})
            if found is not None:
                return found
            why.setdefault(vim, "later members found no VIM then")
        if i >= self._deepest:
            self._deepest = i
            self._why = {"unit": unit.key, **why}
        return None

    def _conflict(self, unit: Unit, vim: str, chosen: dict[str, str]) -> str:
        units = {u.key: u for u in self._units}
        for i, members in self._rules.together:
            if unit.member not in members:
                continue
            for key, other in chosen.items():
                if units[key].member in members and other != vim:
                    return f"placement[{i}] keeps it with {key}, on VIM {other}"
        for i, members in self._rules.apart:
            if unit.member not in members:
                continue
            for key, other in chosen.items():
                if units[key].member in members and other == vim:
                    return f"placement[{i}] keeps it apart from {key}, already there"
        return ""

    def reasons(self) -> list[str]:
        if self._steps > MAX_STEPS:
            return [f"no placement found within {MAX_STEPS} tries"]
        unit = self._why.pop("unit", "?")
        if not self._why:
            return [f"VNF {unit}: no VIM is allowed for it"]
        tried = "; ".join(f"VIM {v}: {w}" for v, w in self._why.items())
        return [f"VNF {unit} fits no VIM: {tried}"]
