"""The consistency rules of a VNFD: what holds across its fields.

Each rule broken is one ``(place, problem)`` pair, so a descriptor with
several mistakes gets them all in one report: every reference resolves
(VDUs, aspects, virtual links, connection points, levels), ids are unique,
``min_instances <= max_instances``, instantiation levels stay within the
VDUs' bounds, every scale level an aspect can reach from an instantiation
level stays within them too, and a ladder names each step once.
"""

from __future__ import annotations

import ipaddress

from bus.yamldoc import Loc
from mano_core.descriptor import Located, duplicates, parse_checked
from mano_core.vnfd import InstantiationLevel, Vnfd

Found = list[tuple[Loc, str]]


def vnfd_problems(vnfd: Vnfd) -> Found:
    """Every consistency rule ``vnfd`` breaks (empty: it is consistent)."""
    return [
        *_ids(vnfd),
        *_vdus(vnfd),
        *_links(vnfd),
        *_levels(vnfd),
        *_aspects(vnfd),
        *_healing(vnfd),
        *_kpis(vnfd),
    ]


def parse_located_vnfd(text: str, source: str) -> Located[Vnfd]:
    """Parse and check a VNFD, keeping where each place is (for later checks)."""
    return parse_checked(text, source, Vnfd, vnfd_problems)


def _ids(vnfd: Vnfd) -> Found:
    cps = [
        (i, j, cp.id)
        for i, vdu in enumerate(vnfd.vdus)
        for j, cp in enumerate(vdu.connection_points)
    ]
    found = [
        *duplicates([v.id for v in vnfd.vdus], lambda i: ("vdus", i, "id"), "VDU"),
        *duplicates(
            [a.id for a in vnfd.scaling_aspects],
            lambda i: ("scaling_aspects", i, "id"),
            "scaling aspect",
        ),
        *duplicates(
            [vl.id for vl in vnfd.virtual_links],
            lambda i: ("virtual_links", i, "id"),
            "virtual link",
        ),
        *duplicates(
            [c.id for c in vnfd.external_connection_points],
            lambda i: ("external_connection_points", i, "id"),
            "external connection point",
        ),
        *duplicates(
            [lvl.id for lvl in vnfd.instantiation_levels],
            lambda i: ("instantiation_levels", i, "id"),
            "instantiation level",
        ),
        *duplicates(
            [p.name for p in vnfd.monitoring_parameters],
            lambda i: ("monitoring_parameters", i, "name"),
            "monitoring parameter",
        ),
    ]
    found += duplicates(
        [cp for _, _, cp in cps],
        lambda k: ("vdus", cps[k][0], "connection_points", cps[k][1], "id"),
        "connection point",
    )
    return found


def _vdus(vnfd: Vnfd) -> Found:
    return [
        (
            ("vdus", i, "min_instances"),
            f"min_instances ({vdu.min_instances}) exceeds max_instances ({vdu.max_instances})",
        )
        for i, vdu in enumerate(vnfd.vdus)
        if vdu.min_instances > vdu.max_instances
    ]


def _links(vnfd: Vnfd) -> Found:
    found: Found = []
    links = {vl.id for vl in vnfd.virtual_links}
    for i, vl in enumerate(vnfd.virtual_links):
        if vl.cidr is not None:
            try:
                network = ipaddress.ip_network(vl.cidr)
            except ValueError as exc:
                found.append((("virtual_links", i, "cidr"), f"not a subnet: {exc}"))
                continue
            wanted = 4 if vl.protocol == "ipv4" else 6
            if network.version != wanted:
                found.append(
                    (("virtual_links", i, "cidr"), f"{vl.cidr} is not an {vl.protocol} subnet")
                )
    cps: set[str] = set()
    for i, vdu in enumerate(vnfd.vdus):
        for j, cp in enumerate(vdu.connection_points):
            cps.add(cp.id)
            if cp.virtual_link is not None and cp.virtual_link not in links:
                found.append(
                    (
                        ("vdus", i, "connection_points", j, "virtual_link"),
                        f"unknown virtual link {cp.virtual_link!r}" + _known(links),
                    )
                )
    for i, ext in enumerate(vnfd.external_connection_points):
        if ext.connection_point not in cps:
            found.append(
                (
                    ("external_connection_points", i, "connection_point"),
                    f"unknown VDU connection point {ext.connection_point!r}" + _known(cps),
                )
            )
    return found


