"""Onboarding: a descriptor's checks against the catalogue and the VIMs, then storing it.

A VNFD is onboarded when its schema and its own rules hold
(:mod:`mano_core.vnfd_checks`) and each VDU's flavour fits at least one
host of some VIM. An NSD is onboarded when its own rules hold
(:mod:`mano_core.nsd_checks`) and what it says of its members holds in
their VNFDs: each VNFD (version) is onboarded, each named instantiation
level, external connection point, VDU, scaling aspect and KPI exists, NS
scaling stays within the members' aspects, and each VIM it names is
configured. Every problem is reported at once with its place and line; a
refused descriptor leaves nothing stored.

A descriptor in use cannot be deleted: a VNFD version that a VNF instance
runs or that an onboarded NSD names, an NSD version an NS instance runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from bus.problems import Problem
from bus.yamldoc import Loc
from mano_core.catalogue import Catalogue, CatalogueEntry, Kind
from mano_core.descriptor import DescriptorError, Located, read_descriptor
from mano_core.errors import InvalidRequest, NotFound, VimError
from mano_core.inventory import Inventory
from mano_core.nfvo.inventory import NsInventory
from mano_core.nsd import Nsd
from mano_core.nsd_checks import nsd_problems
from mano_core.vim.base import VimDriver
from mano_core.vnfd import Vnfd
from mano_core.vnfd_checks import vnfd_problems

Found = list[tuple[Loc, str]]


class InUse(InvalidRequest):
    """The descriptor is in use and cannot be deleted."""


class Onboarding:
    """Onboards and deletes descriptors, checked against the catalogue and the VIMs."""

    def __init__(
        self,
        catalogue: Catalogue,
        inventory: Inventory,
        ns_inventory: NsInventory,
        vims: Mapping[str, VimDriver],
    ) -> None:
        self.catalogue = catalogue
        self._inventory = inventory
        self._ns_inventory = ns_inventory
        self._vims = vims

    async def check_vnfd(self, text: str, source: str) -> Located[Vnfd]:
        """Every problem of a VNFD file, raised as one :class:`DescriptorError`."""
        located = read_descriptor(text, source, Vnfd)
        vnfd = located.model
        _raise(located, [*vnfd_problems(vnfd), *await self._fits(vnfd), *await self._version(vnfd)])
        return located

    async def check_nsd(self, text: str, source: str) -> Located[Nsd]:
        """Every problem of an NSD file, raised as one :class:`DescriptorError`."""
        located = read_descriptor(text, source, Nsd)
        nsd = located.model
        _raise(located, [*nsd_problems(nsd), *await self._members(nsd), *await self._version(nsd)])
        return located

    async def vnfd(self, text: str, source: str) -> CatalogueEntry:
        """Check and store a VNFD; raises :class:`DescriptorError`."""
        located = await self.check_vnfd(text, source)
        return await self.catalogue.onboard(located.model, text)

    async def nsd(self, text: str, source: str) -> CatalogueEntry:
        """Check and store an NSD; raises :class:`DescriptorError`."""
        located = await self.check_nsd(text, source)
        return await self.catalogue.onboard_nsd(located.model, text)

    async def delete(self, kind: Kind, item_id: str, version: str | None = None) -> None:
        """Delete one version (or all) of a descriptor; raises :class:`InUse` or ``NotFound``."""
        entries = [
            e
            for e in await self.catalogue.entries(kind, item_id)
            if version is None or e.version == version
        ]
        if not entries:
            await self.catalogue.remove(kind, item_id, version)  # raises NotFound
        users = await (self._vnfd_users if kind == "vnfd" else self._nsd_users)(
            item_id, {e.version for e in entries}, all_versions=version is None
        )
        if users:
            which = f"version {version} of " if version is not None else ""
            raise InUse(
                f"{which}{kind.upper()} {item_id} is in use by {', '.join(users)}: "
                "delete those first"
            )
        await self.catalogue.remove(kind, item_id, version)

    # -- VNFDs --------------------------------------------------------------
    async def _fits(self, vnfd: Vnfd) -> Found:
        """Each VDU's flavour fits at least one host of some VIM (its whole capacity)."""
        hosts: dict[str, list[tuple[str, int, int, int]]] = {}
        found: Found = []
        for name, vim in self._vims.items():
            try:
                hosts[name] = [
                    (h.name, h.vcpus, h.ram_mb, h.disk_gb) for h in await vim.list_hosts()
                ]
            except VimError as exc:
                found.append(((), f"cannot list the hosts of VIM {name} to check flavours: {exc}"))
        if found:
            return found
        for i, vdu in enumerate(vnfd.vdus):
            f = vdu.flavour
            fits = any(
                vcpus >= f.vcpus and ram >= f.ram_mb and (disk == 0 or disk >= f.disk_gb)
                for vim_hosts in hosts.values()
                for _, vcpus, ram, disk in vim_hosts
            )
            if not fits:
                biggest = ", ".join(
                    f"{vim}: {max((h[1] for h in hs), default=0)} vCPU, "
                    f"{max((h[2] for h in hs), default=0)} MB"
                    for vim, hs in hosts.items()
                )
                found.append(
                    (
                        ("vdus", i, "flavour"),
                        f"{f.vcpus} vCPU, {f.ram_mb} MB RAM, {f.disk_gb} GB disk fits no host "
                        f"of any VIM (largest hosts: {biggest or 'no VIM configured'})",
                    )
                )
        return found

    async def _version(self, model: Vnfd | Nsd) -> Found:
        kind: Kind = "vnfd" if isinstance(model, Vnfd) else "nsd"
        try:
            existing = await self.catalogue.entry(kind, model.id, model.version)
        except NotFound:
            return []
        if existing.descriptor == model.model_dump_json(by_alias=True):
            return []
        return [
            (
                ("version",),
                f"{model.id} version {model.version} is already onboarded with other "
                "content: give this one a new version",
            )
        ]

    async def _vnfd_users(
        self, vnfd_id: str, versions: set[str], *, all_versions: bool
    ) -> list[str]:
        users = [
            f"VNF instance {v.name} ({v.id})"
            for v in await self._inventory.list()
            if v.vnfd_id == vnfd_id and (all_versions or v.vnfd_version in versions)
        ]
        for entry in await self.catalogue.entries("nsd"):
            nsd = await self.catalogue.get_nsd(entry.id, entry.version)
            for member in nsd.vnfs:
                if member.vnfd != vnfd_id:
                    continue
                pinned = member.vnfd_version
                if all_versions or (pinned is not None and pinned in versions):
                    users.append(f"NSD {entry.ref} (member {member.id})")
        return users

    async def _nsd_users(self, nsd_id: str, versions: set[str], *, all_versions: bool) -> list[str]:
        return [
            f"NS instance {ns.name} ({ns.id})"
            for ns in await self._ns_inventory.list()
            if ns.nsd_id == nsd_id and (all_versions or ns.nsd_version in versions)
        ]

    # -- NSDs ---------------------------------------------------------------
    async def _members(self, nsd: Nsd) -> Found:
        found: Found = []
        vnfds: dict[str, Vnfd] = {}
        for i, member in enumerate(nsd.vnfs):
            try:
                vnfd = await self.catalogue.get(member.vnfd, member.vnfd_version)
            except NotFound as exc:
                place = "vnfd_version" if member.vnfd_version is not None else "vnfd"
                found.append((("vnfs", i, place), str(exc)))
                continue
            vnfds[member.id] = vnfd
            if member.instantiation_level is not None:
                try:
                    vnfd.instantiation_level(member.instantiation_level)
                except KeyError:
                    found.append(
                        (
                            ("vnfs", i, "instantiation_level"),
                            f"VNFD {vnfd.id} has no instantiation level "
                            f"{member.instantiation_level!r}",
                        )
                    )
        found += _links(nsd, vnfds)
        found += _rules(nsd, vnfds, list(self._vims))
        found += _scaling(nsd, vnfds)
        found += _kpis(nsd, vnfds)
        return found


