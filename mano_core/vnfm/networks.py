"""A VNF's networks and its VNFCs' ports on its VIM.

Each internal virtual link of the VNFD is a network of the VNF's own (with
one subnet, the link's CIDR or one the VNFM picks), and each connection
point of a VNFC a port: on the network of its internal virtual link, or on
the network the instantiation connected its external connection point to.
Everything carries ``vnf`` (and ``vl``, ``vnfc``, ``cp``) in its metadata,
so it is found again by a resumed operation and swept by a terminate, and
nothing is created twice.
"""

from __future__ import annotations

import contextlib

from mano_core.errors import NotFound
from mano_core.models import VnfInstance
from mano_core.vim.base import PortSpec, VimDriver
from mano_core.vnfd import Vdu, Vnfd


def default_cidr(index: int, protocol: str = "ipv4") -> str:
    """The subnet of the ``index``-th virtual link that names none (private, per VNF)."""
    if protocol == "ipv6":
        return f"fd00:64:{index:x}::/64"
    return f"10.{100 + index // 256}.{index % 256}.0/24"


async def ensure_networks(vim: VimDriver, vnf: VnfInstance, vnfd: Vnfd) -> dict[str, str]:
    """The network of each internal virtual link (created if missing): link id -> network id."""
    if not vnfd.virtual_links:
        return {}
    existing = {n.metadata.get("vl"): n for n in await vim.list_networks(metadata={"vnf": vnf.id})}
    networks: dict[str, str] = {}
    for index, link in enumerate(vnfd.virtual_links):
        mark = {"vnf": vnf.id, "vl": link.id}
        network = existing.get(link.id)
        if network is None:
            network = await vim.create_network(f"{vnf.name}-{link.id}", metadata=mark)
        if not await vim.list_subnets(network_id=network.id):
            cidr = link.cidr or default_cidr(index, link.protocol)
            await vim.create_subnet(network.id, f"{vnf.name}-{link.id}", cidr, metadata=mark)
        networks[link.id] = network.id
    return networks


async def vnf_networks(vim: VimDriver, vnf_id: str) -> dict[str, str]:
    """The VNF's internal networks as they are: link id -> network id."""
    return {
        n.metadata["vl"]: n.id
        for n in await vim.list_networks(metadata={"vnf": vnf_id})
        if "vl" in n.metadata
    }


def _network_of(
    vnf: VnfInstance, vnfd: Vnfd, cp_id: str, link: str | None, internal: dict[str, str]
) -> str | None:
    if link is not None:
        return internal.get(link)
    for ext in vnfd.external_connection_points:
        if ext.connection_point == cp_id and ext.id in vnf.ext_networks:
            return vnf.ext_networks[ext.id]
    return None  # exposed, but the instantiation connected it to nothing


async def ensure_ports(
    vim: VimDriver,
    vnf: VnfInstance,
    vnfd: Vnfd,
    *,
    vdu: Vdu,
    vnfc_id: str,
    internal: dict[str, str],
) -> list[str]:
    """The ports of VNFC ``vnfc_id``, one per connected connection point, in order."""
    if not vdu.connection_points:
        return []
    existing = {
        p.metadata.get("cp"): p
        for p in await vim.list_ports(metadata={"vnf": vnf.id, "vnfc": vnfc_id})
    }
    ports: list[str] = []
    for cp in vdu.connection_points:
        network = _network_of(vnf, vnfd, cp.id, cp.virtual_link, internal)
        if network is None:
            continue
        port = existing.get(cp.id)
        if port is None:
            port = await vim.create_port(
                PortSpec(
                    f"{vnf.name}-{vnfc_id}-{cp.id}",
                    network,
                    metadata={"vnf": vnf.id, "vnfc": vnfc_id, "cp": cp.id},
                )
            )
        ports.append(port.id)
    return ports


async def delete_ports(vim: VimDriver, vnf_id: str, vnfc_id: str | None = None) -> list[str]:
    """Delete the ports of one VNFC (or, with None, of the whole VNF); returns their ids."""
    mark = {"vnf": vnf_id} if vnfc_id is None else {"vnf": vnf_id, "vnfc": vnfc_id}
    deleted = []
    for port in await vim.list_ports(metadata=mark):
        with contextlib.suppress(NotFound):
            await vim.delete_port(port.id)
        deleted.append(port.id)
    return deleted


async def delete_networks(vim: VimDriver, vnf_id: str) -> list[str]:
    """Delete the VNF's networks and subnets (its ports first); returns the network ids."""
    await delete_ports(vim, vnf_id)
    deleted = []
    for subnet in await vim.list_subnets(metadata={"vnf": vnf_id}):
        with contextlib.suppress(NotFound):
            await vim.delete_subnet(subnet.id)
    for network in await vim.list_networks(metadata={"vnf": vnf_id}):
        with contextlib.suppress(NotFound):
            await vim.delete_network(network.id)
        deleted.append(network.id)
    return deleted
