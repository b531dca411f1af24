"""Which VNFs a violation concerns, and what a policy's action acts on in each.

A violation of a VNF or one of its VNFCs concerns that VNF; one of a host
concerns every VNF with a VNFC on the host; one of an NS (a condition of
scope ``ns``) concerns the NS itself, on its own loop record
(:func:`~policy.state.ns_loop_id`). A policy applies to a VNF when
every selector of its ``target`` matches (VNFD and the version the VNF
runs, NS, VNF instance labels, hosts); to an NS when its ``nsd``, ``ns``
(the NS's id or name) and ``vnf_labels`` (the NS's labels) match.
What the action acts on: scaling, a change of flavour and operate act
on the VNF, heal on the VNFC,
migrate on the VNFC or on each of the VNF's VNFCs on the host, notify on
the violation's own target; NS scaling (and anything else a policy of
scope ``ns`` does) acts on the NS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bus.contracts import Target, TargetKind, Violation
from mano_core.errors import NotFound
from mano_core.models import VnfcInstance, VnfInstance
from mano_core.nfvo.records import NsInstance
from mano_core.vnfd import Vnfd
from policy.schema import KpiPolicy
from policy.schema_actions import VNF_ACTIONS
from policy.state import ns_loop_id


@dataclass
class Route:
    """The VNFs (or the NS) a violation concerns, with the action targets of each."""

    targets: dict[str, list[Target]] = field(default_factory=dict)
    """By loop record: a VNF instance id, or an NS's :func:`~policy.state.ns_loop_id`."""
    why_not: str = ""
    """Why it concerns no VNF (when ``targets`` is empty)."""


def vnf_target(vnf: VnfInstance) -> Target:
    return Target(TargetKind.VNF, vnf.id, vnf=vnf.id, vnfd=vnf.vnfd_id)


def vnfc_target(vnf: VnfInstance, vnfc: VnfcInstance) -> Target:
    return Target(TargetKind.VNFC, vnfc.id, vnf=vnf.id, vnfd=vnf.vnfd_id, host=vnfc.host)


class VnfLookup(Protocol):
    """What routing asks the inventory (:class:`~mano_core.inventory.Inventory`)."""

    async def find(self, vnf_id: str) -> VnfInstance | None: ...

    async def find_vnfc(self, vnfc_id: str) -> tuple[VnfInstance, VnfcInstance] | None: ...

    async def vnfcs_on_host(self, host: str) -> list[tuple[VnfInstance, VnfcInstance]]: ...


class VnfdLookup(Protocol):
    """What routing asks the catalogue (:class:`~mano_core.catalogue.Catalogue`)."""

    async def get(self, vnfd_id: str, version: str | None = None) -> Vnfd: ...


class NsLookup(Protocol):
    """What routing asks the NS inventory (:class:`~mano_core.nfvo.inventory.NsInventory`)."""

    async def find(self, ns_id: str) -> NsInstance | None: ...


