"""How to get into each VNFC's exporter: TLS and credentials, from its VDU's ``exporter`` section.

The VNFD says, per VDU (:class:`mano_core.vnfd.Exporter`), which CA signs
the exporters' certificates, which client certificate the collector shows,
whether verification is skipped, and where the bearer token or the basic
auth password is kept: a file on the collector's host, so that no secret
lives in the descriptor. :class:`ExporterAccess` turns that into the
:class:`~collector.targets.ScrapeOptions` of each VNFC, once per discovery:
descriptors are read once per version (they are immutable), credential
files every cycle (in a worker thread), so a rotated token is sent from
the next cycle on. A file that cannot be read gives the VNFC's options a
``failure`` naming it: its scrapes fail (``up`` 0) with that reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from collector.targets import ScrapeOptions
from mano_core.errors import NotFound
from mano_core.models import VnfInstance
from mano_core.vnfd import Exporter, Vnfd

log = logging.getLogger(__name__)

AccessKey = tuple[str, str]
"""``(VNF instance id, VDU id)``."""


class VnfdReader(Protocol):
    """The part of :class:`mano_core.catalogue.Catalogue` read here."""

    async def of(self, vnf: VnfInstance) -> Vnfd: ...


class ExporterAccess:
    """The scrape options of the VNFCs whose VDU's exporter asks for TLS or credentials."""

    def __init__(self, vnfds: VnfdReader) -> None:
        self._vnfds = vnfds
        self._exporters: dict[tuple[str, str], dict[str, Exporter]] = {}
        """``(VNFD id, version)`` -> the exporters of its VDUs that need options."""

    async def options(self, vnfs: Iterable[VnfInstance]) -> dict[AccessKey, ScrapeOptions]:
        """The options of each ``(vnf, vdu)`` that has some (the others scrape plainly)."""
        wanted: dict[AccessKey, Exporter] = {}
        for vnf in vnfs:
            for vdu, exporter in (await self._of(vnf)).items():
                wanted[(vnf.id, vdu)] = exporter
        if not wanted:
            return {}
        files = {path for e in wanted.values() for path in _files_of(e)}
        contents = await asyncio.to_thread(_read_files, files)
        return {key: options_of(exporter, contents) for key, exporter in wanted.items()}

    async def _of(self, vnf: VnfInstance) -> Mapping[str, Exporter]:
        version = vnf.vnfd_version
        cached = self._exporters.get((vnf.vnfd_id, version)) if version is not None else None
        if cached is not None:
            return cached
        try:
            vnfd = await self._vnfds.of(vnf)
        except NotFound:
            log.warning("VNF %s: its VNFD %s is not in the catalogue", vnf.id, vnf.vnfd_id)
            return {}
        found = {
            vdu.id: vdu.exporter
            for vdu in vnfd.vdus
            if vdu.exporter is not None and _needs_options(vdu.exporter)
        }
        if version is not None:
            self._exporters[(vnf.vnfd_id, version)] = found
        return found


def _needs_options(exporter: Exporter) -> bool:
    return (
        exporter.tls is not None
        or exporter.bearer_token_file is not None
        or exporter.basic_auth is not None
    )


def _files_of(exporter: Exporter) -> list[str]:
    files = []
    if exporter.bearer_token_file is not None:
        files.append(exporter.bearer_token_file)
    if exporter.basic_auth is not None:
        files.append(exporter.basic_auth.password_file)
    return files


def _read_files(paths: Iterable[str]) -> dict[str, str | OSError]:
    out: dict[str, str | OSError] = {}
    for path in paths:
        try:
            out[path] = Path(path).read_text().strip()
        except OSError as exc:
            out[path] = exc
    return out


def options_of(exporter: Exporter, contents: Mapping[str, str | OSError]) -> ScrapeOptions:
    """The scrape options ``exporter`` asks for, with the credential files' ``contents``."""
    tls = exporter.tls
    failure = None
    bearer = basic = None
    if exporter.bearer_token_file is not None:
        read = contents[exporter.bearer_token_file]
        if isinstance(read, OSError):
            failure = f"cannot read bearer_token_file {exporter.bearer_token_file}: {read.strerror}"
        else:
            bearer = read
    if exporter.basic_auth is not None:
        read = contents[exporter.basic_auth.password_file]
        if isinstance(read, OSError):
            failure = (
                f"cannot read basic_auth.password_file {exporter.basic_auth.password_file}: "
                f"{read.strerror}"
            )
        else:
            basic = (exporter.basic_auth.username, read)
    return ScrapeOptions(
        bearer_token=bearer,
        basic_auth=basic,
        tls_ca_file=tls.ca_file if tls is not None else None,
        tls_cert_file=tls.cert_file if tls is not None else None,
        tls_key_file=tls.key_file if tls is not None else None,
        tls_insecure_skip_verify=tls.insecure_skip_verify if tls is not None else False,
        failure=failure,
    )
