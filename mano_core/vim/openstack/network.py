"""Networks, subnets and ports through Neutron, and images through Glance.

Blocking functions over one openstacksdk connection; the driver runs them
off the event loop. Our metadata travels in each object's ``description``
(:func:`~mano_core.vim.openstack.convert.description`); a lookup by metadata
lists, then keeps what carries every pair asked for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from openstack.connection import Connection

from mano_core.errors import NotFound
from mano_core.vim.base import ImageInfo, NetworkInfo, PortInfo, PortSpec, SubnetInfo
from mano_core.vim.openstack import convert


def create_network(conn: Connection, name: str, metadata: Mapping[str, str] | None) -> NetworkInfo:
    raw = conn.network.create_network(name=name, description=convert.description(metadata))
    return convert.network(raw)


def networks(conn: Connection, metadata: Mapping[str, str] | None) -> list[NetworkInfo]:
    found = (convert.network(n) for n in conn.network.networks())
    return [n for n in found if convert.carries(n.metadata, metadata)]


def delete_network(conn: Connection, network_id: str) -> None:
    # Neutron deletes the network's subnets with it, and refuses while ports remain.
    conn.network.delete_network(network_id, ignore_missing=False)


def create_subnet(
    conn: Connection,
    network_id: str,
    name: str,
    cidr: str,
    metadata: Mapping[str, str] | None,
) -> SubnetInfo:
    block = ipaddress.ip_network(cidr, strict=False)
    raw = conn.network.create_subnet(
        network_id=network_id,
        name=name,
        cidr=cidr,
        ip_version=block.version,
        # Neutron serves no DHCP on loopback addresses (used where servers'
        # exporters listen on this machine, as on a test cloud).
        enable_dhcp=not block.is_loopback,
        description=convert.description(metadata),
    )
    return convert.subnet(raw)


def subnets(
    conn: Connection, network_id: str | None, metadata: Mapping[str, str] | None
) -> list[SubnetInfo]:
    query = {"network_id": network_id} if network_id is not None else {}
    found = (convert.subnet(s) for s in conn.network.subnets(**query))
    return [s for s in found if convert.carries(s.metadata, metadata)]


def delete_subnet(conn: Connection, subnet_id: str) -> None:
    conn.network.delete_subnet(subnet_id, ignore_missing=False)


def create_port(conn: Connection, spec: PortSpec) -> PortInfo:
    raw = conn.network.create_port(
        name=spec.name, network_id=spec.network_id, description=convert.description(spec.metadata)
    )
    return convert.port(raw)


def ports(
    conn: Connection,
    network_id: str | None,
    server_id: str | None,
    metadata: Mapping[str, str] | None,
) -> list[PortInfo]:
    query = {
        k: v for k, v in (("network_id", network_id), ("device_id", server_id)) if v is not None
    }
    found = (convert.port(p) for p in conn.network.ports(**query))
    return [p for p in found if convert.carries(p.metadata, metadata)]


def delete_port(conn: Connection, port_id: str) -> None:
    # Neutron detaches a port from its server when the port is deleted.
    conn.network.delete_port(port_id, ignore_missing=False)


def network_ids(conn: Connection, names: tuple[str, ...]) -> tuple[str, ...]:
    """The ids of the networks called (or with the ids) ``names``; 404 for a missing one."""
    return tuple(str(conn.network.find_network(name, ignore_missing=False).id) for name in names)


def images(conn: Connection) -> list[ImageInfo]:
    return [convert.image(i) for i in conn.image.images()]


def find_image(conn: Connection, name: str, version: str | None) -> ImageInfo:
    """The active image ``name`` of ``version`` (None: the newest active one)."""
    candidates = [
        (raw.created_at or "", convert.image(raw))
        for raw in conn.image.images(name=name, status="active")
    ]
    matching = [
        (created, image)
        for created, image in candidates
        if image.name == name and (version is None or image.version == version)
    ]
    if not matching:
        wanted = name if version is None else f"{name} version {version}"
        raise NotFound(f"no active image {wanted}")
    return max(matching, key=lambda pair: pair[0])[1]
