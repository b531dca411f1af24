"""Compute hosts, quotas and telemetry read from Nova, Placement and Neutron.

Blocking functions over one openstacksdk connection; the driver runs them
off the event loop.

A host is a nova-compute service and the hypervisor (node) it manages:

- ``state``: the service's ``state`` (down when it stopped reporting, or an
  operator forced it down); ``enabled``: its ``status``; ``forced_down``.
- ``degraded``: the host has a fault an operator or Nova reported: forced
  down, disabled, or not reporting. That is the host fault the closed loop
  acts on (:data:`~mano_core.vim.base.HOST_DEGRADED` = 1), so the VNFCs on
  it are moved away.
- capacity and use: the node's Placement resource provider, inventories
  ``(total - reserved) * allocation_ratio`` and usages, of VCPU, MEMORY_MB
  and DISK_GB (Nova's hypervisor statistics left the API in 2.88).
- ``servers``: the project's servers on it.

Telemetry: ``vim_server_up`` per server, ``vim_server_cpu_utilisation``
from each ACTIVE server's diagnostics where the hypervisor reports CPU
utilisation (an administrator's call; skipped where the cloud refuses it),
and per host ``vim_host_up``, ``vim_host_degraded`` and the vCPUs and RAM
allocated and available.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from openstack import exceptions as sdk
from openstack.connection import Connection

from mano_core.errors import PermanentVimError
from mano_core.vim.base import (
    HOST_DEGRADED,
    HOST_RAM_MB,
    HOST_RAM_USED_MB,
    HOST_UP,
    HOST_VCPUS,
    HOST_VCPUS_USED,
    SERVER_CPU,
    SERVER_UP,
    HostInfo,
    HostState,
    Limits,
    Quota,
    ServerInfo,
    ServerStatus,
    TelemetryPoint,
)
from mano_core.vim.openstack.errors import translate

log = logging.getLogger(__name__)

_CAPACITY = ("VCPU", "MEMORY_MB", "DISK_GB")


def list_hosts(conn: Connection, servers: Iterable[ServerInfo]) -> list[HostInfo]:
    """Every nova-compute host with its capacity and use; ``servers``: the project's."""
    nodes = _nodes_by_host(conn)
    providers = {str(rp.name): rp for rp in conn.placement.resource_providers()}
    on_host: dict[str, list[str]] = defaultdict(list)
    for server in servers:
        if server.host is not None:
            on_host[server.host].append(server.id)
    hosts = []
    for service in conn.compute.services(binary="nova-compute"):
        name = str(service.host)
        total: dict[str, int] = dict.fromkeys(_CAPACITY, 0)
        used: dict[str, int] = dict.fromkeys(_CAPACITY, 0)
        for node in nodes.get(name, ()):
            provider = providers.get(node)
            if provider is not None:
                _add_provider(conn, provider, total, used)
        up = service.state == "up"
        enabled = service.status == "enabled"
        forced = bool(service.is_forced_down)
        hosts.append(
            HostInfo(
                name=name,
                state=HostState.UP if up else HostState.DOWN,
                enabled=enabled,
                degraded=forced or not enabled or not up,
                vcpus=total["VCPU"],
                ram_mb=total["MEMORY_MB"],
                vcpus_used=used["VCPU"],
                ram_used_mb=used["MEMORY_MB"],
                servers=tuple(sorted(on_host.get(name, ()))),
                zone=str(service.availability_zone or "nova"),
                disk_gb=total["DISK_GB"],
                disk_used_gb=used["DISK_GB"],
                forced_down=forced,
            )
        )
    return sorted(hosts, key=lambda h: h.name)


NODES_MICROVERSION = "2.53"
"""Hypervisor details from 2.88 on ask each compute for its uptime: with one compute
down the whole listing fails (HTTP 500 after an RPC timeout). 2.53 asks nothing."""


def _nodes_by_host(conn: Connection) -> dict[str, list[str]]:
    """The hypervisor (node) names of each compute service host."""
    response = conn.compute.get("/os-hypervisors/detail", microversion=NODES_MICROVERSION)
    sdk.raise_from_response(response)
    nodes: dict[str, list[str]] = defaultdict(list)
    for hypervisor in response.json().get("hypervisors", ()):
        name = str(hypervisor.get("hypervisor_hostname"))
        host = (hypervisor.get("service") or {}).get("host") or name
        nodes[str(host)].append(name)
    return nodes