def _levels(vnfd: Vnfd) -> Found:
    found: Found = []
    vdus = {v.id: v for v in vnfd.vdus}
    aspects = {a.id: a for a in vnfd.scaling_aspects}
    levels = {lvl.id for lvl in vnfd.instantiation_levels}
    default = vnfd.default_instantiation_level
    if default is not None and default not in levels:
        found.append(
            (
                ("default_instantiation_level",),
                f"unknown instantiation level {default!r}" + _known(levels),
            )
        )
    for i, level in enumerate(vnfd.instantiation_levels):
        here: Loc = ("instantiation_levels", i)
        for vdu_id, count in level.vdu_instances.items():
            vdu = vdus.get(vdu_id)
            if vdu is None:
                found.append(((*here, "vdu_instances", vdu_id), f"unknown VDU {vdu_id!r}"))
            elif not vdu.min_instances <= count <= vdu.max_instances:
                found.append(
                    (
                        (*here, "vdu_instances", vdu_id),
                        f"{count} VNFCs of {vdu_id} is outside its "
                        f"{vdu.min_instances}..{vdu.max_instances} instances",
                    )
                )
        for aspect_id, scale_level in level.scale_levels.items():
            aspect = aspects.get(aspect_id)
            if aspect is None:
                found.append(
                    ((*here, "scale_levels", aspect_id), f"unknown scaling aspect {aspect_id!r}")
                )
            elif not 0 <= scale_level <= aspect.max_scale_level:
                found.append(
                    (
                        (*here, "scale_levels", aspect_id),
                        f"scale level {scale_level} is outside 0..{aspect.max_scale_level}",
                    )
                )
    return found


def _aspects(vnfd: Vnfd) -> Found:
    """Deltas name known VDUs, and every reachable scale level keeps within the bounds."""
    found: Found = []
    vdus = {v.id: v for v in vnfd.vdus}
    starts = vnfd.instantiation_levels or [InstantiationLevel(id="default")]
    for i, aspect in enumerate(vnfd.scaling_aspects):
        for vdu_id, delta in aspect.deltas.items():
            here: Loc = ("scaling_aspects", i, "deltas", vdu_id)
            vdu = vdus.get(vdu_id)
            if vdu is None:
                found.append((here, f"unknown VDU {vdu_id!r}" + _known(set(vdus))))
                continue
            if delta < 1:
                found.append((here, f"a step must add at least 1 VNFC, got {delta}"))
                continue
            for start in starts:
                count = start.vdu_instances.get(vdu_id, vdu.min_instances)
                level = start.scale_levels.get(aspect.id, 0)
                if not 0 <= level <= aspect.max_scale_level:
                    continue  # reported at the instantiation level
                highest = count + (aspect.max_scale_level - level) * delta
                lowest = count - level * delta
                named = (
                    ""
                    if start.id == "default" and not vnfd.instantiation_levels
                    else (f" from instantiation level {start.id!r}")
                )
                if highest > vdu.max_instances:
                    found.append(
                        (
                            here,
                            f"scale level {aspect.max_scale_level}{named} gives {highest} "
                            f"VNFCs of {vdu_id}, above its max_instances {vdu.max_instances}",
                        )
                    )
                if lowest < vdu.min_instances:
                    found.append(
                        (
                            here,
                            f"scale level 0{named} gives {lowest} VNFCs of {vdu_id}, "
                            f"below its min_instances {vdu.min_instances}",
                        )
                    )
    return found


def _healing(vnfd: Vnfd) -> Found:
    found: Found = []
    vdus = {v.id for v in vnfd.vdus}
    for vdu_id, steps in vnfd.healing.items():
        if vdu_id not in vdus:
            found.append((("healing", vdu_id), f"unknown VDU {vdu_id!r}" + _known(vdus)))
        if not steps:
            found.append((("healing", vdu_id), "a recovery ladder needs at least one step"))
        seen: set[str] = set()
        for j, step in enumerate(steps):
            if step.level in seen:
                found.append(
                    (("healing", vdu_id, j, "level"), f"step {step.level} is already in the ladder")
                )
            seen.add(step.level)
            if step.timeout <= 0:
                found.append((("healing", vdu_id, j, "timeout"), "a timeout must be longer than 0"))
    return found


def _kpis(vnfd: Vnfd) -> Found:
    found: Found = []
    vdus = {v.id: v for v in vnfd.vdus}
    exporting = {v.id for v in vnfd.vdus if v.exporter is not None}
    for i, kpi in enumerate(vnfd.monitoring_parameters):
        if kpi.vdu is not None and kpi.vdu not in vdus:
            unknown = f"unknown VDU {kpi.vdu!r}" + _known(set(vdus))
            found.append((("monitoring_parameters", i, "vdu"), unknown))
        elif kpi.source == "exporter":
            wanted = exporting if kpi.vdu is None else exporting & {kpi.vdu}
            if not wanted:
                which = f"VDU {kpi.vdu} has no" if kpi.vdu else "no VDU has an"
                found.append(
                    (
                        ("monitoring_parameters", i, "source"),
                        f"{which} exporter to read {kpi.name} from",
                    )
                )
    for j, phase in enumerate(vnfd.load_profile.phases if vnfd.load_profile else []):
        if phase.duration <= 0:
            found.append((("load_profile", "phases", j, "for"), "a phase must last longer than 0"))
    return found


def _known(ids: set[str]) -> str:
    return f" (known: {', '.join(sorted(ids))})" if ids else " (none declared)"
