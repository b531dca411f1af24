"""OpenStack's resources as the value types of :mod:`mano_core.vim.base`.

Pure functions over what openstacksdk returned; no calls to the cloud.

Server states: Nova's ``status`` is kept where the protocol has it. The
states nfv-assure never asks for map onto the nearest one it knows: a
paused, suspended, shelved or rescued server is not running its VNFC, so it
shows as SHUTOFF; ``PASSWORD`` (a password change under way) as ACTIVE;
``SOFT_DELETED`` as DELETED; ``UNKNOWN`` (its cell does not answer) as ERROR.

Neutron has no metadata: networks, subnets and ports carry ours as JSON in
their ``description`` (``nfv-assure:{"vnf": "..."}``), written by the create
request itself. Neutron's tags would need a second request after the create,
and a create whose reply is lost would then leave an object nothing finds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from mano_core.errors import PermanentVimError
from mano_core.vim.base import (
    Flavor,
    GroupPolicy,
    ImageInfo,
    NetworkInfo,
    PortInfo,
    ServerGroupInfo,
    ServerInfo,
    ServerStatus,
    SubnetInfo,
)

DESCRIPTION_PREFIX = "nfv-assure:"

_STATUS = {s.value: s for s in ServerStatus}
_STATUS.update(
    {
        "PAUSED": ServerStatus.SHUTOFF,
        "SUSPENDED": ServerStatus.SHUTOFF,
        "SHELVED": ServerStatus.SHUTOFF,
        "SHELVED_OFFLOADED": ServerStatus.SHUTOFF,
        "RESCUE": ServerStatus.SHUTOFF,
        "PASSWORD": ServerStatus.ACTIVE,
        "SOFT_DELETED": ServerStatus.DELETED,
        "UNKNOWN": ServerStatus.ERROR,
    }
)


def timestamp(text: str | None) -> float:
    """Unix seconds of an OpenStack ISO 8601 time (``2026-12-01T17:41:37Z``); 0 if none."""
    if not text:
        return 0.0
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.timestamp()


def status(nova_status: str | None) -> ServerStatus:
    # A server Nova has only just accepted has no status in the create reply yet.
    return _STATUS.get((nova_status or "BUILD").upper(), ServerStatus.ERROR)


def flavor(embedded: Any) -> Flavor:
    """The flavour a server runs with (Nova embeds it in the server since 2.47)."""
    data = _mapping(embedded)
    return Flavor(
        name=str(data.get("original_name") or data.get("name") or data.get("id") or ""),
        vcpus=int(data.get("vcpus") or 0),
        ram_mb=int(data.get("ram") or 0),
        disk_gb=int(data.get("disk") or 0),
    )


def address(addresses: Mapping[str, Any] | None, networks: Iterable[str]) -> str | None:
    """The server's management address: the first fixed IPv4 address on the first of
    ``networks`` (names) it is on, else on any network."""
    addresses = addresses or {}
    ordered = [n for n in networks if n in addresses] + sorted(addresses)
    for network in ordered:
        for entry in addresses.get(network) or ():
            data = _mapping(entry)
            if data.get("version") == 4 and data.get("OS-EXT-IPS:type", "fixed") == "fixed":
                return str(data["addr"])
    return None


def server(raw: Any, networks: Iterable[str]) -> ServerInfo:
    fault = _mapping(raw.fault).get("message") if raw.fault else None
    nova_status = (raw.status or "BUILD").upper()
    if nova_status == "UNKNOWN" and not fault:
        fault = "Nova cannot tell the server's state (its cell does not answer)"
    return ServerInfo(
        id=str(raw.id),
        name=str(raw.name or ""),
        status=status(nova_status),
        host=raw.compute_host or None,
        address=address(raw.addresses, networks),
        flavor=flavor(raw.flavor),
        image=str(_mapping(raw.image).get("id") or ""),
        metadata={str(k): str(v) for k, v in (raw.metadata or {}).items()},
        created_at=timestamp(raw.created_at),
        zone=raw.availability_zone or None,
        fault=str(fault) if fault else None,
    )


def group(raw: Any) -> ServerGroupInfo:
    policy = raw.policy or (raw.policies[0] if raw.policies else "")
    try:
        chosen = GroupPolicy(policy)
    except ValueError:
        raise PermanentVimError(f"server group {raw.id} has unknown policy {policy!r}") from None
    return ServerGroupInfo(
        id=str(raw.id),
        name=str(raw.name or ""),
        policy=chosen,
        members=tuple(str(m) for m in raw.member_ids or ()),
    )


def image(raw: Any) -> ImageInfo:
    version = (raw.properties or {}).get("version")
    return ImageInfo(
        id=str(raw.id),
        name=str(raw.name or ""),
        version=str(version) if version is not None else None,
        status=str(raw.status or ""),
    )


def description(metadata: Mapping[str, str] | None) -> str:
    """Neutron's ``description`` carrying ``metadata``: set in the create request
    itself, so a network, subnet or port is never without it."""
    text = DESCRIPTION_PREFIX + json.dumps(dict(metadata or {}), sort_keys=True)
    if len(text) > 255:
        raise PermanentVimError(f"metadata {dict(metadata or {})} is too long for Neutron")
    return text


def from_description(text: str | None) -> dict[str, str]:
    """Our metadata from a Neutron ``description``; {} when it is not ours."""
    if not text or not text.startswith(DESCRIPTION_PREFIX):
        return {}
    try:
        data = json.loads(text[len(DESCRIPTION_PREFIX) :])
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def carries(metadata: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    """Whether ``metadata`` has every pair of ``wanted``."""
    return dict(wanted or {}).items() <= metadata.items()


def network(raw: Any) -> NetworkInfo:
    return NetworkInfo(
        id=str(raw.id), name=str(raw.name or ""), metadata=from_description(raw.description)
    )


def subnet(raw: Any) -> SubnetInfo:
    return SubnetInfo(
        id=str(raw.id),
        name=str(raw.name or ""),
        network_id=str(raw.network_id),
        cidr=str(raw.cidr),
        metadata=from_description(raw.description),
    )


def port(raw: Any) -> PortInfo:
    fixed = [_mapping(ip).get("ip_address") for ip in raw.fixed_ips or ()]
    return PortInfo(
        id=str(raw.id),
        name=str(raw.name or ""),
        network_id=str(raw.network_id),
        address=str(fixed[0]) if fixed and fixed[0] else None,
        server_id=str(raw.device_id) if raw.device_id else None,
        metadata=from_description(raw.description),
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    """A resource or dict as a mapping (SDK resources also behave as dicts)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    to_dict = getattr(value, "to_dict", None)
    return to_dict(computed=False) if callable(to_dict) else {}