def _add_provider(
    conn: Connection, provider: Any, total: dict[str, int], used: dict[str, int]
) -> None:
    for inventory in conn.placement.resource_provider_inventories(provider):
        kind = str(inventory.resource_class)
        if kind in total:
            usable = (int(inventory.total) - int(inventory.reserved or 0)) * float(
                inventory.allocation_ratio or 1.0
            )
            total[kind] += int(usable)
    usages = conn.placement.fetch_resource_provider_usages(provider).usages or {}
    for kind in _CAPACITY:
        used[kind] += int(usages.get(kind, 0))


def limits(conn: Connection) -> Limits:
    """Nova's absolute limits and Neutron's quotas of the connection's project."""
    absolute = conn.compute.get_limits().absolute
    project = conn.current_project_id
    if project is None:
        raise PermanentVimError("the credentials are not scoped to a project: no quotas")
    network = conn.network.get_quota(project, details=True)
    return Limits(
        instances=_quota(absolute.instances, absolute.instances_used),
        vcpus=_quota(absolute.total_cores, absolute.total_cores_used),
        ram_mb=_quota(absolute.total_ram, absolute.total_ram_used),
        ports=_neutron_quota(network.ports),
        networks=_neutron_quota(network.networks),
    )


def _quota(limit: Any, used: Any) -> Quota:
    value = int(limit) if limit is not None else -1
    return Quota(limit=None if value < 0 else value, used=int(used or 0))


def _neutron_quota(detail: Any) -> Quota:
    detail = detail or {}
    return _quota(detail.get("limit"), detail.get("used"))


def telemetry(
    conn: Connection,
    servers: list[ServerInfo],
    hosts: list[HostInfo] | None,
    now: Callable[[], float],
) -> list[TelemetryPoint]:
    """VIM KPIs of ``servers`` and ``hosts`` (None: the cloud does not show its hosts)."""
    points: list[TelemetryPoint] = []
    for server in servers:
        labels = {"server": server.id, "host": server.host or ""}
        active = server.status is ServerStatus.ACTIVE
        points.append(
            TelemetryPoint(
                SERVER_UP, {**labels, "status": server.status.value}, float(active), now()
            )
        )
        cpu = server_cpu(conn, server.id) if active else None
        if cpu is not None:
            points.append(TelemetryPoint(SERVER_CPU, labels, cpu, now()))
    for host in hosts or ():
        labels = {"host": host.name}
        ts = now()
        up = host.state is HostState.UP and host.enabled
        points += [
            TelemetryPoint(HOST_UP, labels, float(up), ts),
            TelemetryPoint(HOST_DEGRADED, labels, float(host.degraded), ts),
            TelemetryPoint(HOST_VCPUS, labels, float(host.vcpus), ts),
            TelemetryPoint(HOST_VCPUS_USED, labels, float(host.vcpus_used), ts),
            TelemetryPoint(HOST_RAM_MB, labels, float(host.ram_mb), ts),
            TelemetryPoint(HOST_RAM_USED_MB, labels, float(host.ram_used_mb), ts),
        ]
    return points


def server_cpu(conn: Connection, server_id: str) -> float | None:
    """Mean vCPU utilisation (percent) from the server's diagnostics; None when not offered."""
    try:
        diagnostics = conn.compute.get_server_diagnostics(server_id)
    except Exception as exc:
        error = translate(exc, f"diagnostics of server {server_id}")
        if error is None:
            raise
        # Not an administrator, no diagnostics from this hypervisor, the server
        # gone or mid-task: the measurement is missing (never read as zero).
        log.debug("no CPU utilisation for server %s: %s", server_id, error)
        return None
    values = [
        float(cpu["utilisation"])
        for cpu in diagnostics.cpu_details or ()
        if isinstance(cpu, dict) and cpu.get("utilisation") is not None
    ]
    return max(0.0, min(100.0, sum(values) / len(values))) if values else None
