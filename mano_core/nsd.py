"""NS descriptors (NSD): a network service made of member VNFs, and how the NFVO places them.

An NSD names its member VNFs (a VNFD each, with a count and the members
they depend on), the virtual links between the members' external connection
points, placement rules (which VIMs members may use, members together on
one VIM or apart; a VDU's VNFCs together on one host or zone, or apart), NS
scaling aspects (each step scales member VNFs by their own aspects) and
NS-level KPIs with objectives. ``docs/nsd.md`` documents every field.

The rules within the NSD are in :mod:`mano_core.nsd_checks`; the rules that
need the member VNFDs (aspects, VDUs and connection points that must exist)
and the VIMs are checked at onboarding (:mod:`mano_core.onboarding`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr

from bus.conditions import Aggregate
from mano_core.descriptor import ID_PATTERN, Strict, read_text
from mano_core.vnfd import Objective

Id = Annotated[str, Field(pattern=ID_PATTERN)]


class Member(Strict):
    """A member VNF of the service: ``count`` VNF instances of one VNFD."""

    id: Id
    """The member's id within the NSD (the NS's VNF instances are named after it)."""
    vnfd: Id
    vnfd_version: StrictStr | None = None
    """The VNFD version; None: the one onboarded last when the NS is instantiated."""
    count: StrictInt = Field(default=1, ge=1)
    instantiation_level: Id | None = None
    """The member VNFD's instantiation level; None: its default."""
    depends_on: list[Id] = Field(default_factory=list)
    """Members instantiated (all their instances) before this one."""


class LinkEnd(Strict):
    """A member's external connection point on an NS virtual link."""

    vnf: Id
    connection_point: Id


class NsVirtualLink(Strict):
    """A network between members of the service."""

    id: Id
    description: StrictStr = ""
    protocol: Literal["ipv4", "ipv6"] = "ipv4"
    cidr: StrictStr | None = None
    connects: list[LinkEnd] = Field(min_length=2)


RuleType = Literal["affinity", "anti_affinity"]
Scope = Literal["vim", "zone", "host"]


class PlacementRule(Strict):
    """Where members (or the VNFCs of their VDUs) go relative to each other or to VIMs.

    - ``scope: vim`` without ``vims``: every instance of the members on one
      VIM (affinity) or each on a different VIM (anti-affinity);
    - ``scope: vim`` with ``vims``: the members only on those VIMs
      (affinity) or never on them (anti-affinity);
    - ``scope: zone`` or ``host`` with ``vdus``: within each instance of each
      member, the VNFCs of those VDUs on one zone/host (affinity) or each on
      a different one (anti-affinity).
    """

    type: RuleType
    scope: Scope = "vim"
    members: list[Id] = Field(min_length=1)
    vims: list[StrictStr] = Field(default_factory=list)
    vdus: list[Id] = Field(default_factory=list)


class MemberScaling(Strict):
    """What one NS scaling step does to one member: ``steps`` of its own aspect."""

    vnf: Id
    aspect: Id
    steps: StrictInt = Field(default=1, ge=1)


class NsScalingAspect(Strict):
    """A named unit of NS scaling; each step scales every listed member by its aspect."""

    id: Id
    name: StrictStr = ""
    description: StrictStr = ""
    max_scale_level: StrictInt = Field(gt=0)
    members: list[MemberScaling] = Field(min_length=1)


class NsMonitoringParameter(Strict):
    """An end-to-end KPI of the service: one VNF KPI combined across members."""

    name: StrictStr = Field(min_length=1)
    kpi: StrictStr = Field(min_length=1)
    """The member VNFs' KPI (a monitoring parameter of their VNFDs)."""
    members: list[Id] = Field(default_factory=list)
    """The members it combines; empty: every member whose VNFD has the KPI."""
    aggregate: Aggregate = "max"
    """How the members' VNF values combine into the service's value."""
    unit: StrictStr = Field(min_length=1)
    objective: Objective | None = None


class Nsd(Strict):
    """An NS descriptor (``apiVersion: assure/v1``, ``kind: Nsd``)."""

    api_version: Literal["assure/v1"] = Field(alias="apiVersion")
    kind: Literal["Nsd"]
    id: Id
    name: StrictStr = ""
    description: StrictStr = ""
    designer: StrictStr = ""
    version: StrictStr = Field(default="1.0", min_length=1)
    vnfs: list[Member] = Field(min_length=1)
    virtual_links: list[NsVirtualLink] = Field(default_factory=list)
    placement: list[PlacementRule] = Field(default_factory=list)
    scaling_aspects: list[NsScalingAspect] = Field(default_factory=list)
    monitoring_parameters: list[NsMonitoringParameter] = Field(default_factory=list)

    def member(self, member_id: str) -> Member:
        for member in self.vnfs:
            if member.id == member_id:
                return member
        raise KeyError(member_id)

    def aspect(self, aspect_id: str) -> NsScalingAspect:
        for aspect in self.scaling_aspects:
            if aspect.id == aspect_id:
                return aspect
        raise KeyError(aspect_id)

    def start_order(self) -> list[list[Member]]:
        """Members grouped by dependency: each group needs only earlier groups.

        The NSD's checks guarantee there is no cycle.
        """
        done: set[str] = set()
        left = list(self.vnfs)
        groups: list[list[Member]] = []
        while left:
            ready = [m for m in left if set(m.depends_on) <= done]
            if not ready:  # a cycle: parse_nsd refuses it; never loop forever
                raise ValueError(f"members {[m.id for m in left]} depend on each other")
            groups.append(ready)
            done |= {m.id for m in ready}
            left = [m for m in left if m.id not in done]
        return groups

    def rules_for(self, member_id: str) -> list[PlacementRule]:
        return [r for r in self.placement if member_id in r.members]


def parse_nsd(text: str, source: str = "<string>") -> Nsd:
    """Parse and check an NSD from YAML text; raises ``DescriptorError`` with every problem."""
    from mano_core.nsd_checks import parse_located_nsd  # noqa: PLC0415 - checks import models

    return parse_located_nsd(text, source).model


def load_nsd(path: str | Path) -> Nsd:
    """Read an NSD file; raises ``DescriptorError`` naming the file."""
    return parse_nsd(read_text(path), str(path))
