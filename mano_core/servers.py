"""The servers behind VNFCs: how one is asked for, recorded, and waited on.

A VNFC's server is created from its VDU (:func:`server_spec`), carrying the
VNF and VNFC ids in its metadata so that it can always be found again; its
VNFC record says where it runs and where it is scraped (:func:`vnfc_on`).
:func:`wait_for` polls the VIM, in clock time and with bounded back-off, until
servers reach what an operation needs (:func:`active`, :func:`recovered`,
:func:`moved_from`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bus.clock import Clock
from bus.redis import Backoff
from bus.tasks import raise_if_cancelled
from mano_core.errors import ManoError, PermanentVimError
from mano_core.models import VnfcInstance, VnfInstance
from mano_core.vim.base import Flavor, ServerInfo, ServerSpec, ServerStatus, VimDriver
from mano_core.vnfd import Vdu

Check = Callable[[ServerInfo], bool]
"""True when the server is where it should be; raises when it never will be."""

FIRST_POLL_FRACTION = 1 / 8
"""The first pause of :func:`wait_for`, as a fraction of its longest (``poll_s``): a
server that is nearly there (a stop, a soft reboot) is seen soon, one that takes long
(a boot, a migration) is asked about no more often than every ``poll_s``."""


class OperationTimeout(ManoError):
    """Servers did not get where an operation needs them in time."""


def flavor_of(vnf: VnfInstance, vdu: Vdu) -> Flavor:
    """The flavour of the VDU's servers: a change of flavour's, else the VNFD's."""
    changed = vnf.flavours.get(vdu.id)
    if changed is not None:
        return Flavor(changed.flavour_name(), changed.vcpus, changed.ram_mb, changed.disk_gb)
    flavour = vdu.flavour
    return Flavor(
        name=flavour.name or f"{flavour.vcpus}c-{flavour.ram_mb}m-{flavour.disk_gb}g",
        vcpus=flavour.vcpus,
        ram_mb=flavour.ram_mb,
        disk_gb=flavour.disk_gb,
    )


def server_name(vnf: VnfInstance, vnfc_id: str) -> str:
    """The name the VNFM gives the server of VNFC ``vnfc_id`` (its guest's hostname)."""
    return f"{vnf.name}-{vnfc_id}"


def server_spec(
    vnf: VnfInstance,
    vdu: Vdu,
    vnfc_id: str,
    *,
    image: str,
    server_group: str | None,
    ports: Sequence[str] = (),
    zone: str | None = None,
    host: str | None = None,
) -> ServerSpec:
    """The server of VNFC ``vnfc_id`` of ``vdu``, booted from image id ``image``.

    ``server_group`` is the VDU's group (soft anti-affinity: one host
    failure should not take the whole VDU); ``ports`` its connection points'
    ports; ``zone`` and ``host`` where its grant placed it.
    """
    return ServerSpec(
        name=server_name(vnf, vnfc_id),
        flavor=flavor_of(vnf, vdu),
        image=image,
        metadata={"vnf": vnf.id, "vnfc": vnfc_id, "vdu": vdu.id},
        ports=tuple(ports),
        availability_zone=zone,
        host=host,
        server_group=server_group,
    )


def vnfc_on(server: ServerInfo, vdu: Vdu, vnfc_id: str, created_at: float) -> VnfcInstance:
    """The record of VNFC ``vnfc_id`` running on ``server``."""
    metrics_url = None
    if vdu.exporter is not None and server.address is not None:
        m = vdu.exporter
        metrics_url = f"{m.scheme}://{server.address}:{m.port}{m.path}"
    return VnfcInstance(
        id=vnfc_id,
        vdu=vdu.id,
        server_id=server.id,
        host=server.host,
        address=server.address,
        metrics_url=metrics_url,
        created_at=created_at,
    )


async def wait_for(
    vim: VimDriver,
    clock: Clock,
    server_ids: Sequence[str],
    check: Check,
    *,
    poll_s: float,
    timeout_s: float,
    between: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, ServerInfo]:
    """Poll until ``check`` holds for every server; raises :class:`OperationTimeout`.

    The pauses between rounds start at ``poll_s * FIRST_POLL_FRACTION`` and double up to
    ``poll_s`` (clock seconds). ``between`` runs before each round (it may raise to stop
    the wait: an operator cancelled the operation).
    """
    deadline = clock.now() + timeout_s
    backoff = Backoff(first_s=poll_s * FIRST_POLL_FRACTION, cap_s=poll_s)
    pending = list(dict.fromkeys(server_ids))
    reached: dict[str, ServerInfo] = {}
    while True:
        raise_if_cancelled()
        if between is not None:
            await between()
        for server_id in list(pending):
            server = await vim.get_server(server_id)
            if check(server):
                reached[server_id] = server
                pending.remove(server_id)
        if not pending:
            return reached
        if clock.now() >= deadline:
            raise OperationTimeout(f"servers {', '.join(pending)} not ready after {timeout_s:g}s")
        await clock.sleep(min(backoff.next_delay(), max(0.0, deadline - clock.now())))


def active(server: ServerInfo) -> bool:
    """ACTIVE; ERROR fails at once."""
    if server.status is ServerStatus.ERROR:
        raise PermanentVimError(f"server {server.id} went to ERROR: {server.fault or 'no fault'}")
    return server.status is ServerStatus.ACTIVE


def recovered() -> Check:
    """ACTIVE again; ERROR fails only once the server has been seen out of ERROR.

    A VIM may go on showing the old ERROR for a while after accepting a hard
    reboot or rebuild (Nova keeps ``vm_state`` ERROR until the task ends).
    """
    left_error = False

    def check(server: ServerInfo) -> bool:
        nonlocal left_error
        if server.status is ServerStatus.ERROR:
            return active(server) if left_error else False
        left_error = True
        return server.status is ServerStatus.ACTIVE

    return check


def moved_from(source: str | None) -> Check:
    """On a host other than ``source``, ACTIVE (or VERIFY_RESIZE, for a cold
    migration waiting to be confirmed); back on ``source`` after moving fails."""
    moving = False

    def check(server: ServerInfo) -> bool:
        nonlocal moving
        arrived = server.status is ServerStatus.VERIFY_RESIZE or active(server)
        if not arrived:
            moving = True
            return False
        if server.host != source:
            return True
        if moving:
            raise PermanentVimError(f"migration of server {server.id} ended back on {source}")
        return False

    return check


def shut_off(server: ServerInfo) -> bool:
    """SHUTOFF; ERROR fails at once."""
    if server.status is ServerStatus.ERROR:
        raise PermanentVimError(f"server {server.id} went to ERROR: {server.fault or 'no fault'}")
    return server.status is ServerStatus.SHUTOFF


def resized(flavor: Flavor) -> Check:
    """Waiting in VERIFY_RESIZE (or ACTIVE with ``flavor``, on a VIM that confirms by
    itself); ACTIVE with another flavour after resizing fails."""
    resizing = False

    def check(server: ServerInfo) -> bool:
        nonlocal resizing
        if server.status is ServerStatus.VERIFY_RESIZE:
            return True
        if not active(server):
            resizing = True
            return False
        if server.flavor.name == flavor.name or (
            server.flavor.vcpus,
            server.flavor.ram_mb,
            server.flavor.disk_gb,
        ) == (flavor.vcpus, flavor.ram_mb, flavor.disk_gb):
            return True
        if resizing:
            raise PermanentVimError(f"resize of server {server.id} ended without the new flavour")
        return False

    return check
