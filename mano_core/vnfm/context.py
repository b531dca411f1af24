"""What every VNFM operation shares: its collaborators and the small steps they all take.

A :class:`Context` holds the VIMs (by name: each VNF runs on the VIM its
grant chose), the inventory, the catalogue, the operation store, the clock,
the HTTP client of configuration hooks and the health check, and offers the
steps every operation module uses: save a VNF record, wait for servers
(stopping if an operator cancels), look the VNFD and VDU up.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from bus.clock import Clock
from mano_core.catalogue import Catalogue
from mano_core.errors import InvalidRequest, NotFound
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.models import InstantiationState, VnfcInstance, VnfInstance
from mano_core.oprunner import Run
from mano_core.servers import Check, vnfc_on, wait_for
from mano_core.vim.base import HostState, ServerInfo, ServerStatus, VimDriver
from mano_core.vim.registry import VimRegistry
from mano_core.vnfd import Vdu, Vnfd
from mano_core.vnfm.hooks import HookClient

Entry = dict[str, Any]
"""One VNFC an operation adds or removes, as its parameters store it:
``{"vnfc": id, "vdu": id, "server": id, ...}``."""


class HealthCheck(Protocol):
    """Whether a VNFC is healthy after a step that touched its server (a move, a
    resize, an image change): None when it is, else why not."""

    async def __call__(
        self, vim: VimDriver, vnf: VnfInstance, server: ServerInfo
    ) -> str | None: ...


async def vim_health(vim: VimDriver, vnf: VnfInstance, server: ServerInfo) -> str | None:
    """The VIM's view: the server runs (ACTIVE or VERIFY_RESIZE) on a healthy host."""
    if server.status not in (ServerStatus.ACTIVE, ServerStatus.VERIFY_RESIZE):
        return f"server {server.id} is {server.status}"
    host = next((h for h in await vim.list_hosts() if h.name == server.host), None)
    if host is None:
        return f"server {server.id} is on unknown host {server.host}"
    if host.state is not HostState.UP or host.degraded or host.forced_down:
        return f"server {server.id} is on host {host.name}, which is down or degraded"
    return None


@dataclass
class Context:
    """The VNFM's collaborators; ``poll_s`` and ``timeout_s`` are clock seconds."""

    vims: VimRegistry
    inventory: Inventory
    catalogue: Catalogue
    ops: OpOccStore
    clock: Clock
    hooks: HookClient
    health: HealthCheck
    poll_s: float
    timeout_s: float

    def vim(self, name: str) -> VimDriver:
        return self.vims.get_vim(name)

    def vim_of(self, vnf: VnfInstance) -> VimDriver:
        return self.vims.get_vim(vnf.vim)

    async def save(self, vnf: VnfInstance) -> VnfInstance:
        vnf = msgspec.structs.replace(vnf, updated_at=self.clock.now())
        await self.inventory.save(vnf)
        return vnf

    async def vnf(self, vnf_id: str) -> VnfInstance:
        return await self.inventory.get(vnf_id)

    async def instantiated(self, vnf_id: str) -> VnfInstance:
        vnf = await self.inventory.get(vnf_id)
        if vnf.state is not InstantiationState.INSTANTIATED:
            raise InvalidRequest(f"VNF instance {vnf_id} is {vnf.state}")
        return vnf

    async def wait(
        self,
        vim: VimDriver,
        server_ids: Sequence[str],
        check: Check,
        run: Run | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, ServerInfo]:
        """Wait for the servers to pass ``check``; an operator's cancel stops the wait."""
        return await wait_for(
            vim,
            self.clock,
            server_ids,
            check,
            poll_s=self.poll_s,
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            between=None if run is None else run.check_cancel,
        )

    async def refresh(self, vnf: VnfInstance, servers: dict[str, ServerInfo]) -> VnfInstance:
        """Record where the servers ended up (host, address, metrics URL) and save."""
        vnfd = await self.catalogue.of(vnf)
        updated = []
        for vnfc in vnf.vnfcs:
            server = servers.get(vnfc.server_id)
            if server is None:
                updated.append(vnfc)
                continue
            updated.append(vnfc_on(server, vdu_of(vnfd, vnfc.vdu), vnfc.id, vnfc.created_at))
        if updated == vnf.vnfcs:
            return vnf
        return await self.save(msgspec.structs.replace(vnf, vnfcs=updated))

    async def delete_server(self, vim: VimDriver, server_id: str) -> None:
        with contextlib.suppress(NotFound):  # already gone: what deleting it was for
            await vim.delete_server(server_id)

    async def healthy(self, vim: VimDriver, vnf: VnfInstance, server: ServerInfo) -> str | None:
        return await self.health(vim, vnf, server)


# ----------------------------------------------------------------------
# Helpers without state
# ----------------------------------------------------------------------
def new_vnfc(vdu_id: str) -> dict[str, str]:
    return {"vdu": vdu_id, "vnfc": f"{vdu_id}-{uuid.uuid4().hex[:12]}"}


def ref(vnfc: VnfcInstance) -> Entry:
    """A VNFC as an operation's parameters keep it (enough to list it again)."""
    return {
        "vnfc": vnfc.id,
        "vdu": vnfc.vdu,
        "server": vnfc.server_id,
        "created_at": vnfc.created_at,
    }


def vnfc_of(vnf: VnfInstance, vnfc_id: str) -> VnfcInstance:
    vnfc = vnf.vnfc(vnfc_id)
    if vnfc is None:
        raise NotFound(f"VNF instance {vnf.id} has no VNFC {vnfc_id}")
    return vnfc


def vdu_of(vnfd: Vnfd, vdu_id: str) -> Vdu:
    try:
        return vnfd.vdu(vdu_id)
    except KeyError:
        raise InvalidRequest(f"VNFD {vnfd.id} has no VDU {vdu_id!r}") from None


def with_vnfc(vnf: VnfInstance, vnfc: VnfcInstance) -> VnfInstance:
    return msgspec.structs.replace(vnf, vnfcs=[vnfc if c.id == vnfc.id else c for c in vnf.vnfcs])


def at_level(vnf: VnfInstance, levels: dict[str, int]) -> VnfInstance:
    return msgspec.structs.replace(vnf, scale_levels={**vnf.scale_levels, **levels})
