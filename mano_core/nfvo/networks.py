"""The networks of an NS's virtual links: one per link on each VIM its members use.

An NSD virtual link connects members' external connection points. On every
VIM where a member on that link was placed, the NFVO makes one network
(with one subnet: the link's CIDR, else one of its protocol), and the
member is instantiated with its connection point on it. Each network and
subnet carries ``ns`` and ``vl`` in its metadata, so a resumed or failed
operation finds it again and a terminate (or a rollback) sweeps every VIM
for it, recorded or not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from mano_core.errors import NotFound
from mano_core.nfvo.records import NsNetwork, NsVnf
from mano_core.nsd import Nsd
from mano_core.vim.base import VimDriver
from mano_core.vim.registry import VimRegistry
from mano_core.vnfm.networks import default_cidr

LINK_CIDR_BASE = 128
"""NS links without a CIDR take subnets from here on, away from VNF-internal ones."""


def links_by_vim(nsd: Nsd, vnfs: Iterable[NsVnf]) -> list[tuple[str, str, int]]:
    """(link id, VIM, link index) for every link on every VIM one of its members uses."""
    vims_of: dict[str, set[str]] = {}
    for vnf in vnfs:
        vims_of.setdefault(vnf.member, set()).add(vnf.vim)
    out: list[tuple[str, str, int]] = []
    for index, link in enumerate(nsd.virtual_links):
        vims = set().union(*(vims_of.get(end.vnf, set()) for end in link.connects))
        out.extend((link.id, vim, index) for vim in sorted(vims))
    return out


async def ensure_networks(
    vims: VimRegistry, ns_id: str, ns_name: str, nsd: Nsd, vnfs: Iterable[NsVnf]
) -> list[NsNetwork]:
    """The network (and subnet) of each link on each VIM that needs it, created if missing."""
    made: list[NsNetwork] = []
    for link_id, vim_name, index in links_by_vim(nsd, vnfs):
        link = nsd.virtual_links[index]
        vim = vims.get_vim(vim_name)
        mark = {"ns": ns_id, "vl": link_id}
        existing = await vim.list_networks(metadata=mark)
        network = existing[0] if existing else None
        if network is None:
            network = await vim.create_network(f"{ns_name}-{link_id}", metadata=mark)
        subnets = await vim.list_subnets(network_id=network.id)
        if not subnets:
            cidr = link.cidr or default_cidr(LINK_CIDR_BASE + index, link.protocol)
            name = f"{ns_name}-{link_id}"
            subnets = [await vim.create_subnet(network.id, name, cidr, metadata=mark)]
        made.append(NsNetwork(link_id, vim_name, network.id, subnets[0].id))
    return made


def ext_networks(nsd: Nsd, vnf: NsVnf, networks: Iterable[NsNetwork]) -> dict[str, str]:
    """The member's external connection points -> the network of their link on its VIM."""
    on_vim = {n.link: n.network_id for n in networks if n.vim == vnf.vim}
    return {
        end.connection_point: on_vim[link.id]
        for link in nsd.virtual_links
        for end in link.connects
        if end.vnf == vnf.member and link.id in on_vim
    }


async def delete_networks(vims: VimRegistry, ns_id: str) -> list[str]:
    """Delete every subnet and network of the NS on every VIM; returns the network ids."""
    deleted: list[str] = []
    for name in vims:
        deleted.extend(await _delete_on(vims.get_vim(name), ns_id))
    return deleted


async def _delete_on(vim: VimDriver, ns_id: str) -> list[str]:
    mark = {"ns": ns_id}
    for subnet in await vim.list_subnets(metadata=mark):
        with contextlib.suppress(NotFound):
            await vim.delete_subnet(subnet.id)
    deleted = []
    for network in await vim.list_networks(metadata=mark):
        with contextlib.suppress(NotFound):
            await vim.delete_network(network.id)
        deleted.append(network.id)
    return deleted
