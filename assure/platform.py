"""The assembled platform: shared parts built once, and the stage roles run on them.

:class:`Platform` owns the Redis connection (starting a private
``redis-server`` when no URL is configured), the catalogue, inventory, LCM
operation store, the VIMs of every site (:mod:`assure.vims`), the VNFM and
the NFVO (:class:`~mano_core.nfvo.lcm.NsLcm`, whose granter the VNFM asks
in every process, so NS members keep to their placement).
:meth:`Platform.run_roles` runs any
subset of the stage roles (``collector``, ``analytics``, ``policy``,
``actuator``) in this process until told to stop, each built from its entry
in :data:`assure.roles.ROLE_TABLE`; each role talks to the others only
through Redis, so roles can also run in separate processes.

The policy and actuator roles share their work among all their workers
(consumer groups). The collector and analytics roles split theirs by shard
(:mod:`bus.shards`): each target, and each VNF, has one owner at a time, so
two replicas of ``nfv-assure run`` never scrape twice, nor judge a VNF on
half of its samples.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from assure.embedded_redis import EmbeddedRedis, RedisUnavailable
from assure.heartbeat import beat
from assure.settings import Settings
from assure.vims import SiteError, build_sites
from bus.clock import Clock
from bus.keys import Keys
from bus.redis import connect
from bus.tasks import cancel_and_wait
from mano_core.catalogue import Catalogue
from mano_core.descriptor import DescriptorError
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.nfvo.granter import NfvoGranter
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.lcm import NsLcm
from mano_core.onboarding import Onboarding
from mano_core.vim.base import VimDriver
from mano_core.vim.registry import VimRegistry
from mano_core.vim.simulated import SimulatedVim
from mano_core.vnfd import Vnfd
from mano_core.vnfm import Vnfm
from policy.loader import LoadResult, load_policies

log = logging.getLogger(__name__)

ROLES = ("collector", "analytics", "policy", "actuator")
"""The stage roles: what ``nfv-assure run`` runs by default."""
ALL_ROLES = (*ROLES, "api")
"""Every role, the HTTP server's included: what ``nfv-assure serve`` runs."""


class PlatformError(RuntimeError):
    """The platform cannot start as configured; the message says why."""


