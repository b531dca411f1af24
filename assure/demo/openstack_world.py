"""The demo's world on a real OpenStack: what it reads of the cloud and the faults it makes.

Everything here goes through openstacksdk on a connection of its own, never
through the platform's VIM driver: a server stopped or a compute service
forced down is done behind the platform's back, as an operator or a fault
would, and the servers' truth (status, host) is read the same way.

The VNF's application is simulated on this machine (its exporters bind the
VNFCs' addresses), so the cloud's management network must give addresses
this machine can bind: the OpenStack tier's ``nfva-net`` (127.77.0.0/16 on
loopback) does. Forcing a compute service down needs an administrator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assure.demo.progress import Progress
from assure.platform import PlatformError
from mano_core.vim.base import ServerInfo

REFRESH_S = 1.0
"""Wall seconds a reading of the cloud is reused: the workload ticks several times a
wall second, and each reading costs Nova two API calls."""


LEFTOVER_WAIT_S = 60.0
"""Wall seconds the end of the demo waits for Nova to delete the terminated servers."""


@dataclass(frozen=True)
class ComputeHost:
    name: str
    degraded: bool
    """Its compute service is forced down, disabled or not reporting."""


class WorldError(PlatformError):
    """The cloud cannot be used for the demo; the message says why."""


class OpenStackWorld:
    """One OpenStack cloud of ``clouds.yaml``, seen and hurt through openstacksdk."""

    def __init__(self, conn: Any, networks: Sequence[str]) -> None:
        self._conn = conn
        self._networks = tuple(networks)
        self._read_at = -1e9
        self._servers: list[ServerInfo] = []
        self._hosts: list[ComputeHost] = []
        self._lock = asyncio.Lock()
        self.forced_down: list[str] = []
        """Hosts whose compute service this demo forced down, to bring back at the end."""

    @classmethod
    async def connect(cls, cloud: str | None, networks: Sequence[str]) -> OpenStackWorld:
        """The world of ``cloud`` (None: ``OS_CLOUD``); :class:`WorldError` when it is
        unknown or does not answer."""
        import openstack  # noqa: PLC0415 - an optional extra, needed only here

        def connect() -> Any:
            conn = openstack.connect(cloud=cloud, api_timeout=30)
            list(conn.compute.services(binary="nova-compute"))  # answers, and we may look
            return conn

        try:
            conn = await asyncio.to_thread(connect)
        except Exception as exc:
            raise WorldError(
                f"cannot use the OpenStack cloud {cloud or '(OS_CLOUD)'} for the demo: {exc}"
            ) from exc
        return cls(conn, networks)

    # ------------------------------------------------------------------
    # What the workload reads (assure.simulation.workload.Infrastructure)
    # ------------------------------------------------------------------
    @property
    def infrastructure(self) -> OpenStackWorld:
        return self

    async def servers(self) -> list[ServerInfo]:
        await self._refresh()
        return self._servers

    async def hosts(self) -> list[ComputeHost]:
        await self._refresh()
        return self._hosts

    async def set_server_cpu(self, cpus: Mapping[str, float]) -> None:
        """Nothing to do: a real cloud measures its servers itself (the load the demo
        simulates shows in the VNFCs' own exporters)."""

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < REFRESH_S:
                return
            self._servers, self._hosts = await asyncio.to_thread(self._read)
            self._read_at = time.monotonic()

    def _read(self) -> tuple[list[ServerInfo], list[ComputeHost]]:
        from mano_core.vim.openstack import convert  # noqa: PLC0415 - the optional extra

        servers = [convert.server(s, self._networks) for s in self._conn.compute.servers()]
        hosts = [
            ComputeHost(
                str(s.host),
                bool(s.is_forced_down) or s.status != "enabled" or s.state != "up",
            )
            for s in self._conn.compute.services(binary="nova-compute")
        ]
        return servers, sorted(hosts, key=lambda h: h.name)

    # ------------------------------------------------------------------
    # Faults, behind the platform's back
    # ------------------------------------------------------------------
    async def crash(self, server_id: str) -> str:
        """Stop the server, as a guest that shut itself down or an operator would."""
        await asyncio.to_thread(self._conn.compute.stop_server, server_id)
        self._read_at = -1e9
        return f"server {server_id} stopped behind the platform's back"

    async def degrade(self, host: str) -> str:
        """Force the host's compute service down, as an operator fencing a sick host."""

        def force() -> None:
            (service,) = self._conn.compute.services(binary="nova-compute", host=host)
            self._conn.compute.update_service_forced_down(service, host, "nova-compute", True)

        await asyncio.to_thread(force)
        self.forced_down.append(host)
        self._read_at = -1e9
        return "forced down (its nova-compute service, by openstacksdk)"

    # ------------------------------------------------------------------
    # The end
    # ------------------------------------------------------------------
    async def leftovers(self, vnf_id: str) -> list[str]:
        """Ids of the servers of VNF ``vnf_id`` still in the cloud, and of their ports."""

        def find() -> list[str]:
            servers = [
                str(s.id)
                for s in self._conn.compute.servers()
                if (s.metadata or {}).get("vnf") == vnf_id
            ]
            ports = [
                f"port {p.id}" for p in self._conn.network.ports() if str(p.device_id) in servers
            ]
            return [f"server {s}" for s in servers] + ports

        return await asyncio.to_thread(find)

    async def restore(self) -> list[str]:
        """Bring the compute services this demo forced down back; what could not be,
        each with why (Nova refuses while servers evacuated off the host wait for its
        nova-compute to restart and clean up)."""
        refused = []
        for host in self.forced_down:

            def unforce(host: str = host) -> None:
                (service,) = self._conn.compute.services(binary="nova-compute", host=host)
                self._conn.compute.update_service_forced_down(service, host, "nova-compute", False)

            try:
                await asyncio.to_thread(unforce)
            except Exception as exc:
                refused.append(
                    f"the compute service of {host} stays forced down ({exc}); restart its "
                    f"nova-compute, then: openstack compute service set --up {host} nova-compute"
                )
        self.forced_down = []
        return refused

    keeps_resources = True
    """What the demo created stays in the cloud unless it is terminated."""

    async def finish(self, vnf_ids: list[str], progress: Progress) -> list[str]:
        """After the NS is terminated: wait for Nova to delete the VNFs' servers, check
        with openstacksdk that none of them or their ports is left, and bring the
        forced-down hosts back; the problems, if any."""
        problems: list[str] = []
        for vnf_id in vnf_ids:
            # Nova deletes a server after accepting the request: wait for it.
            deadline = time.monotonic() + LEFTOVER_WAIT_S
            left = await self.leftovers(vnf_id)
            while left and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
                left = await self.leftovers(vnf_id)
            if left:
                problems.append(f"left in the cloud by VNF {vnf_id}: {', '.join(left)}")
            else:
                progress.info(f"VNF {vnf_id}: none of its servers or ports is left in the cloud")
        for refused in await self.restore():
            progress.warn(refused)
        return problems

    async def aclose(self) -> None:
        await asyncio.to_thread(self._conn.close)