def _links(nsd: Nsd, vnfds: Mapping[str, Vnfd]) -> Found:
    found: Found = []
    for i, link in enumerate(nsd.virtual_links):
        for j, end in enumerate(link.connects):
            vnfd = vnfds.get(end.vnf)
            if vnfd is None:
                continue
            points = {c.id for c in vnfd.external_connection_points}
            if end.connection_point not in points:
                found.append(
                    (
                        ("virtual_links", i, "connects", j, "connection_point"),
                        f"VNFD {vnfd.id} has no external connection point "
                        f"{end.connection_point!r} (has: {', '.join(sorted(points)) or 'none'})",
                    )
                )
    return found


def _rules(nsd: Nsd, vnfds: Mapping[str, Vnfd], vims: list[str]) -> Found:
    found: Found = []
    for i, rule in enumerate(nsd.placement):
        for j, vim in enumerate(rule.vims):
            if vim not in vims:
                found.append(
                    (("placement", i, "vims", j), f"unknown VIM {vim!r} (VIMs: {', '.join(vims)})")
                )
        for j, vdu in enumerate(rule.vdus):
            for member in rule.members:
                vnfd = vnfds.get(member)
                if vnfd is not None and vdu not in {v.id for v in vnfd.vdus}:
                    found.append(
                        (
                            ("placement", i, "vdus", j),
                            f"VNFD {vnfd.id} of {member} has no VDU {vdu!r}",
                        )
                    )
        if rule.type == "anti_affinity" and rule.scope == "vim" and not rule.vims:
            known = {m.id: m.count for m in nsd.vnfs}
            instances = sum(known.get(m, 0) for m in rule.members)
            if instances > len(vims):
                found.append(
                    (
                        ("placement", i),
                        f"{instances} VNF instances cannot each be on a different VIM: "
                        f"{len(vims)} VIM(s) configured",
                    )
                )
    return found


