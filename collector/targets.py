"""Target discovery: what to scrape and how to label it, read from the inventory each cycle.

Nothing is cached between cycles: every cycle takes one snapshot of the
inventory (:class:`Topology`), so a VNFC added by a scale-out is scraped on
the next cycle and a removed one is dropped, without a restart. The same
snapshot maps VIM server ids to the VNFC running on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from mano_core.models import VnfcInstance, VnfInstance


class InventoryReader(Protocol):
    """The part of :class:`mano_core.inventory.Inventory` the collector reads."""

    async def list(self) -> list[VnfInstance]: ...


@dataclass(frozen=True)
class ScrapeOptions:
    """How to scrape a target, as Prometheus's scrape config says it (all optional)."""

    timeout_s: float | None = None
    """Wall seconds before the scrape gives up; None: the collector's default."""
    bearer_token: str | None = None
    """Sent as ``Authorization: Bearer <token>``."""
    basic_auth: tuple[str, str] | None = None
    """``(user, password)`` for HTTP basic auth."""
    tls_ca_file: str | None = None
    """CA bundle that signs the exporter's certificate (https URLs); None: the system's."""
    tls_cert_file: str | None = None
    """Client certificate for mutual TLS."""
    tls_key_file: str | None = None
    """Key of the client certificate."""
    tls_insecure_skip_verify: bool = False
    """Do not verify the exporter's certificate (test set-ups only)."""
    honor_labels: bool = False
    """A label the exposition sets wins over the target's (else it is kept as
    ``exported_<name>``)."""
    honor_timestamps: bool = False
    """Keep the timestamps the exposition carries (else: the scrape's, in clock time)."""
    body_limit: int = 0
    """Largest body taken, after decompression, in bytes; 0: the collector's default."""
    sample_limit: int = 0
    """More samples than this fail the scrape; 0: no limit."""
    label_value_limit: int = 4096
    """A label value longer than this (bytes) fails the scrape; 0: no limit."""
    labels: tuple[tuple[str, str], ...] = ()
    """Labels added to every series of the target (the inventory's labels win)."""
    failure: str | None = None
    """Why the target cannot be scraped as configured (a credentials file that cannot be
    read): each scrape fails with it, without a request."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One Prometheus endpoint to scrape and the labels its samples get."""

    url: str
    labels: Mapping[str, str]
    """``vnf``, ``vnfc``, ``vnfd`` and ``host`` (when known)."""
    options: ScrapeOptions = ScrapeOptions()

    @property
    def name(self) -> str:
        """How errors name the target: the VNFC id and the URL."""
        vnfc = self.labels.get("vnfc")
        return f"vnfc {vnfc} ({self.url})" if vnfc else self.url


def vnfc_labels(vnf: VnfInstance, vnfc: VnfcInstance) -> dict[str, str]:
    """The labels of every series about ``vnfc``."""
    labels = {"vnf": vnf.id, "vnfc": vnfc.id, "vnfd": vnf.vnfd_id}
    if vnfc.host:
        labels["host"] = vnfc.host
    return labels


@dataclass(frozen=True)
class Topology:
    """One snapshot of the inventory, as the collector needs it."""

    targets: tuple[ScrapeTarget, ...] = ()
    servers: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    """VIM server id -> the labels of the VNFC running on it."""

    @classmethod
    def of(
        cls,
        vnfs: Iterable[VnfInstance],
        options: Mapping[tuple[str, str], ScrapeOptions] | None = None,
    ) -> Topology:
        """``options``: by ``(VNF id, VDU id)``, for the VNFCs that need some."""
        targets: list[ScrapeTarget] = []
        servers: dict[str, Mapping[str, str]] = {}
        plain = ScrapeOptions()
        for vnf in vnfs:
            for vnfc in vnf.vnfcs:
                labels = MappingProxyType(vnfc_labels(vnf, vnfc))
                servers[vnfc.server_id] = labels
                if vnfc.metrics_url:
                    chosen = options.get((vnf.id, vnfc.vdu), plain) if options else plain
                    targets.append(ScrapeTarget(vnfc.metrics_url, labels, chosen))
        return cls(tuple(targets), MappingProxyType(servers))


class AccessReader(Protocol):
    """What :class:`collector.exporter_access.ExporterAccess` answers."""

    async def options(
        self, vnfs: Iterable[VnfInstance]
    ) -> Mapping[tuple[str, str], ScrapeOptions]: ...


async def discover(inventory: InventoryReader, access: AccessReader | None = None) -> Topology:
    """A fresh snapshot of the inventory (one read of all VNF records), with the scrape
    options ``access`` gives the VNFCs' exporters."""
    vnfs = await inventory.list()
    return Topology.of(vnfs, await access.options(vnfs) if access is not None else None)
