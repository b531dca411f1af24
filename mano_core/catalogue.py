"""The catalogue: onboarded VNFDs and NSDs in Redis, every version kept.

Each kind (``vnfd``, ``nsd``) is one Redis hash of entries, field
``ID@VERSION``, and a hash of the version onboarded last per id (the one
used when a version is not named). An entry holds the descriptor, the YAML
it was onboarded from, and its acceptance state: ``not_validated`` until
onboarding acceptance ran, then ``validated`` (with the KPIs it measured)
or ``rejected`` (with the reasons). Both hashes share one hash tag, so a
write is one transaction: an entry is never visible half written.

A version, once onboarded, is immutable: onboarding the same content again
changes nothing; other content under the same version is refused (give it
a new version). This module stores what it is given; the checks that decide
whether a descriptor may be onboarded are :mod:`mano_core.onboarding`'s.
"""

from __future__ import annotations

import builtins
import logging
from typing import Any, Literal, TypeVar

import msgspec
from pydantic import BaseModel, ValidationError

from bus.clock import Clock, WallClock
from bus.keys import Keys
from bus.redis import reply_text as text
from mano_core.errors import CorruptRecord, InvalidRequest, NotFound
from mano_core.models import VnfInstance
from mano_core.nsd import Nsd
from mano_core.vnfd import Vnfd

log = logging.getLogger(__name__)

Kind = Literal["vnfd", "nsd"]
Acceptance = Literal["not_validated", "validated", "rejected"]
M = TypeVar("M", bound=BaseModel)


class VersionConflict(InvalidRequest):
    """Other content is already onboarded under this id and version."""


class CatalogueEntry(msgspec.Struct, frozen=True):
    """One onboarded version of one descriptor."""

    kind: Kind
    id: str
    version: str
    descriptor: str
    """The descriptor as JSON (its model, dumped by alias)."""
    source: str
    """The YAML it was onboarded from (empty when given as a model)."""
    onboarded_at: float
    acceptance: Acceptance = "not_validated"
    measured: dict[str, float] = {}
    """What onboarding acceptance measured, per KPI (the worst value seen)."""
    reasons: list[str] = []
    """Why acceptance rejected it (or what it could not measure)."""
    accepted_at: float | None = None
    accepted_on: str | None = None
    """The VIM acceptance ran on."""

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CatalogueEntry)


