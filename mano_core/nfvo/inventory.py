"""The inventory of NS instances: one JSON record each in Redis, and an index of their ids.

Like the VNF inventory (:mod:`mano_core.inventory`), a record is always
written whole; a record that cannot be decoded is skipped (and logged) by
:meth:`NsInventory.list` and raises :class:`~mano_core.errors.CorruptRecord`
when looked up on its own.

Every save and delete also bumps the counter ``keys.ns_version()``, so a
reader that keeps the NS instances in memory (analytics' topology) reads
them again only when :meth:`NsInventory.version` changed.
"""

from __future__ import annotations

import builtins
import logging
from typing import Any

import msgspec

from bus.keys import Keys
from bus.redis import reply_text
from mano_core.errors import CorruptRecord, NotFound
from mano_core.nfvo.records import NsInstance

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(NsInstance)
KEEP_OPERATIONS = 20
"""Lifecycle operations kept in an NS record."""


class NsInventory:
    """NS instance records by id."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def save(self, ns: NsInstance) -> None:
        """Write the whole record (its oldest operations beyond the last few dropped)."""
        if len(ns.operations) > KEEP_OPERATIONS:
            ns = msgspec.structs.replace(ns, operations=ns.operations[-KEEP_OPERATIONS:])
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.ns(ns.id), _encoder.encode(ns))
            pipe.sadd(self._keys.ns_index(), ns.id)
            pipe.incr(self._keys.ns_version())
            await pipe.execute()

    async def version(self) -> int:
        """The change counter: it differs from one read to the next when anything changed."""
        raw = await self._redis.get(self._keys.ns_version())
        return int(raw) if raw is not None else 0

    async def find(self, ns_id: str) -> NsInstance | None:
        key = self._keys.ns(ns_id)
        raw = await self._redis.get(key)
        return None if raw is None else _decode(key, raw)

    async def get(self, ns_id: str) -> NsInstance:
        """The NS instance ``ns_id``; raises :class:`NotFound` or :class:`CorruptRecord`."""
        ns = await self.find(ns_id)
        if ns is None:
            raise NotFound(f"NS instance {ns_id!r} does not exist")
        return ns

    async def resolve(self, ref: str) -> NsInstance:
        """The NS instance whose id or name is ``ref``; raises :class:`NotFound`."""
        ns = await self.find(ref)
        if ns is not None:
            return ns
        named = [n for n in await self.list() if n.name == ref]
        if len(named) == 1:
            return named[0]
        if named:
            ids = ", ".join(n.id for n in named)
            raise NotFound(f"{len(named)} NS instances are named {ref!r} ({ids}): give the id")
        raise NotFound(f"no NS instance has the id or name {ref!r}")

    async def list(self) -> builtins.list[NsInstance]:
        """Every readable NS instance, oldest first."""
        ids = sorted(reply_text(i) for i in await self._redis.smembers(self._keys.ns_index()))
        if not ids:
            return []
        keys = [self._keys.ns(ns_id) for ns_id in ids]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
            raws = await pipe.execute()
        out: builtins.list[NsInstance] = []
        for key, raw in zip(keys, raws, strict=True):
            if raw is None:
                continue
            try:
                out.append(_decode(key, raw))
            except CorruptRecord as exc:
                log.error("skipping NS record %s until it is fixed: %s", key, exc)
        return sorted(out, key=lambda n: (n.created_at, n.id))

    async def delete(self, ns_id: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.srem(self._keys.ns_index(), ns_id)
            pipe.delete(self._keys.ns(ns_id))
            pipe.incr(self._keys.ns_version())
            await pipe.execute()


def _decode(key: str, raw: bytes | str) -> NsInstance:
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptRecord(f"NS record {key} cannot be decoded: {exc}", key) from exc
