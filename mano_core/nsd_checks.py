"""The consistency rules of an NSD on its own (the member VNFDs are checked at onboarding).

Ids are unique; every member, dependency, link end, rule member and aspect
member names a member; dependencies have no cycle; a placement rule's scope
fits what it constrains (members on VIMs, or VDUs' VNFCs on zones or hosts);
one pair of members is not both kept together and kept apart.
"""

from __future__ import annotations

from bus.yamldoc import Loc
from mano_core.descriptor import Located, duplicates, parse_checked
from mano_core.nsd import Nsd

Found = list[tuple[Loc, str]]


def nsd_problems(nsd: Nsd) -> Found:
    """Every rule of the NSD itself that ``nsd`` breaks."""
    return [*_ids(nsd), *_members(nsd), *_links(nsd), *_rules(nsd), *_aspects(nsd), *_kpis(nsd)]


def parse_located_nsd(text: str, source: str) -> Located[Nsd]:
    return parse_checked(text, source, Nsd, nsd_problems)


def _ids(nsd: Nsd) -> Found:
    return [
        *duplicates([m.id for m in nsd.vnfs], lambda i: ("vnfs", i, "id"), "member"),
        *duplicates(
            [vl.id for vl in nsd.virtual_links],
            lambda i: ("virtual_links", i, "id"),
            "virtual link",
        ),
        *duplicates(
            [a.id for a in nsd.scaling_aspects],
            lambda i: ("scaling_aspects", i, "id"),
            "scaling aspect",
        ),
        *duplicates(
            [p.name for p in nsd.monitoring_parameters],
            lambda i: ("monitoring_parameters", i, "name"),
            "monitoring parameter",
        ),
    ]


def _unknown(member: str, known: set[str]) -> str:
    return f"unknown member {member!r} (members: {', '.join(sorted(known))})"


def _members(nsd: Nsd) -> Found:
    found: Found = []
    known = {m.id for m in nsd.vnfs}
    for i, member in enumerate(nsd.vnfs):
        for j, dep in enumerate(member.depends_on):
            if dep not in known:
                found.append((("vnfs", i, "depends_on", j), _unknown(dep, known)))
            elif dep == member.id:
                found.append((("vnfs", i, "depends_on", j), "a member cannot depend on itself"))
    cycle = _cycle(nsd)
    if cycle:
        first = next(i for i, m in enumerate(nsd.vnfs) if m.id == cycle[0])
        found.append(
            (("vnfs", first, "depends_on"), "dependency cycle: " + " -> ".join([*cycle, cycle[0]]))
        )
    return found


def _cycle(nsd: Nsd) -> list[str]:
    """One dependency cycle (of two members or more), or nothing."""
    deps = {m.id: [d for d in m.depends_on if d != m.id] for m in nsd.vnfs}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for dep in deps.get(node, []):
            if state.get(dep) == 1:
                return path[path.index(dep) :]
            if dep in deps and dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for member in deps:
        if member not in state:
            found = visit(member)
            if found:
                return found
    return []


def _links(nsd: Nsd) -> Found:
    known = {m.id for m in nsd.vnfs}
    return [
        (("virtual_links", i, "connects", j, "vnf"), _unknown(end.vnf, known))
        for i, link in enumerate(nsd.virtual_links)
        for j, end in enumerate(link.connects)
        if end.vnf not in known
    ]


def _rules(nsd: Nsd) -> Found:
    found: Found = []
    known = {m.id for m in nsd.vnfs}
    together: dict[frozenset[str], int] = {}
    apart: dict[frozenset[str], int] = {}
    for i, rule in enumerate(nsd.placement):
        here: Loc = ("placement", i)
        for j, member in enumerate(rule.members):
            if member not in known:
                found.append(((*here, "members", j), _unknown(member, known)))
        if rule.scope == "vim" and rule.vdus:
            found.append(
                ((*here, "vdus"), "VDU rules need scope zone or host: a VNF is on one VIM")
            )
        if rule.scope != "vim" and not rule.vdus:
            found.append(((*here, "scope"), f"scope {rule.scope} places VNFCs: name their vdus"))
        if rule.vims and rule.scope != "vim":
            found.append(((*here, "vims"), "vims go with scope vim"))
        if rule.scope == "vim" and not rule.vims:
            members = set(rule.members)
            pairs = together if rule.type == "affinity" else apart
            for a in members:
                for b in members - {a}:
                    pairs.setdefault(frozenset((a, b)), i)
    for pair, i in apart.items():
        if pair in together:
            a, b = sorted(pair)
            found.append(
                (
                    ("placement", i),
                    f"members {a} and {b} are kept on one VIM by placement[{together[pair]}] "
                    "and on different VIMs here",
                )
            )
    return found


def _aspects(nsd: Nsd) -> Found:
    found: Found = []
    known = {m.id for m in nsd.vnfs}
    for i, aspect in enumerate(nsd.scaling_aspects):
        seen: set[str] = set()
        for j, step in enumerate(aspect.members):
            if step.vnf not in known:
                found.append(
                    (("scaling_aspects", i, "members", j, "vnf"), _unknown(step.vnf, known))
                )
            elif step.vnf in seen:
                found.append(
                    (
                        ("scaling_aspects", i, "members", j, "vnf"),
                        f"member {step.vnf} is listed twice",
                    )
                )
            seen.add(step.vnf)
    return found


def _kpis(nsd: Nsd) -> Found:
    known = {m.id for m in nsd.vnfs}
    return [
        (("monitoring_parameters", i, "members", j), _unknown(member, known))
        for i, kpi in enumerate(nsd.monitoring_parameters)
        for j, member in enumerate(kpi.members)
        if member not in known
    ]
