"""The NFVO's test world: the real platform (two simulated sites in Redis) in accelerated time.

The shipped VNFDs (``vfw``: two 2-vCPU VNFCs, ``vlb``: two 1-vCPU VNFCs)
are onboarded with their images; NSDs are onboarded from text by each test.
:meth:`NfvoWorld.cloud` lists everything on every VIM, to tell what an
operation left behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from assure.platform import Platform
from assure.settings import DEFAULTS_DIR, Settings
from bus.clock import ScaledClock
from mano_core.models import VnfInstance
from mano_core.nfvo.lcm import NsLcm
from mano_core.nfvo.records import NsInstance
from mano_core.vim.simulated import SimulatedVim

SPEED = 200.0
EDGE = (DEFAULTS_DIR / "nsds" / "edge.yaml").read_text()


@dataclass
class NfvoWorld:
    platform: Platform

    @property
    def nslcm(self) -> NsLcm:
        return self.platform.nslcm

    @property
    def sims(self) -> dict[str, SimulatedVim]:
        return self.platform.sims

    async def onboard_nsd(self, text: str) -> None:
        await self.platform.onboarding.nsd(text, "<test>")

    async def vnfs(self, ns: NsInstance) -> dict[str, VnfInstance]:
        """The NS's member VNF instances by member key (``fw-1``)."""
        return {
            v.key: await self.platform.inventory.get(v.vnf_id)
            for v in ns.vnfs
            if v.vnf_id is not None
        }

    async def cloud(self) -> dict[str, dict[str, list[str]]]:
        """Per VIM, the names of its servers, ports, networks, subnets and server groups."""
        out: dict[str, dict[str, list[str]]] = {}
        for name, sim in self.sims.items():
            out[name] = {
                "servers": [s.name for s in await sim.list_servers()],
                "ports": [p.name for p in await sim.list_ports()],
                "networks": [n.name for n in await sim.list_networks()],
                "subnets": [s.name for s in await sim.list_subnets()],
                "groups": [g.name for g in await sim.list_server_groups()],
            }
        return out

    async def empty(self) -> bool:
        return all(not items for vim in (await self.cloud()).values() for items in vim.values())


def fast(settings: Settings, **vim: Any) -> Settings:
    """The settings with VIM timings cut short (clock seconds) and ``vim`` overrides."""
    return dataclasses.replace(
        settings,
        vim=dataclasses.replace(settings.vim, **{"boot": 2.0, "reboot": 1.0, **vim}),
    )


@contextlib.asynccontextmanager
async def nfvo_world(settings: Settings, **vim: Any) -> AsyncIterator[NfvoWorld]:
    platform = await Platform.open(fast(settings, **vim), ScaledClock(SPEED))
    try:
        await platform.onboard_dir(platform.settings.policy.vnfd_dir)
        yield NfvoWorld(platform)
    finally:
        await platform.aclose()