class TargetRouter:
    """Resolves violations to VNFs (and NSs) through the inventories and the catalogue.

    Without ``ns_inventory`` a violation of an NS concerns nothing.
    """

    def __init__(
        self, inventory: VnfLookup, catalogue: VnfdLookup, ns_inventory: NsLookup | None = None
    ) -> None:
        self._inventory = inventory
        self._catalogue = catalogue
        self._ns_inventory = ns_inventory

    async def route(self, policy: KpiPolicy, violation: Violation) -> Route:
        target = violation.target
        if target.kind is TargetKind.HOST:
            return await self._host(policy, target)
        if target.kind is TargetKind.NS:
            return await self._ns(policy, target)
        found = await self._vnf_and_vnfc(target)
        if found is None:
            return Route(why_not=f"nothing to do: {target.key()} is not in the inventory")
        vnf, vnfc = found
        why = await self.excluded(policy, vnf, vnfc.host if vnfc else None)
        if why:
            return Route(why_not=why)
        return Route({vnf.id: [self._action_target(policy, violation, vnf, vnfc)]})

    async def _host(self, policy: KpiPolicy, host: Target) -> Route:
        route = Route()
        by_vnf: dict[str, tuple[VnfInstance, list[VnfcInstance]]] = {}
        for vnf, vnfc in await self._inventory.vnfcs_on_host(host.id):
            by_vnf.setdefault(vnf.id, (vnf, []))[1].append(vnfc)
        reasons: list[str] = []
        for vnf, vnfcs in by_vnf.values():
            why = await self.excluded(policy, vnf, host.id)
            if why:
                reasons.append(why)
                continue
            action = policy.spec.chain()[0].action.type
            if action in VNF_ACTIONS:
                route.targets[vnf.id] = [vnf_target(vnf)]
            elif action == "notify":
                route.targets[vnf.id] = [host]
            else:
                route.targets[vnf.id] = [vnfc_target(vnf, c) for c in vnfcs]
        if not route.targets:
            which = f"of VNFD {policy.vnfd} " if policy.vnfd else ""
            route.why_not = f"nothing to do: no VNFC {which}on {host.id}" + (
                f" ({reasons[0]})" if reasons else ""
            )
        return route

    async def _ns(self, policy: KpiPolicy, target: Target) -> Route:
        ns = None if self._ns_inventory is None else await self._ns_inventory.find(target.id)
        if ns is None:
            return Route(why_not=f"nothing to do: NS {target.id} is not in the NS inventory")
        why = ns_excluded(policy, ns)
        if why:
            return Route(why_not=why)
        return Route({ns_loop_id(ns.id): [Target(TargetKind.NS, ns.id)]})

    def _action_target(
        self, policy: KpiPolicy, violation: Violation, vnf: VnfInstance, vnfc: VnfcInstance | None
    ) -> Target:
        action = policy.spec.chain()[0].action.type
        if action in VNF_ACTIONS:
            return vnf_target(vnf)
        if action == "notify" or vnfc is None:
            return violation.target
        return vnfc_target(vnf, vnfc)

    async def _vnf_and_vnfc(self, target: Target) -> tuple[VnfInstance, VnfcInstance | None] | None:
        if target.kind is TargetKind.VNF:
            vnf = await self._inventory.find(target.id)
            return None if vnf is None else (vnf, None)
        if target.vnf is not None:
            vnf = await self._inventory.find(target.vnf)
            vnfc = None if vnf is None else vnf.vnfc(target.id)
            return None if vnf is None or vnfc is None else (vnf, vnfc)
        return await self._inventory.find_vnfc(target.id)

    async def excluded(self, policy: KpiPolicy, vnf: VnfInstance, host: str | None) -> str:
        """Why the policy does not apply to ``vnf`` (on ``host``); "" when it does."""
        selector = policy.spec.target
        if selector.vnfd is not None and vnf.vnfd_id != selector.vnfd:
            return f"VNF {vnf.id} is of VNFD {vnf.vnfd_id}, the policy targets {selector.vnfd}"
        if selector.vnfd_version is not None:
            version = vnf.vnfd_version
            if version is None:  # an older record: it runs the latest version
                try:
                    version = (await self._catalogue.get(vnf.vnfd_id)).version
                except NotFound:
                    version = None
            if version != selector.vnfd_version:
                return (
                    f"VNF {vnf.id} runs VNFD {vnf.vnfd_id} version {version}, "
                    f"the policy targets {selector.vnfd_version}"
                )
        if selector.ns is not None and vnf.ns_id != selector.ns:
            member = f"is a member of NS {vnf.ns_id}" if vnf.ns_id else "is in no NS"
            return f"VNF {vnf.id} {member}, the policy targets NS {selector.ns}"
        unmatched = {k: v for k, v in selector.vnf_labels.items() if vnf.labels.get(k) != v}
        if unmatched:
            wanted = ", ".join(f"{k}={v}" for k, v in sorted(unmatched.items()))
            return f"VNF {vnf.id} lacks the labels {wanted}"
        if selector.hosts and host is not None and host not in selector.hosts:
            return f"host {host} is not one of the policy's hosts ({', '.join(selector.hosts)})"
        return ""


def ns_excluded(policy: KpiPolicy, ns: NsInstance) -> str:
    """Why the policy does not apply to NS ``ns``; "" when it does."""
    selector = policy.spec.target
    if selector.nsd is not None and ns.nsd_id != selector.nsd:
        return f"NS {ns.name} is of NSD {ns.nsd_id}, the policy targets NSD {selector.nsd}"
    if selector.ns is not None and selector.ns not in (ns.id, ns.name):
        return f"NS {ns.name} ({ns.id}) is not NS {selector.ns}, which the policy targets"
    unmatched = {k: v for k, v in selector.vnf_labels.items() if ns.labels.get(k) != v}
    if unmatched:
        wanted = ", ".join(f"{k}={v}" for k, v in sorted(unmatched.items()))
        return f"NS {ns.name} lacks the labels {wanted}"
    return ""