def _scaling(nsd: Nsd, vnfds: Mapping[str, Vnfd]) -> Found:
    found: Found = []
    for i, aspect in enumerate(nsd.scaling_aspects):
        for j, step in enumerate(aspect.members):
            vnfd = vnfds.get(step.vnf)
            if vnfd is None:
                continue
            here: Loc = ("scaling_aspects", i, "members", j)
            try:
                own = vnfd.aspect(step.aspect)
            except KeyError:
                found.append(
                    ((*here, "aspect"), f"VNFD {vnfd.id} has no scaling aspect {step.aspect!r}")
                )
                continue
            member = nsd.member(step.vnf)
            start = vnfd.initial_scale_levels(member.instantiation_level).get(own.id, 0)
            top = start + aspect.max_scale_level * step.steps
            if top > own.max_scale_level:
                found.append(
                    (
                        (*here, "steps"),
                        f"NS scale level {aspect.max_scale_level} takes {step.vnf}'s aspect "
                        f"{own.id} to level {top}, beyond its max_scale_level "
                        f"{own.max_scale_level}",
                    )
                )
    return found


def _kpis(nsd: Nsd, vnfds: Mapping[str, Vnfd]) -> Found:
    found: Found = []
    for i, kpi in enumerate(nsd.monitoring_parameters):
        members = kpi.members or [m.id for m in nsd.vnfs]
        having = [
            m
            for m in members
            if m in vnfds and kpi.kpi in {p.name for p in vnfds[m].monitoring_parameters}
        ]
        missing = [m for m in kpi.members if m in vnfds and m not in having]
        if missing:
            found.append(
                (
                    ("monitoring_parameters", i, "kpi"),
                    f"{', '.join(missing)}: the VNFD has no monitoring parameter {kpi.kpi!r}",
                )
            )
        elif not having and all(m in vnfds for m in members):
            found.append(
                (("monitoring_parameters", i, "kpi"), f"no member's VNFD measures {kpi.kpi!r}")
            )
    return found


def _raise(located: Located[Vnfd] | Located[Nsd], found: Found) -> None:
    problems: list[Problem] = located.problems(found)
    if problems:
        raise DescriptorError(located.source, problems)
