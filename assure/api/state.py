"""What the application holds: its collaborators, typed, under :class:`aiohttp.web.AppKey` s."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from assure.api.metrics import MetricsHub
from assure.api.routing import Route
from assure.api.tokens import TokenRecord, TokenStore
from assure.settings import ApiSettings
from bus.clock import Clock
from bus.keys import Keys
from mano_core.catalogue import Catalogue
from mano_core.inventory import Inventory
from mano_core.lcm import OpOccStore
from mano_core.nfvo.inventory import NsInventory
from mano_core.nfvo.lcm import NsLcm
from mano_core.onboarding import Onboarding
from mano_core.vim.base import VimDriver
from mano_core.vnfm import Vnfm
from policy.schema import KpiPolicy


@dataclass
class ApiDeps:
    """Everything the handlers use, built by whoever starts the server."""

    settings: ApiSettings
    redis: Any
    keys: Keys
    clock: Clock
    catalogue: Catalogue
    inventory: Inventory
    ops: OpOccStore
    vnfm: Vnfm
    vims: Sequence[VimDriver]
    """Every VIM this process drives; ``/readyz`` needs each to answer."""
    tokens: TokenStore
    onboarding: Onboarding
    ns_inventory: NsInventory
    ns_lcm: NsLcm
    """The NFVO: network service instances and their lifecycle."""
    policies: Sequence[KpiPolicy]
    """The policies loaded at start (:mod:`assure.api.policies_in_force` has those in force)."""
    registry: CollectorRegistry
    """Where the server's own metrics live; ``/metrics`` renders it."""
    policy_dir: Path | None = None
    """The policy directory they came from, which the API re-reads as the workers do."""
    policies_reload: bool = True
    """Whether the policy workers hot-reload (so that a replacement takes effect)."""
    lease_ttl_s: float = 600.0
    """TTL of the per-VNF lease the API's lifecycle operations hold (as the actuator's)."""
    stream_maxlen: int = 100_000
    """Event streams the server writes (violations) keep about this many entries."""
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    """Work the server started that outlives its request (lifecycle operations)."""
    vnf_tasks: dict[str, tuple[str, asyncio.Task[Any]]] = field(default_factory=dict)
    """VNF instance id -> (operation id, task): the operation this server runs on it now."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the server shuts down: long-lived responses (event streams) end."""


def route_key(method: str, canonical: str) -> str:
    return f"{method} {canonical}"


DEPS = web.AppKey("deps", ApiDeps)
METRICS = web.AppKey("metrics", MetricsHub)
ROUTE_OF = web.AppKey("route_of", dict[str, Route])
"""``"METHOD /path/{var}"`` -> its row of the route table."""
PRINCIPAL = web.RequestKey("principal", TokenRecord)
