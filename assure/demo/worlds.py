"""The worlds the demo plays its scenario in: the clouds under the NS's VNFs, and their faults.

The runner asks each VIM's world for the truth about servers and hosts
(what the simulated VNF applications' load follows), to make the planned
faults happen, and at the end to check that nothing of the NS is left.
:class:`SimulatedWorld` is a simulated site of the platform;
:class:`~assure.demo.openstack_world.OpenStackWorld` a real OpenStack,
reached through openstacksdk behind the platform's back.

On OpenStack (:func:`demo_settings`) the NS spans the cloud and one
simulated site: the NSD's rule keeps the firewall and the balancer on VIMs
of their own, the firewall (which the faults hit) is pinned to the cloud,
and the balancer goes to the site.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import yaml

from assure.demo.progress import Progress
from assure.platform import Platform, PlatformError
from assure.settings import Settings
from assure.simulation.workload import Infrastructure
from mano_core.vim.simulated import SimulatedVim

DEFAULT_SPEEDS = {"simulated": 20.0, "openstack": 5.0}
"""Scenario seconds per wall second by ``vim.driver``, unless ``--speed`` says otherwise:
a real cloud works in real time (a boot takes seconds, an evacuation ten or more)."""


class DemoWorld(Protocol):
    @property
    def infrastructure(self) -> Infrastructure:
        """What the workload reads the servers' and hosts' truth from."""
        ...

    @property
    def keeps_resources(self) -> bool:
        """Whether what the demo created outlives the run unless it is terminated."""
        ...

    async def crash(self, server_id: str) -> str:
        """Take the server's VNFC out of service; says what was done."""
        ...

    async def degrade(self, host: str) -> str:
        """Make the host faulty; says what was done."""
        ...

    async def finish(self, vnf_ids: list[str], progress: Progress) -> list[str]:
        """After the NS is terminated: the problems (what of ``vnf_ids`` is left)."""
        ...

    async def aclose(self) -> None: ...


class SimulatedWorld:
    """A simulated site of the platform, changed through its controls."""

    keeps_resources = False
    """The simulated clouds live in the run's Redis."""

    def __init__(self, vim: SimulatedVim) -> None:
        self.vim = vim

    @property
    def infrastructure(self) -> SimulatedVim:
        return self.vim

    async def crash(self, server_id: str) -> str:
        await self.vim.crash_server(server_id)
        return f"crashed (server {server_id})"

    async def degrade(self, host: str) -> str:
        await self.vim.degrade_host(host)
        return "degraded"

    async def finish(self, vnf_ids: list[str], progress: Progress) -> list[str]:
        return []

    async def aclose(self) -> None:
        """The simulated VIM is the platform's: it closes it."""


def demo_settings(
    settings: Settings, driver: str | None, environ: Mapping[str, str]
) -> tuple[Settings, str | None]:
    """The settings the demo runs on (``driver``: ``--vim``, None: ``vim.driver``), and the
    VIM the firewall is pinned to (None: where the NFVO places it)."""
    vim = settings.vim
    if (driver or vim.driver) != "openstack":
        return dataclasses.replace(settings, vim=dataclasses.replace(vim, driver="simulated")), None
    cloud = vim.cloud or environ.get("OS_CLOUD")
    if not cloud:
        raise PlatformError("the demo on OpenStack needs a cloud: set vim.cloud or OS_CLOUD")
    on_openstack = dataclasses.replace(
        vim,
        driver="simulated",
        sites=vim.sites[:1],
        clouds=(cloud, *(c for c in vim.clouds if c != cloud)),
    )
    return dataclasses.replace(settings, vim=on_openstack), cloud


def pinned_nsd(text: str, member: str, vim: str) -> str:
    """The NSD ``text`` with one more placement rule: ``member`` only on VIM ``vim``."""
    nsd: dict[str, Any] = yaml.safe_load(text)
    rule = {"type": "affinity", "scope": "vim", "members": [member], "vims": [vim]}
    nsd["placement"] = [*(nsd.get("placement") or []), rule]
    return yaml.safe_dump(nsd, sort_keys=False)


async def open_worlds(
    platform: Platform, settings: Settings, vims: Iterable[str]
) -> dict[str, DemoWorld]:
    """The world of each of ``vims``: a simulated site's, else its OpenStack cloud's
    (the VIM is named after its cloud)."""
    worlds: dict[str, DemoWorld] = {}
    try:
        for name in sorted(set(vims)):
            sim = platform.sims.get(name)
            if sim is not None:
                worlds[name] = SimulatedWorld(sim)
                continue
            from assure.demo.openstack_world import OpenStackWorld  # noqa: PLC0415 - optional

            networks = [n.strip() for n in settings.vim.networks.split(",") if n.strip()]
            worlds[name] = await OpenStackWorld.connect(name, networks)
    except BaseException:
        for world in worlds.values():
            await world.aclose()
        raise
    return worlds
