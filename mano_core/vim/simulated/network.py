"""The simulated cloud's networks, subnets, ports, server groups and images.

Functions over a :class:`~mano_core.vim.simulated.cloud.Cloud`, behaving as
Neutron, Nova's server groups and Glance do where the VNFM can tell: ports
outlive the servers they were attached to, a network with ports cannot be
deleted, a port takes the next free address of its network's first subnet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from mano_core.errors import NotFound, PermanentVimError, QuotaExceeded
from mano_core.vim.base import (
    GroupPolicy,
    ImageInfo,
    NetworkInfo,
    PortInfo,
    PortSpec,
    ServerGroupInfo,
    SubnetInfo,
)
from mano_core.vim.simulated.cloud import Cloud
from mano_core.vim.simulated.state import (
    GroupRec,
    ImageRec,
    NetworkRec,
    PortRec,
    SubnetRec,
)


def _has(metadata: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    return wanted is None or dict(wanted).items() <= metadata.items()


# --- server groups -----------------------------------------------------------
def create_group(cloud: Cloud, name: str, policy: GroupPolicy) -> ServerGroupInfo:
    group = GroupRec(cloud.new_id(), name, GroupPolicy(policy))
    cloud.state.groups[group.id] = group
    return group_info(cloud, group)


def group_info(cloud: Cloud, group: GroupRec) -> ServerGroupInfo:
    members = tuple(s.id for s in cloud.state.servers.values() if s.group == group.id)
    return ServerGroupInfo(group.id, group.name, group.policy, members)


def groups(cloud: Cloud) -> list[ServerGroupInfo]:
    return [group_info(cloud, g) for g in cloud.state.groups.values()]


def delete_group(cloud: Cloud, group_id: str) -> None:
    if cloud.state.groups.pop(group_id, None) is None:
        raise NotFound(f"server group {group_id} does not exist in VIM {cloud.vim}")


# --- networks and subnets ----------------------------------------------------
def create_network(cloud: Cloud, name: str, metadata: Mapping[str, str] | None) -> NetworkInfo:
    quota = cloud.limits().networks
    if not quota.allows(1):
        raise QuotaExceeded(f"quota of {quota.limit} networks exceeded")
    network = NetworkRec(cloud.new_id(), name, dict(metadata or {}))
    cloud.state.networks[network.id] = network
    return NetworkInfo(network.id, network.name, dict(network.metadata))


def networks(cloud: Cloud, metadata: Mapping[str, str] | None) -> list[NetworkInfo]:
    return [
        NetworkInfo(n.id, n.name, dict(n.metadata))
        for n in cloud.state.networks.values()
        if _has(n.metadata, metadata)
    ]


def delete_network(cloud: Cloud, network_id: str) -> None:
    _network(cloud, network_id)
    in_use = [p.id for p in cloud.state.ports.values() if p.network_id == network_id]
    if in_use:
        raise PermanentVimError(
            f"network {network_id} still has port(s) {', '.join(sorted(in_use))}"
        )
    for subnet in [s for s in cloud.state.subnets.values() if s.network_id == network_id]:
        del cloud.state.subnets[subnet.id]
    del cloud.state.networks[network_id]


def create_subnet(
    cloud: Cloud, network_id: str, name: str, cidr: str, metadata: Mapping[str, str] | None
) -> SubnetInfo:
    _network(cloud, network_id)
    try:
        block = ipaddress.ip_network(cidr)
    except ValueError as exc:
        raise PermanentVimError(f"invalid CIDR {cidr!r}: {exc}") from None
    if block.num_addresses < 4:
        raise PermanentVimError(f"CIDR {cidr} is too small for a subnet")
    subnet = SubnetRec(cloud.new_id(), name, network_id, str(block), dict(metadata or {}))
    cloud.state.subnets[subnet.id] = subnet
    return subnet_info(subnet)


def subnet_info(subnet: SubnetRec) -> SubnetInfo:
    return SubnetInfo(subnet.id, subnet.name, subnet.network_id, subnet.cidr, dict(subnet.metadata))


def subnets(
    cloud: Cloud, network_id: str | None, metadata: Mapping[str, str] | None
) -> list[SubnetInfo]:
    return [
        subnet_info(s)
        for s in cloud.state.subnets.values()
        if (network_id is None or s.network_id == network_id) and _has(s.metadata, metadata)
    ]


def delete_subnet(cloud: Cloud, subnet_id: str) -> None:
    if subnet_id not in cloud.state.subnets:
        raise NotFound(f"subnet {subnet_id} does not exist in VIM {cloud.vim}")
    holders = [p.id for p in cloud.state.ports.values() if p.subnet_id == subnet_id]
    if holders:
        raise PermanentVimError(
            f"subnet {subnet_id} still has addresses held by port(s) {', '.join(sorted(holders))}"
        )
    del cloud.state.subnets[subnet_id]


def _network(cloud: Cloud, network_id: str) -> NetworkRec:
    try:
        return cloud.state.networks[network_id]
    except KeyError:
        raise NotFound(f"network {network_id} does not exist in VIM {cloud.vim}") from None


# --- ports -------------------------------------------------------------------
def create_port(cloud: Cloud, spec: PortSpec) -> PortInfo:
    _network(cloud, spec.network_id)
    quota = cloud.limits().ports
    if not quota.allows(1):
        raise QuotaExceeded(f"quota of {quota.limit} ports exceeded")
    port = PortRec(cloud.new_id(), spec.name, spec.network_id, dict(spec.metadata))
    subnet = next(
        (s for s in cloud.state.subnets.values() if s.network_id == spec.network_id), None
    )
    if subnet is not None:
        block = ipaddress.ip_network(subnet.cidr)
        if subnet.next_host >= block.num_addresses - 1:
            raise PermanentVimError(f"subnet {subnet.id} ({subnet.cidr}) has no free address")
        port.subnet_id = subnet.id
        port.address = str(block[subnet.next_host])
        subnet.next_host += 1
    cloud.state.ports[port.id] = port
    return port_info(port)


def port_info(port: PortRec) -> PortInfo:
    return PortInfo(
        id=port.id,
        name=port.name,
        network_id=port.network_id,
        address=port.address,
        server_id=port.server_id,
        metadata=dict(port.metadata),
    )


def ports(
    cloud: Cloud,
    network_id: str | None,
    server_id: str | None,
    metadata: Mapping[str, str] | None,
) -> list[PortInfo]:
    return [
        port_info(p)
        for p in cloud.state.ports.values()
        if (network_id is None or p.network_id == network_id)
        and (server_id is None or p.server_id == server_id)
        and _has(p.metadata, metadata)
    ]


def delete_port(cloud: Cloud, port_id: str) -> None:
    port = cloud.state.ports.pop(port_id, None)
    if port is None:
        raise NotFound(f"port {port_id} does not exist in VIM {cloud.vim}")
    server = cloud.state.servers.get(port.server_id or "")
    if server is not None and port_id in server.ports:
        server.ports.remove(port_id)


# --- images ------------------------------------------------------------------
def add_image(cloud: Cloud, name: str, version: str | None) -> ImageInfo:
    """Register an image (idempotent: the same name and version is the same image)."""
    for image in cloud.state.images.values():
        if image.name == name and image.version == version:
            return image_info(image)
    image = ImageRec(cloud.new_id(), name, version, cloud.now)
    cloud.state.images[image.id] = image
    return image_info(image)


def image_info(image: ImageRec) -> ImageInfo:
    return ImageInfo(image.id, image.name, image.version, image.status)


def images(cloud: Cloud) -> list[ImageInfo]:
    return [image_info(i) for i in sorted(cloud.state.images.values(), key=lambda i: i.created_at)]


def find_image(cloud: Cloud, name: str, version: str | None) -> ImageInfo:
    found = [
        i
        for i in cloud.state.images.values()
        if i.name == name and i.status == "active" and (version is None or i.version == version)
    ]
    if not found:
        what = f"{name} version {version}" if version is not None else name
        raise NotFound(f"image {what} does not exist in VIM {cloud.vim}")
    return image_info(max(found, key=lambda i: (i.created_at, i.id)))
