"""The VIMs of a deployment, built from the settings.

``vim.driver`` says which: the simulated sites named by ``vim.sites`` (one
simulated cloud each), or the OpenStack cloud ``vim.cloud``; beside them,
one OpenStack VIM per cloud of ``vim.clouds``. They are
built from :data:`DRIVERS` (a table, not a chain of ifs), so adding a
driver is adding an entry. Every driver is wrapped in :class:`~mano_core.vim.timed.TimedVim`
so no caller waits on a VIM that stopped answering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assure.settings import Settings
from bus.clock import Clock
from bus.keys import Keys
from mano_core.errors import ManoError
from mano_core.vim.base import VimDriver
from mano_core.vim.registry import VimRegistry
from mano_core.vim.simulated import SimHost, SimulatedVim
from mano_core.vim.timed import TimedVim


@dataclass
class Sites:
    """The deployment's VIMs: ``registry`` for the VNFM and collectors (behind a
    deadline), and the simulated ones as they are, to inject faults."""

    registry: VimRegistry
    simulated: dict[str, SimulatedVim] = field(default_factory=dict)


class SiteError(RuntimeError):
    """A VIM of the settings cannot be used; the message says why."""


VimFactory = Callable[[Settings, Clock, Any, Keys, int], list[VimDriver]]
"""``(settings, clock, redis, keys, seed) -> drivers``; runs in a thread (it may block)."""


def simulated_sites(
    settings: Settings, clock: Clock, redis: Any, keys: Keys, seed: int = 0
) -> list[VimDriver]:
    """One simulated VIM per name of ``vim.sites``."""
    return [simulated_site(settings, clock, redis, keys, site, seed) for site in settings.vim.sites]


def simulated_site(  # noqa: PLR0917 - settings, then where the cloud lives
    settings: Settings, clock: Clock, redis: Any, keys: Keys, site: str, seed: int = 0
) -> SimulatedVim:
    """The simulated VIM of ``site``, sized by the settings, its state in ``redis``."""
    vim = settings.vim
    hosts = [
        SimHost(f"{site}-compute-{i + 1}", vim.host_vcpus, vim.host_ram_mb, vim.host_disk_gb)
        for i in range(vim.hosts)
    ]
    return SimulatedVim(
        clock,
        redis,
        keys,
        hosts,
        name=site,
        boot_s=vim.boot,
        reboot_s=vim.reboot,
        migrate_s=vim.migrate,
        seed=seed,
    )


def openstack_vims(
    settings: Settings, clock: Clock, _redis: Any, _keys: Keys, _seed: int = 0
) -> list[VimDriver]:
    """The OpenStack VIM of ``vim.cloud`` (reads ``clouds.yaml``, so it blocks)."""
    return [openstack_vim(settings, clock, settings.vim.cloud)]


def openstack_vim(settings: Settings, clock: Clock, cloud: str | None) -> VimDriver:
    """The OpenStack VIM of ``cloud`` (None: ``OS_CLOUD``), named after it."""
    vim = settings.vim
    try:
        from mano_core.vim.openstack import OpenStackVim  # noqa: PLC0415 - an optional extra
    except ImportError as exc:
        raise SiteError(
            f"vim.driver openstack needs openstacksdk ({exc}): pip install 'nfv-assure[openstack]'"
        ) from exc
    try:
        return OpenStackVim.connect(
            cloud or "openstack",
            cloud=cloud,
            networks=[n.strip() for n in vim.networks.split(",") if n.strip()],
            api_timeout_s=vim.call_timeout,
            clock=clock,
        )
    except ManoError as exc:
        raise SiteError(f"cannot use the OpenStack cloud {cloud or '(OS_CLOUD)'}: {exc}") from exc


DRIVERS: dict[str, VimFactory] = {"simulated": simulated_sites, "openstack": openstack_vims}
"""How to build the VIMs, by ``vim.driver``."""


async def build_sites(
    settings: Settings, clock: Clock, redis: Any, keys: Keys, seed: int = 0
) -> Sites:
    """Every VIM of the settings; raises :class:`SiteError` when one cannot be used."""
    factory = DRIVERS.get(settings.vim.driver)
    if factory is None:
        raise SiteError(f"VIM driver {settings.vim.driver!r} is not available")
    drivers = await asyncio.to_thread(factory, settings, clock, redis, keys, seed)
    try:
        for cloud in settings.vim.clouds:
            drivers.append(await asyncio.to_thread(openstack_vim, settings, clock, cloud))
        names = [d.name for d in drivers]
        if len(set(names)) != len(names):
            raise SiteError(f"two VIMs have one name ({', '.join(names)}): name each once")
    except SiteError:
        for driver in drivers:
            await driver.aclose()
        raise
    return Sites(
        registry=VimRegistry([TimedVim(d, settings.vim.call_timeout) for d in drivers]),
        simulated={d.name: d for d in drivers if isinstance(d, SimulatedVim)},
    )