class Catalogue:
    """Onboarded descriptors by kind, id and version."""

    def __init__(self, redis: Any, keys: Keys, clock: Clock | None = None) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock or WallClock()

    # -- writing ------------------------------------------------------------
    async def onboard(self, vnfd: Vnfd, source: str = "") -> CatalogueEntry:
        """Store a VNFD version; raises :class:`VersionConflict` (see the module)."""
        return await self.store("vnfd", vnfd.id, vnfd.version, vnfd, source)

    async def onboard_nsd(self, nsd: Nsd, source: str = "") -> CatalogueEntry:
        """Store an NSD version; raises :class:`VersionConflict` (see the module)."""
        return await self.store("nsd", nsd.id, nsd.version, nsd, source)

    async def store(
        self, kind: Kind, item_id: str, version: str, model: BaseModel, source: str
    ) -> CatalogueEntry:
        descriptor = model.model_dump_json(by_alias=True)
        existing = await self._find(kind, item_id, version)
        if existing is not None:
            if existing.descriptor != descriptor:
                raise VersionConflict(
                    f"{kind.upper()} {item_id} version {version} is already onboarded with "
                    "other content: give this one a new version"
                )
            return existing
        entry = CatalogueEntry(
            kind=kind,
            id=item_id,
            version=version,
            descriptor=descriptor,
            source=source,
            onboarded_at=self._clock.now(),
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.catalogue(kind), entry.ref, _encoder.encode(entry))
            pipe.hset(self._keys.catalogue_latest(kind), item_id, version)
            await pipe.execute()
        return entry

    async def record_acceptance(
        self,
        item_id: str,
        version: str,
        acceptance: Acceptance,
        *,
        measured: dict[str, float],
        reasons: builtins.list[str],
        vim: str,
    ) -> CatalogueEntry:
        """Mark a VNFD version validated or rejected, with what acceptance found."""
        entry = await self.entry("vnfd", item_id, version)
        entry = msgspec.structs.replace(
            entry,
            acceptance=acceptance,
            measured=measured,
            reasons=reasons,
            accepted_at=self._clock.now(),
            accepted_on=vim,
        )
        await self._redis.hset(self._keys.catalogue("vnfd"), entry.ref, _encoder.encode(entry))
        return entry

    async def remove(self, kind: Kind, item_id: str, version: str | None = None) -> None:
        """Forget one version (or every version) of a descriptor; raises :class:`NotFound`."""
        entries = await self.entries(kind, item_id)
        gone = [e for e in entries if version is None or e.version == version]
        if not gone:
            raise NotFound(_missing(kind, item_id, version))
        left = sorted((e for e in entries if e not in gone), key=lambda e: e.onboarded_at)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.catalogue(kind), *(e.ref for e in gone))
            if left:
                pipe.hset(self._keys.catalogue_latest(kind), item_id, left[-1].version)
            else:
                pipe.hdel(self._keys.catalogue_latest(kind), item_id)
            await pipe.execute()

    # -- reading ------------------------------------------------------------
    async def entry(self, kind: Kind, item_id: str, version: str | None = None) -> CatalogueEntry:
        """One version's entry (the latest when ``version`` is None); raises :class:`NotFound`."""
        if version is None:
            latest = await self._redis.hget(self._keys.catalogue_latest(kind), item_id)
            if latest is None:
                raise NotFound(_missing(kind, item_id, None))
            version = text(latest)
        found = await self._find(kind, item_id, version)
        if found is None:
            raise NotFound(_missing(kind, item_id, version))
        return found

    async def get(self, vnfd_id: str, version: str | None = None) -> Vnfd:
        """The VNFD ``vnfd_id`` (its latest version unless named); raises :class:`NotFound`."""
        return _model(await self.entry("vnfd", vnfd_id, version), Vnfd)

    async def of(self, vnf: VnfInstance) -> Vnfd:
        """The VNFD version a VNF instance was instantiated from."""
        return await self.get(vnf.vnfd_id, vnf.vnfd_version)

    async def get_nsd(self, nsd_id: str, version: str | None = None) -> Nsd:
        """The NSD ``nsd_id`` (its latest version unless named); raises :class:`NotFound`."""
        return _model(await self.entry("nsd", nsd_id, version), Nsd)

    async def entries(
        self, kind: Kind, item_id: str | None = None
    ) -> builtins.list[CatalogueEntry]:
        """Every entry of ``kind`` (of one id when given), by id then onboarding time.

        An entry that cannot be decoded is skipped and logged.
        """
        stored = await self._redis.hgetall(self._keys.catalogue(kind))
        entries: builtins.list[CatalogueEntry] = []
        for field, raw in stored.items():
            ref = text(field)
            if item_id is not None and ref.partition("@")[0] != item_id:
                continue
            try:
                entries.append(_decoder.decode(raw))
            except msgspec.DecodeError as exc:
                log.error("skipping catalogue entry %s until it is fixed: %s", ref, exc)
        return sorted(entries, key=lambda e: (e.id, e.onboarded_at, e.version))

    async def latest(self, kind: Kind) -> builtins.list[CatalogueEntry]:
        """The latest entry of every id of ``kind``, by id."""
        versions = {
            text(k): text(v)
            for k, v in (await self._redis.hgetall(self._keys.catalogue_latest(kind))).items()
        }
        return [e for e in await self.entries(kind) if versions.get(e.id) == e.version]

    async def list(self) -> builtins.list[Vnfd]:
        """The latest version of every onboarded VNFD, by id."""
        return [_model(e, Vnfd) for e in await self.latest("vnfd")]

    async def _find(self, kind: Kind, item_id: str, version: str) -> CatalogueEntry | None:
        raw = await self._redis.hget(self._keys.catalogue(kind), f"{item_id}@{version}")
        if raw is None:
            return None
        try:
            return _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            key = self._keys.catalogue(kind)
            raise CorruptRecord(
                f"catalogue entry {item_id}@{version} cannot be decoded: {exc}", key
            ) from exc


def _model(entry: CatalogueEntry, model: type[M]) -> M:
    try:
        return model.model_validate_json(entry.descriptor)
    except ValidationError as exc:
        # Written by an incompatible version: say which entry.
        raise CorruptRecord(
            f"catalogue entry {entry.ref} is not a valid {entry.kind.upper()}: "
            f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}",
            entry.ref,
        ) from exc


def _missing(kind: Kind, item_id: str, version: str | None) -> str:
    which = f" version {version}" if version is not None else ""
    return f"{kind.upper()} {item_id!r}{which} is not onboarded"