@dataclass
class Platform:
    """Everything the roles share; build it with :meth:`open`, release with :meth:`aclose`."""

    settings: Settings
    clock: Clock
    redis: Any
    keys: Keys
    vims: VimRegistry
    """Every VIM (site) by name, each behind a deadline (:class:`TimedVim`)."""
    sims: dict[str, SimulatedVim]
    """The simulated VIMs among them, undecorated: where faults are injected."""
    catalogue: Catalogue
    inventory: Inventory
    ops: OpOccStore
    vnfm: Vnfm
    ns_inventory: NsInventory
    nslcm: NsLcm
    """The NFVO: network service instances and their lifecycle, over :attr:`vnfm`."""
    onboarding: Onboarding
    embedded: EmbeddedRedis | None = None
    roles: tuple[str, ...] = ()
    """The roles :meth:`run_roles` runs in this process (set when it starts them)."""
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    """This process's metrics: roles add their own; the API role serves them."""

    @classmethod
    async def open(
        cls,
        settings: Settings,
        clock: Clock,
        *,
        data_dir: Path | None = None,
        seed: int = 0,
    ) -> Platform:
        """Connect to Redis (or start a private one) and build the shared parts.

        ``data_dir``: when no Redis URL is set, the private redis-server
        persists into this directory (None: it keeps nothing). ``seed``
        makes the ids of a new simulated cloud reproducible.
        """
        embedded: EmbeddedRedis | None = None
        url = settings.redis.url
        if url is None:
            embedded = EmbeddedRedis(data_dir=data_dir)
            try:
                url = await embedded.start()
            except RedisUnavailable as exc:
                raise PlatformError(str(exc)) from exc
        redis = connect(url, cluster=settings.redis.cluster)
        try:
            await redis.ping()
        except Exception as exc:
            await redis.aclose()
            if embedded is not None:
                await embedded.stop()
            raise PlatformError(f"cannot reach Redis at {url}: {exc}") from exc
        keys = Keys(prefix=settings.redis.prefix)
        try:
            sites = await build_sites(settings, clock, redis, keys, seed)
        except SiteError as exc:
            await redis.aclose()
            if embedded is not None:
                await embedded.stop()
            raise PlatformError(str(exc)) from exc
        catalogue = Catalogue(redis, keys)
        inventory = Inventory(redis, keys)
        ops = OpOccStore(redis, keys, clock, notifications_maxlen=settings.redis.stream_maxlen)
        ns_inventory = NsInventory(redis, keys)
        vnfm = Vnfm(
            sites.registry,
            inventory,
            catalogue,
            ops,
            clock,
            granter=NfvoGranter(sites.registry, ns_inventory, inventory, catalogue),
            timeout_s=settings.actuator.op_timeout,
        )
        nslcm = NsLcm(
            vnfm, ns_inventory, redis, keys, clock, lease_ttl_s=settings.actuator.lease_ttl
        )
        # Occurrences left running by a process that stopped are settled now.
        await ops.recover()
        await nslcm.recover()
        onboarding = Onboarding(catalogue, inventory, ns_inventory, dict(sites.registry))
        return cls(
            settings=settings,
            clock=clock,
            redis=redis,
            keys=keys,
            vims=sites.registry,
            sims=sites.simulated,
            catalogue=catalogue,
            inventory=inventory,
            ops=ops,
            vnfm=vnfm,
            ns_inventory=ns_inventory,
            nslcm=nslcm,
            onboarding=onboarding,
            embedded=embedded,
        )

    async def onboard_dir(self, directory: Path) -> list[Vnfd]:
        """Onboard every ``*.yaml`` VNFD of ``directory``; a bad file stops start-up.

        A version already onboarded with the same content is left as it is
        (with its acceptance state).
        """
        files = await asyncio.to_thread(_read_files, directory)
        vnfds: list[Vnfd] = []
        for path, text in files:
            try:
                entry = await self.onboarding.vnfd(text, str(path))
            except DescriptorError as exc:
                raise PlatformError(str(exc)) from exc
            vnfd = await self.catalogue.get(entry.id, entry.version)
            await self.publish_images(vnfd)
            vnfds.append(vnfd)
        return vnfds

    async def publish_images(self, vnfd: Vnfd) -> None:
        """Put the VNFD's software images on every simulated VIM, as package onboarding does."""
        for sim in self.sims.values():
            for vdu in vnfd.vdus:
                await sim.add_image(vdu.image.name, vdu.image.version)

    @property
    def vim(self) -> VimDriver:
        """The default VIM (the first site)."""
        return self.vims[self.vims.default]

    def load_policies(self, source: Path | None = None) -> LoadResult:
        return load_policies(source or self.settings.policy.policy_dir)

    async def run_roles(
        self,
        roles: Sequence[str],
        stop: asyncio.Event,
        policies: LoadResult | None = None,
    ) -> None:
        """Run ``roles`` until ``stop`` is set; a role that crashes stops the others."""
        from assure.roles import ROLE_TABLE  # noqa: PLC0415 - the roles import the platform

        unknown = sorted(set(roles) - set(ROLE_TABLE))
        if unknown:
            known = ", ".join(ALL_ROLES)
            raise PlatformError(f"unknown role(s) {', '.join(unknown)}; roles: {known}")
        if policies is None:
            policies = self.load_policies()
        self.roles = tuple(name for name in ALL_ROLES if name in roles)
        tasks: list[asyncio.Task[None]] = []
        for name in ALL_ROLES:
            if name not in roles:
                continue
            role = ROLE_TABLE[name]
            tasks.append(asyncio.create_task(role.start(self, policies)(stop), name=name))
        if not tasks:
            return
        beats = asyncio.create_task(
            beat(self.redis, self.keys, {t.get_name(): t for t in tasks}, stop), name="heartbeats"
        )
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    stop.set()
                    raise PlatformError(f"role {task.get_name()} failed") from task.exception()
        finally:
            stop.set()
            # Roles finish what they hold (an operation under way) within
            # the grace period; what is left then is cancelled, and awaited.
            _, late = await asyncio.wait(tasks, timeout=10)
            await asyncio.wait([beats], timeout=2)  # it drops the heartbeats
            await cancel_and_wait([*late, beats])

    async def aclose(self) -> None:
        await self.vnfm.aclose()
        await self.vims.aclose()
        await self.redis.aclose()
        if self.embedded is not None:
            await self.embedded.stop()


def _read_files(directory: Path) -> list[tuple[Path, str]]:
    files = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            files.append((path, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise PlatformError(f"{path}: cannot read: {exc}") from exc
    return files
